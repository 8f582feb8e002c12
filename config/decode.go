package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file is the generic half of config: a reflection walker that decodes a
// yaml.Node tree into the raw structs of schema.go and records, for every
// value, its key path and line. It knows nothing about webtier's keys; those
// are the struct tags in schema.go and the checks in check.go.
//
// The walker understands these Go types:
//
//   - string, int, bool and time.Duration (written like 500ms, 2s, 1m);
//   - []T, one element per list item;
//   - structs whose fields carry `yaml:"key"` tags: unknown keys and
//     duplicate keys are errors, and a field tagged `yaml:"key,short"` also
//     accepts a bare scalar in place of the whole mapping (a target may be
//     written "http://host:port" or {url: "http://host:port", weight: 2});
//   - field[T], which wraps any of the above and records whether the key was
//     written and where;
//   - entries[T], a mapping of user-chosen names in file order.
//
// A struct that embeds loc gets its own position filled in. So does every
// field[T], even for a key absent from the file: its Path is still the key's
// path and its Line is that of the enclosing mapping. That is the line a
// "missing" error points at.

// maxSteps bounds the values one decode visits. Aliases can make a small file
// expand exponentially ("billion laughs"); no real config comes near this.
const maxSteps = 1_000_000

// loc is where a value was written: its dotted key path, and the position of
// its key (or, for a list item, of the item).
type loc struct {
	Path   string // e.g. "upstreams.app.targets[0].url"; "" for the whole file
	Line   int    // 1-based
	Column int    // 1-based
}

// setLoc is promoted to every struct that embeds loc, which is how the walker
// fills the unexported embedded field.
func (l *loc) setLoc(n loc) { *l = n }

type locator interface{ setLoc(loc) }

// field is a value from the file with where it was written.
type field[T any] struct {
	V   T
	Set bool // the key was written in the file (possibly with an empty value)
	loc
}

type fielder interface {
	mark(l loc, set bool)
	value() reflect.Value
}

func (f *field[T]) mark(l loc, set bool) { f.loc, f.Set = l, set }
func (f *field[T]) value() reflect.Value { return reflect.ValueOf(&f.V).Elem() }

// entries is a YAML mapping whose keys are names the user chooses (upstream
// names), kept in file order.
type entries[T any] []entry[T]

type entry[T any] struct {
	Key string
	loc // of the key
	V   T
}

type mapper interface {
	// add appends an entry and returns its value for decoding. The value is
	// valid until the next add.
	add(key string, l loc) reflect.Value
	elemType() reflect.Type
}

func (e *entries[T]) add(key string, l loc) reflect.Value {
	*e = append(*e, entry[T]{Key: key, loc: l})
	return reflect.ValueOf(&(*e)[len(*e)-1].V).Elem()
}

func (e *entries[T]) elemType() reflect.Type { return reflect.TypeFor[T]() }

// noun is implemented by list and map element types, so that type errors can
// say "a list of listeners" rather than "a list".
type noun interface{ noun() string }

var durationType = reflect.TypeFor[time.Duration]()

type decoder struct {
	*report
	steps int
}

