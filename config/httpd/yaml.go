package httpd

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// obj is a YAML mapping whose keys keep the order they were set in, so
// that the output reads like the README's examples.
type obj []kv

type kv struct {
	K string
	V any
}

// set replaces k's value, or appends k.
func (o *obj) set(k string, v any) {
	for i := range *o {
		if (*o)[i].K == k {
			(*o)[i].V = v
			return
		}
	}
	*o = append(*o, kv{k, v})
}

func (o obj) get(k string) (any, bool) {
	for _, e := range o {
		if e.K == k {
			return e.V, true
		}
	}
	return nil, false
}

// sub returns the mapping under k, making it when absent.
func (o *obj) sub(k string) *obj {
	if v, ok := o.get(k); ok {
		if m, ok := v.(*obj); ok {
			return m
		}
	}
	m := &obj{}
	o.set(k, m)
	return m
}

// node turns a value of the model into a YAML node: strings, ints, bools,
// durations (written like 30s), []string, []any, obj and *obj.
func node(v any) *yaml.Node {
	switch v := v.(type) {
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	case time.Duration:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: durationString(v)}
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, s := range v {
			n.Content = append(n.Content, node(s))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range v {
			n.Content = append(n.Content, node(e))
		}
		return n
	case *obj:
		return node(*v)
	case obj:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, e := range v {
			n.Content = append(n.Content, node(e.K), node(e.V))
		}
		return n
	case *yaml.Node:
		return v
	}
	panic(fmt.Sprintf("config/httpd: no YAML for %T", v))
}

// durationString writes d the way a person would: 300s as 5m, 1500ms as
// 1500ms.
func durationString(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0 && d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// render writes a document node as YAML text, two spaces per level.
func render(doc *yaml.Node) []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		panic(fmt.Sprintf("config/httpd: encoding YAML: %v", err)) // only a bug in node gets here
	}
	_ = enc.Close()
	return b.Bytes()
}

// commentOut renders v under key as YAML and prefixes every line with "# ",
// for a block that this webtier cannot load yet.
func commentOut(key string, v any) string {
	n := node(v)
	if key != "" {
		n = node(obj{{key, v}})
	}
	text := strings.TrimRight(string(render(n)), "\n")
	return "  " + strings.ReplaceAll(text, "\n", "\n  ")
}
