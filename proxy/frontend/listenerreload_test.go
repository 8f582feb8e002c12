package frontend

import (
	"reflect"
	"slices"
	"testing"

	"github.com/webtier/webtier/proxy"
)

// Every field of ListenerOptions is in listenerReload, once: a field added
// to the options without saying what a reload does with it fails here,
// instead of never reporting "restart needed".
func TestListenerReload_everyFieldListed(t *testing.T) {
	var listed []string
	for _, r := range listenerReload {
		if slices.Contains(listed, r.field) {
			t.Errorf("listenerReload lists %s twice", r.field)
		}
		listed = append(listed, r.field)
	}
	typ := reflect.TypeFor[proxy.ListenerOptions]()
	for i := range typ.NumField() {
		if name := typ.Field(i).Name; !slices.Contains(listed, name) {
			t.Errorf("ListenerOptions.%s is in neither list of listenerReload (proxy/frontend/listenerreload.go); "+
				"add it with the group a change is reported under (restart-only), or \"\" if a reload takes it", name)
		}
	}
	for _, name := range listed {
		if _, ok := typ.FieldByName(name); !ok {
			t.Errorf("listenerReload lists %s, which ListenerOptions does not have", name)
		}
	}
}

// A change to each field, one at a time: a reloadable field reaches the
// merged options with no restart reported; a restart-only field keeps its
// running value and is reported under its group.
func TestListenerReload_eachField(t *testing.T) {
	for _, r := range listenerReload {
		if r.restart == restartKey {
			continue // renaming is "removed" and "added": TestServer_reloadListeners
		}
		t.Run(r.field, func(t *testing.T) {
			running := proxy.ListenerOptions{Name: "web", Address: "127.0.0.1:0"}
			next := running
			f := reflect.ValueOf(&next).Elem().FieldByName(r.field)
			f.Set(changed(t, f))
			merged, restart := mergeListeners([]proxy.ListenerOptions{running}, []proxy.ListenerOptions{next})
			if len(merged) != 1 {
				t.Fatalf("merged %d listeners; want 1", len(merged))
			}
			got := reflect.ValueOf(merged[0]).FieldByName(r.field).Interface()
			if r.restart == "" {
				if len(restart) != 0 || !reflect.DeepEqual(got, f.Interface()) {
					t.Errorf("reload of a changed %s: restart %q, merged value %v; want no restart and the new value %v",
						r.field, restart, got, f.Interface())
				}
				return
			}
			want := []string{"web: " + r.restart + " changed"}
			old := reflect.ValueOf(running).FieldByName(r.field).Interface()
			if !slices.Equal(restart, want) || !reflect.DeepEqual(got, old) {
				t.Errorf("reload of a changed %s: restart %q, merged value %v; want %q and the running value %v",
					r.field, restart, got, want, old)
			}
		})
	}
}

// changed returns a value of f's type that differs from f.
func changed(t *testing.T, f reflect.Value) reflect.Value {
	v := reflect.New(f.Type()).Elem()
	if f.Type() == reflect.TypeOf(proxy.Engine("")) {
		// The other engine ("" and "webtier" are the same one).
		return reflect.ValueOf(proxy.EngineStd)
	}
	switch f.Kind() {
	case reflect.String:
		v.SetString(f.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(f.Int() + 7)
	case reflect.Bool:
		v.SetBool(!f.Bool())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(f.Type(), f.Len()+1, f.Len()+1))
	case reflect.Pointer:
		v.Set(reflect.New(f.Type().Elem()))
	default:
		t.Fatalf("no changed value for a %s; extend changed()", f.Type())
	}
	return v
}
