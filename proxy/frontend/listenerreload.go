package frontend

import (
	"reflect"
	"slices"
	"strings"

	"github.com/webtier/webtier/proxy"
)

// listenerReload says, for every field of proxy.ListenerOptions, what a
// reload does with a changed value: a reloadable field takes the new
// value (the Handler reads it per request), and a restart-only one keeps
// the running value (the socket, its TLS setup or its server were built
// with it) and is reported under its group, as "NAME: timeouts changed".
// TestListenerReload_everyFieldListed fails when a field of
// ListenerOptions is missing here, so a new field cannot silently never
// report "restart needed".
var listenerReload = []struct {
	field   string // the ListenerOptions field
	restart string // the group a change is reported under; "" if reloadable
}{
	{"Name", restartKey}, // the key listeners are matched by
	{"Address", "address"},
	{"Engine", "engine"},
	{"TLS", "tls"},
	{"ReadHeaderTimeout", "timeouts"},
	{"IdleTimeout", "timeouts"},
	{"BodyTimeout", "timeouts"},
	{"BodyMinRate", "timeouts"},
	{"WriteTimeout", "timeouts"},
	{"MaxRequestLine", "limits"},
	{"MaxHeaderFieldSize", "limits"},
	{"MaxHeaderFields", "limits"},
	{"MaxHeaderSize", "limits"},
	{"TrustedProxies", ""},
	{"KeepUnderscoreHeaders", ""},
	{"HealthPath", ""},
	{"HealthFailStatus", ""},
	{"HealthRequires", ""},
	{"ProxyProtocol", "proxy_protocol"}, // read below the server, at accept
	{"ForwardedHeader", ""},
	{"RedirectHTTPS", ""},
	{"Rules", ""},    // header rules, error pages (proxy/rules.go)
	{"Compress", ""}, // compression (proxy/compress): the handler's
}

// restartKey marks Name: a listener with another name is another listener.
const restartKey = "name"

// listenerField indexes listenerReload's fields in ListenerOptions, once.
var listenerField = func() []int {
	t := reflect.TypeFor[proxy.ListenerOptions]()
	idx := make([]int, len(listenerReload))
	for i, r := range listenerReload {
		f, ok := t.FieldByName(r.field)
		if !ok {
			panic("frontend: listenerReload names " + r.field + ", which ListenerOptions does not have")
		}
		idx[i] = f.Index[0]
	}
	return idx
}()

// mergeListeners returns the listener options a reloaded Handler serves
// with: the running listeners, in their order, each with the reloadable
// fields of the next listener of the same name if there is one; and the
// changes to listeners that wait for a restart.
func mergeListeners(running, next []proxy.ListenerOptions) (merged []proxy.ListenerOptions, restartNeeded []string) {
	byName := make(map[string]proxy.ListenerOptions, len(next))
	for _, lo := range next {
		byName[lo.Name] = lo
	}
	seen := make(map[string]bool, len(running))
	for _, lo := range running {
		seen[lo.Name] = true
		nl, ok := byName[lo.Name]
		if !ok {
			restartNeeded = append(restartNeeded, lo.Name+": removed or renamed (still serving)")
			merged = append(merged, lo)
			continue
		}
		var what []string
		cur, nv := reflect.ValueOf(&lo).Elem(), reflect.ValueOf(nl)
		for i, r := range listenerReload {
			a, b := cur.Field(listenerField[i]), nv.Field(listenerField[i])
			switch {
			case r.restart == restartKey:
			case r.restart == "":
				a.Set(b)
			case !sameValue(a.Interface(), b.Interface()) && !slices.Contains(what, r.restart):
				what = append(what, r.restart)
			}
		}
		if len(what) > 0 {
			restartNeeded = append(restartNeeded, lo.Name+": "+strings.Join(what, ", ")+" changed")
		}
		merged = append(merged, lo)
	}
	for _, nl := range next {
		if !seen[nl.Name] {
			restartNeeded = append(restartNeeded, nl.Name+": added (not listening)")
		}
	}
	return merged, restartNeeded
}

// sameValue compares a field's running and next values; an engine left
// out is the default one.
func sameValue(a, b any) bool {
	if ea, ok := a.(proxy.Engine); ok {
		return ea.Std() == b.(proxy.Engine).Std()
	}
	return reflect.DeepEqual(a, b)
}