// decode stores n into v, which must be addressable. l is where n was written.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, l loc) {
	if d.steps++; d.steps > maxSteps {
		if d.steps == maxSteps+1 {
			d.fail(l, "the file expands to more than %d values (through aliases?); write a smaller config", maxSteps)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch x := v.Addr().Interface().(type) {
	case fielder:
		x.mark(l, true)
		d.decode(n, x.value(), l)
		return
	case mapper:
		d.mapping(n, x, v.Type(), l)
		return
	}
	if v.Type() == durationType {
		s, ok := d.scalar(n, v.Type(), l)
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(l, "%q is not a duration; write it like 500ms, 2s or 1m", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if isNull(n) {
			v.SetString("")
			return
		}
		if s, ok := d.scalar(n, v.Type(), l); ok {
			v.SetString(s)
		}
	case reflect.Int:
		s, ok := d.scalar(n, v.Type(), l)
		if !ok {
			return
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			d.fail(l, "%q is not a whole number; write it like 64", s)
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		s, ok := d.scalar(n, v.Type(), l)
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.fail(l, "%q is not true or false; write true or false", s)
		}
	case reflect.Slice:
		d.sequence(n, v, l)
	case reflect.Struct:
		d.structure(n, v, l)
	default:
		panic(fmt.Sprintf("config: cannot decode into %s", v.Type())) // a schema.go mistake
	}
}

// scalar returns n's text, or reports that a single value was expected.
func (d *decoder) scalar(n *yaml.Node, t reflect.Type, l loc) (string, bool) {
	if isNull(n) {
		d.fail(l, "no value; write %s", describe(t))
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.typeError(n, t, l)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, l loc) {
	if isNull(n) {
		return
	}
	if n.Kind == yaml.ScalarNode && acceptsScalar(v.Type().Elem()) {
		d.fail(l, "expected %s, got %s; for a single one write [%s]", describe(v.Type()), got(n), n.Value)
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.typeError(n, v.Type(), l)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), loc{Path: fmt.Sprintf("%s[%d]", l.Path, i), Line: item.Line, Column: item.Column})
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, m mapper, t reflect.Type, l loc) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.typeError(n, t, l)
		return
	}
	d.pairs(n, l, func(key string, kl loc, val *yaml.Node) {
		d.decode(val, m.add(key, kl), kl)
	})
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, l loc) {
	if lv, ok := v.Addr().Interface().(locator); ok {
		lv.setLoc(l)
	}
	s := schemaOf(v.Type())
	written := make(map[string]bool)
	switch {
	case isNull(n):
		// An empty section, e.g. "resolver:" with nothing under it.
	case n.Kind == yaml.ScalarNode && s.short >= 0:
		d.decode(n, v.Field(s.fields[s.short].index), l)
		written[s.fields[s.short].key] = true
	case s.short >= 0 && looksLikeShortWithColon(n, s):
		// "- http://app.internal:" is a mapping with one key and no value.
		d.fail(l, "%q ends in \":\", so YAML reads it as a key; remove the trailing \":\" or quote the value",
			n.Content[0].Value+":")
	case n.Kind != yaml.MappingNode:
		// Still record the fields' paths below, so that the checks' errors
		// about them are recognised as following from this one.
		d.typeError(n, v.Type(), l)
	default:
		d.pairs(n, l, func(key string, kl loc, val *yaml.Node) {
			f, ok := s.byKey[key]
			if !ok {
				d.errorf(kl, "%s", unknownKey(key, s.keys()))
				return
			}
			written[key] = true
			d.decode(val, v.Field(f.index), kl)
		})
	}
	for _, f := range s.fields {
		if !written[f.key] {
			absent(v.Field(f.index), loc{Path: join(l.Path, f.key), Line: l.Line, Column: l.Column})
		}
	}
}

// looksLikeShortWithColon reports whether n is a one-key mapping with no
// value whose key is not a key of s: a short-form scalar with a trailing
// colon, which YAML reads as a mapping.
func looksLikeShortWithColon(n *yaml.Node, s *schema) bool {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 || !isNull(n.Content[1]) {
		return false
	}
	_, known := s.byKey[n.Content[0].Value]
	return !known
}

// pairs calls fn for each key of mapping n, reporting duplicate keys, merge
// keys and keys that are not plain scalars.
func (d *decoder) pairs(n *yaml.Node, l loc, fn func(key string, kl loc, val *yaml.Node)) {
	first := make(map[string]int) // key -> line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kl := loc{Path: join(l.Path, k.Value), Line: k.Line, Column: k.Column}
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errorf(loc{Path: l.Path, Line: k.Line, Column: k.Column}, "a key must be a plain name, not %s", got(k))
			continue
		case k.ShortTag() == "!!merge":
			d.errorf(kl, `merge keys ("<<") are not supported; write the keys out in full`)
			continue
		}
		if line, dup := first[k.Value]; dup {
			d.errorf(kl, "duplicate key; it is already set at line %d, remove one of them", line)
			continue
		}
		first[k.Value] = k.Line
		fn(k.Value, kl, val)
	}
}

