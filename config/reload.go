package config

import (
	"reflect"
	"strings"
)

// RestartKeys returns the keys whose values differ between prev and next
// although a reload cannot apply them, in file order: every resolver key
// (the one shared DNS cache is kept across reloads, with the options it was
// built with), logging.format (the log encoder is built once) and admin
// (its listener is opened once). cmd logs
// them on SIGHUP. Listeners are compared by proxy.Server.Reload, which knows
// which ones are open.
//
// The contents of resolver.resolv_conf are not compared: the resolver reads
// that file once, at start-up.
func RestartKeys(prev, next *Config) []string {
	var keys []string
	rt := reflect.TypeFor[rawResolver]()
	pv, nv := reflect.ValueOf(prev.Resolver), reflect.ValueOf(next.Resolver)
	for i := range rt.NumField() {
		f := rt.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		// rawResolver's fields carry the names of resolver.Options's.
		if !reflect.DeepEqual(pv.FieldByName(f.Name).Interface(), nv.FieldByName(f.Name).Interface()) {
			keys = append(keys, "resolver."+key)
		}
	}
	if prev.Logging.Format != next.Logging.Format {
		keys = append(keys, "logging.format")
	}
	if !reflect.DeepEqual(prev.Admin, next.Admin) {
		keys = append(keys, "admin")
	}
	return keys
}
