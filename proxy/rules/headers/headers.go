// Package headers is a route's header rules (httpd's Header and
// RequestHeader): set, add, unset and edit fields of the request sent to
// the backend or of the response sent to the client, with a few variables,
// plus the response-only Server field and security_headers shorthand.
//
// Rules are checked and compiled once, at config load, into a Program; a
// Program's Apply is what runs per request. A listener's rules and a
// route's are compiled into one Program, the listener's first, so that a
// route's rules add to (and, for set, win over) the listener's.
package headers

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// Direction says which header a rule changes.
type Direction int

const (
	Request  Direction = iota // the request sent to the backend
	Response                  // the response sent to the client
)

// Rules are one set of header rules as configured (on a listener or a
// route). Within a set they run in this order: Unset, Set, Add, Edit.
type Rules struct {
	Set   []Field  // replace every field of the name with the value
	Add   []Field  // append one field
	Unset []string // remove every field of the name
	Edit  []Edit   // regex replace in every value of the name
}

// Field is a name and a value template (see CheckValue).
type Field struct{ Name, Value string }

// Edit replaces Match (RE2: linear time, no backtracking) by Replace
// (regexp.Expand syntax: $1, ${name}) in every value of Name.
type Edit struct {
	Name    string
	Match   *regexp.Regexp
	Replace string
}

// Vars are the values of the variables, for one request. Only the ones a
// Program uses are read.
type Vars struct {
	ClientIP  string // {client_ip}: the client address after trusted proxies
	RequestID string // {request_id}
	Scheme    string // {scheme}: http or https, as X-Forwarded-Proto says
	Host      string // {host}: the request's Host
}

// Variables are the names a value may hold in braces, in the order of
// the Need bits and Vars.get.
var Variables = []string{"client_ip", "request_id", "scheme", "host"}

// Check returns why rules in direction d may not name field k, or nil.
// Request rules may not touch what webtier itself writes or what frames
// the message (a client could otherwise have a rule smuggle it, and the
// backend would read a different request); response rules may not touch
// what frames the response.
func Check(d Direction, k string) error {
	if !httplex.ValidToken(k) {
		return fmt.Errorf("%q is not a header field name (letters, digits and !#$%%&'*+-.^_`|~ only)", k)
	}
	c := httplex.Canonical(k)
	switch {
	case c == "Content-Length" || c == "Transfer-Encoding" || c == "Trailer":
		return fmt.Errorf("%s frames the message; webtier writes it and no rule may change it", c)
	case httplex.IsHopByHop(c) || c == "Proxy-Connection":
		return fmt.Errorf("%s is hop-by-hop: it is removed at every hop and no rule may set it", c)
	case d == Request && c == "Host":
		return fmt.Errorf("Host may not be changed by a header rule; use the upstream's host_header")
	case d == Request && (c == "Forwarded" || strings.HasPrefix(c, "X-Forwarded-")):
		return fmt.Errorf("%s is written by webtier from the peer's address (see trusted_proxies) and may not be changed by a rule", c)
	}
	return nil
}

// CheckValue returns why v is not a usable value template, or nil: a
// control character, or a {name} that is not one of Variables. A "{" not
// followed by a known name and "}" is an error, so that a typo does not
// reach clients as text.
func CheckValue(v string) error {
	_, err := parse(v)
	return err
}

// segment is a literal or, when v >= 0, a variable.
type segment struct {
	lit string
	v   int // index into Variables, or -1
}

func parse(v string) ([]segment, error) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return nil, fmt.Errorf("control character %q in value; remove it", c)
		}
	}
	var segs []segment
	for v != "" {
		i := strings.IndexByte(v, '{')
		if i < 0 {
			segs = append(segs, segment{lit: v, v: -1})
			break
		}
		if i > 0 {
			segs = append(segs, segment{lit: v[:i], v: -1})
		}
		j := strings.IndexByte(v[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("%q has a \"{\" without \"}\"; variables are %s", v, varList())
		}
		name := v[i+1 : i+j]
		k := -1
		for n, x := range Variables {
			if x == name {
				k = n
			}
		}
		if k < 0 {
			return nil, fmt.Errorf("unknown variable {%s}; variables are %s", name, varList())
		}
		segs = append(segs, segment{v: k})
		v = v[i+j+1:]
	}
	return segs, nil
}