// absent records the path and enclosing position of a key not written in
// the file, for field[T] and for the fields of nested structs.
func absent(v reflect.Value, l loc) {
	switch x := v.Addr().Interface().(type) {
	case fielder:
		x.mark(l, false)
		return
	case mapper:
		return
	}
	if v.Kind() != reflect.Struct || v.Type() == durationType {
		return
	}
	if lv, ok := v.Addr().Interface().(locator); ok {
		lv.setLoc(l)
	}
	for _, f := range schemaOf(v.Type()).fields {
		absent(v.Field(f.index), loc{Path: join(l.Path, f.key), Line: l.Line, Column: l.Column})
	}
}

func (d *decoder) typeError(n *yaml.Node, t reflect.Type, l loc) {
	d.fail(l, "expected %s, got %s", describe(t), got(n))
}

// acceptsScalar reports whether a value of type t may be written as a plain
// scalar.
func acceptsScalar(t reflect.Type) bool {
	if f, ok := reflect.New(t).Interface().(fielder); ok {
		return acceptsScalar(f.value().Type())
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Map:
		return false
	case reflect.Struct:
		return t == durationType || schemaOf(t).short >= 0
	}
	return true
}

// schema is the decoding view of a struct type: its tagged fields in order.
type schema struct {
	fields []schemaField
	byKey  map[string]schemaField
	short  int // index into fields of the `,short` field, or -1
}

type schemaField struct {
	key   string
	index int // reflect field index
}

func (s *schema) keys() []string {
	keys := make([]string, len(s.fields))
	for i, f := range s.fields {
		keys[i] = f.key
	}
	return keys
}

// schemaOf reads t's yaml tags. Config structs are small and decoded once per
// load, so it is not cached.
func schemaOf(t reflect.Type) *schema {
	s := &schema{byKey: make(map[string]schemaField), short: -1}
	for i := range t.NumField() {
		tag, ok := t.Field(i).Tag.Lookup("yaml")
		if !ok {
			continue
		}
		key, opt, _ := strings.Cut(tag, ",")
		f := schemaField{key: key, index: i}
		if opt == "short" {
			s.short = len(s.fields)
		}
		s.fields = append(s.fields, f)
		s.byKey[key] = f
	}
	return s
}

// describe says in words what a value of type t looks like in YAML.
func describe(t reflect.Type) string {
	p := reflect.New(t).Interface()
	switch x := p.(type) {
	case fielder:
		return describe(x.value().Type())
	case mapper:
		return "a mapping of names to " + plural(x.elemType())
	}
	if t == durationType {
		return "a duration like 2s"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list of " + plural(t.Elem())
	case reflect.Struct:
		s := schemaOf(t)
		keys := s.keys()
		if len(keys) > 4 {
			keys = append(keys[:4:4], "...")
		}
		m := "a mapping (keys: " + strings.Join(keys, ", ") + ")"
		if s.short >= 0 {
			return "a " + s.fields[s.short].key + " string or " + m
		}
		return m
	}
	return t.String()
}

func plural(t reflect.Type) string {
	if n, ok := reflect.New(t).Interface().(noun); ok {
		return n.noun() + "s"
	}
	if f, ok := reflect.New(t).Interface().(fielder); ok {
		return plural(f.value().Type())
	}
	switch t.Kind() {
	case reflect.String:
		return "strings"
	case reflect.Int:
		return "numbers"
	}
	return "values"
}

// got says in words what node n is.
func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "true/false"
		case "!!null":
			return "nothing"
		}
	}
	return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
