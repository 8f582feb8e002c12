package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a config file. It prints as
//
//	FILE:LINE: KEY: MESSAGE
//
// for example
//
//	webtier.yaml:12: upstreams.app.connect_timeout: "2x" is not a duration; write it like 500ms, 2s or 1m
//
// LINE is left out when it is 0 and KEY when it is "".
type Error struct {
	File   string
	Line   int    // 1-based; 0 when the problem has no single line (an empty file)
	Column int    // 1-based; 0 when unknown. Not printed: the line is enough for people
	Key    string // dotted path such as "listeners[1].address"; "" for the file as a whole
	Msg    string // what is wrong and what to write instead
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config file, ordered by line. Parse
// and Load return it (as error) when the file cannot be used; get it back
// with errors.As.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// report collects the problems of one file. Decoding and checking share it.
type report struct {
	file string
	errs Errors
	// bad holds the paths whose values could not be decoded. The checks would
	// otherwise see their zero values and pile a second, misleading error
	// ("missing", "must be greater than 0") on top of the first.
	bad map[string]bool
}

// errorf reports a problem at l, unless l's value or one it is part of
// already failed to decode.
func (r *report) errorf(l loc, format string, args ...any) {
	for p := l.Path; ; p = parent(p) {
		if r.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	r.errs = append(r.errs, &Error{File: r.file, Line: l.Line, Column: l.Column, Key: l.Path, Msg: fmt.Sprintf(format, args...)})
}

// fail reports that the value at l could not be decoded.
func (r *report) fail(l loc, format string, args ...any) {
	r.errorf(l, format, args...)
	if r.bad == nil {
		r.bad = make(map[string]bool)
	}
	r.bad[l.Path] = true
}

// err returns the problems found so far sorted by position, or nil.
func (r *report) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(r.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return r.errs
}

// parent strips the last ".key" or "[i]" from path.
func parent(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// unknownKey explains a key that is not in valid.
func unknownKey(key string, valid []string) string {
	if s := suggest(key, valid); s != "" {
		return fmt.Sprintf("unknown key %q; did you mean %q?", key, s)
	}
	return fmt.Sprintf("unknown key %q; valid keys here are %s", key, strings.Join(valid, ", "))
}

// suggest returns the element of valid closest to s, if it is close enough to
// be a likely typo, or "".
func suggest(s string, valid []string) string {
	best, bestDist := "", -1
	for _, v := range valid {
		d := editDistance(strings.ToLower(s), strings.ToLower(v))
		if bestDist < 0 || d < bestDist {
			best, bestDist = v, d
		}
	}
	// Two edits catch transpositions and a dropped or doubled letter; longer
	// keys get a quarter of their length.
	if bestDist >= 0 && (bestDist <= 2 || bestDist*4 <= len(s)) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// orList writes items as `a, b or c`.
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