func varList() string { return "{" + strings.Join(Variables, "}, {") + "}" }

// value is a compiled template: lit when it has no variable.
type value struct {
	lit  string
	segs []segment // nil: lit
	// shared is []string{lit}, set by Compile for a literal: every
	// request's header shares it (its cap is its len, so an append
	// copies, and Apply's edits copy before they change a value).
	shared []string
}

// field returns the value as a header field's values for vs.
func (t *value) field(vs *Vars) []string {
	if t.shared != nil {
		return t.shared
	}
	return []string{t.expand(vs)}
}

func (t *value) expand(vs *Vars) string {
	if t.segs == nil {
		return t.lit
	}
	if len(t.segs) == 1 && t.segs[0].v >= 0 {
		if x := vs.get(t.segs[0].v); httplex.ValidValue(x) {
			return x // "{client_ip}" alone: no copy
		}
	}
	var b strings.Builder
	for _, s := range t.segs {
		if s.v < 0 {
			b.WriteString(s.lit)
			continue
		}
		writeClean(&b, vs.get(s.v))
	}
	return b.String()
}

// get returns the value of Variables[i].
func (vs *Vars) get(i int) string {
	switch i {
	case 0:
		return vs.ClientIP
	case 1:
		return vs.RequestID
	case 2:
		return vs.Scheme
	case 3:
		return vs.Host
	}
	return ""
}

// writeClean writes x without control characters: a variable's value comes
// from the request (the Host above all) and must never split a field.
func writeClean(b *strings.Builder, x string) {
	for i := 0; i < len(x); i++ {
		if c := x[i]; c >= 0x20 && c != 0x7f {
			b.WriteByte(c)
		}
	}
}

type op int

const (
	opUnset op = iota
	opSet
	opAdd
	opEdit
	opAddIfAbsent
)

type step struct {
	op   op
	name string // canonical
	val  value
	re   *regexp.Regexp
	repl string
}

// Program is compiled rules, ready to apply. A nil Program does nothing.
// It is read only, shared by every request.
type Program struct {
	steps []step
	needs Need
}

// Need says which variables a Program reads, so that the caller works out
// only those.
type Need uint8

const (
	NeedClientIP Need = 1 << iota
	NeedRequestID
	NeedScheme
	NeedHost
)

// Needs returns the variables p reads (none for a nil p).
func (p *Program) Needs() Need {
	if p == nil {
		return 0
	}
	return p.needs
}

// Options are the extras of a response Program.
type Options struct {
	// Server, when not nil, replaces the Server field ("" removes it).
	Server *string
	// Security adds the security_headers fields a response lacks
	// (Strict-Transport-Security only when Vars.Scheme is https).
	Security bool
}

// The security_headers fields. HSTS is added only on HTTPS requests: a
// browser ignores it over plain HTTP (RFC 6797 section 8.1).
const (
	HSTS           = "max-age=31536000"
	ReferrerPolicy = "strict-origin-when-cross-origin"
	FrameOptions   = "SAMEORIGIN"
)

