package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// toy is a schema unlike webtier's, to test the walker on its own: every
// supported type, including bool which webtier does not use yet.
type toy struct {
	loc
	Enabled field[bool]          `yaml:"enabled"`
	Every   field[time.Duration] `yaml:"every"`
	Items   field[[]toyItem]     `yaml:"items"`
	Named   entries[toyItem]     `yaml:"named"`
	Section toySection           `yaml:"section"`
}

type toyItem struct {
	loc
	Name  field[string] `yaml:"name,short"`
	Count field[int]    `yaml:"count"`
}

func (toyItem) noun() string { return "item" }

type toySection struct {
	loc
	Tags field[[]field[string]] `yaml:"tags"`
}

func decodeToy(t *testing.T, src string) (*toy, *report) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml.Unmarshal: %v", err)
	}
	var v toy
	r := &report{file: "toy.yaml"}
	d := &decoder{report: r}
	d.decode(doc.Content[0], reflect.ValueOf(&v).Elem(), loc{Line: 1, Column: 1})
	return &v, r
}

func TestDecodeValuesAndPositions(t *testing.T) {
	v, r := decodeToy(t, `enabled: true
every: 90s
items:
  - a
  - name: b
    count: 2
named:
  zeta: {count: 1}
  alpha: z
`)
	if err := r.err(); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !v.Enabled.Set || !v.Enabled.V {
		t.Errorf("Enabled = %+v; want set to true", v.Enabled)
	}
	if v.Every.V != 90*time.Second || v.Every.Line != 2 || v.Every.Path != "every" {
		t.Errorf("Every = %+v; want 90s at every, line 2", v.Every)
	}
	items := v.Items.V
	if len(items) != 2 || items[0].Name.V != "a" || items[1].Name.V != "b" || items[1].Count.V != 2 {
		t.Fatalf("Items = %+v; want [a, b count 2]", items)
	}
	if g, w := items[0].Name.loc, (loc{Path: "items[0]", Line: 4, Column: 5}); g != w {
		t.Errorf("short item's Name.loc = %+v; want %+v", g, w)
	}
	if g, w := items[1].Count.loc, (loc{Path: "items[1].count", Line: 6, Column: 5}); g != w {
		t.Errorf("Count.loc = %+v; want %+v", g, w)
	}
	if g, w := items[0].Count, (field[int]{loc: loc{Path: "items[0].count", Line: 4, Column: 5}}); g != w {
		t.Errorf("absent Count = %+v; want %+v (unset, at the item)", g, w)
	}
	if len(v.Named) != 2 || v.Named[0].Key != "zeta" || v.Named[1].Key != "alpha" || v.Named[1].V.Name.V != "z" {
		t.Errorf("Named = %+v; want zeta then alpha, in file order", v.Named)
	}
	if g, w := v.Named[0].V.Count.Path, "named.zeta.count"; g != w {
		t.Errorf("Named[0] count path = %q; want %q", g, w)
	}
	// An absent section still knows where its keys would be.
	if g, w := v.Section.Tags.loc, (loc{Path: "section.tags", Line: 1, Column: 1}); g != w || v.Section.Tags.Set {
		t.Errorf("absent Section.Tags = %+v; want unset at %+v", v.Section.Tags, w)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{name: "bad-bool", src: "enabled: yes", want: `toy.yaml:1: enabled: "yes" is not true or false; write true or false`},
		{name: "null-bool", src: "enabled:", want: "toy.yaml:1: enabled: no value; write true or false"},
		{name: "list-for-int", src: "items: [{count: [1]}]", want: "toy.yaml:1: items[0].count: expected a whole number, got a list"},
		{name: "string-for-entries", src: "named: x", want: "toy.yaml:1: named: expected a mapping of names to items, got a string"},
		{name: "merge-key", src: "section:\n  <<: {tags: [a]}", want: `toy.yaml:2: section.<<: merge keys ("<<") are not supported`},
		{name: "complex-key", src: "? [a]\n: b", want: "toy.yaml:1: a key must be a plain name, not a list"},
		{name: "duplicate-entry", src: "named:\n  a: x\n  a: y", want: "toy.yaml:3: named.a: duplicate key; it is already set at line 2"},
		{name: "unknown-far", src: "section: {colour: red}", want: `toy.yaml:1: section.colour: unknown key "colour"; valid keys here are tags`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := decodeToy(t, tt.src)
			err := r.err()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decode(%q) = %v; want an error containing %q", tt.src, err, tt.want)
			}
		})
	}
}