// Compile checks and compiles layers (nil ones skipped) in order into one
// Program, with o's extras for a response Program (o is ignored for
// requests). It returns nil when there is nothing to do.
func Compile(d Direction, o Options, layers ...*Rules) (*Program, error) {
	p := &Program{}
	if d == Response && o.Server != nil {
		if *o.Server == "" {
			p.steps = append(p.steps, step{op: opUnset, name: "Server"})
		} else {
			p.steps = append(p.steps, step{op: opSet, name: "Server", val: value{lit: *o.Server}})
		}
	}
	for _, r := range layers {
		if r == nil {
			continue
		}
		for _, k := range r.Unset {
			if err := Check(d, k); err != nil {
				return nil, fmt.Errorf("unset %s: %w", k, err)
			}
			p.steps = append(p.steps, step{op: opUnset, name: httplex.Canonical(k)})
		}
		for _, set := range []struct {
			fs []Field
			op op
		}{{r.Set, opSet}, {r.Add, opAdd}} {
			for _, f := range set.fs {
				if err := Check(d, f.Name); err != nil {
					return nil, fmt.Errorf("%s: %w", f.Name, err)
				}
				segs, err := parse(f.Value)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", f.Name, err)
				}
				s := step{op: set.op, name: httplex.Canonical(f.Name)}
				if len(segs) == 1 && segs[0].v < 0 {
					s.val.lit = segs[0].lit
				} else if len(segs) > 0 {
					s.val.segs = segs
				}
				p.steps = append(p.steps, s)
			}
		}
		for _, e := range r.Edit {
			if err := Check(d, e.Name); err != nil {
				return nil, fmt.Errorf("edit %s: %w", e.Name, err)
			}
			if e.Match == nil {
				return nil, fmt.Errorf("edit %s: no match", e.Name)
			}
			p.steps = append(p.steps, step{op: opEdit, name: httplex.Canonical(e.Name), re: e.Match, repl: e.Replace})
		}
	}
	if d == Response && o.Security {
		p.steps = append(p.steps,
			step{op: opAddIfAbsent, name: "Strict-Transport-Security", val: value{lit: HSTS}},
			step{op: opAddIfAbsent, name: "X-Content-Type-Options", val: value{lit: "nosniff"}},
			step{op: opAddIfAbsent, name: "Referrer-Policy", val: value{lit: ReferrerPolicy}},
			step{op: opAddIfAbsent, name: "X-Frame-Options", val: value{lit: FrameOptions}},
		)
	}
	if len(p.steps) == 0 {
		return nil, nil
	}
	for i := range p.steps {
		v := &p.steps[i].val
		if v.segs == nil {
			v.shared = []string{v.lit}
		}
		for _, g := range v.segs {
			if g.v >= 0 {
				p.needs |= 1 << g.v // Variables and the Need bits are in the same order
			}
		}
	}
	if d == Response && o.Security {
		p.needs |= NeedScheme // HSTS only over HTTPS
	}
	return p, nil
}

// Apply changes h by the program's rules, taking variables from vs.
func (p *Program) Apply(h http.Header, vs *Vars) {
	if p == nil {
		return
	}
	for i := range p.steps {
		s := &p.steps[i]
		switch s.op {
		case opUnset:
			delete(h, s.name)
		case opSet:
			h[s.name] = s.val.field(vs)
		case opAdd:
			if old := h[s.name]; len(old) > 0 {
				h[s.name] = append(old[:len(old):len(old)], s.val.expand(vs))
			} else {
				h[s.name] = s.val.field(vs)
			}
		case opEdit:
			vv := h[s.name]
			var out []string // a copy, made at the first change: vv may be shared
			for j, v := range vv {
				if nv := s.re.ReplaceAllString(v, s.repl); nv != v {
					if out == nil {
						out = append([]string(nil), vv...)
					}
					out[j] = stripControl(nv)
				}
			}
			if out != nil {
				h[s.name] = out
			}
		case opAddIfAbsent:
			if _, ok := h[s.name]; ok {
				continue
			}
			if s.name == "Strict-Transport-Security" && vs.Scheme != "https" {
				continue
			}
			h[s.name] = s.val.shared
		}
	}
}

// stripControl removes control characters an edit may have assembled.
func stripControl(v string) string {
	if httplex.ValidValue(v) {
		return v
	}
	var b strings.Builder
	writeClean(&b, v)
	return b.String()
}
