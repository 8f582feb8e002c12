package httpd

import (
	"fmt"
	"io"
	"strings"
)

// Status says what became of one directive.
type Status int

const (
	// Exact: webtier does what httpd did.
	Exact Status = iota
	// Approx: translated, and the note says how webtier differs.
	Approx
	// Left: not translated; the note says why and what to do.
	Left
	// Unneeded: httpd's own housekeeping (User, PidFile, LoadModule, ...)
	// that webtier has no use for; it does not make -strict fail.
	Unneeded
)

func (s Status) String() string {
	return [...]string{"exact", "approximate", "left", "unneeded"}[s]
}

// Entry is one line of the report.
type Entry struct {
	File      string
	Line      int
	Directive string // as written, without arguments
	Status    Status
	Note      string
}

// Report lists what became of every directive of the tree, in the order of
// the tree.
type Report struct {
	Entries []Entry
}

// Count returns how many entries have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, e := range r.Entries {
		if e.Status == s {
			n++
		}
	}
	return n
}

// Clean reports whether every directive was translated exactly or was not
// needed: what -strict asks.
func (r *Report) Clean() bool { return r.Count(Approx) == 0 && r.Count(Left) == 0 }

// WriteTo writes the report as text: a summary, then one line per
// directive, with runs of the same directive, status and note in one file
// (Debian's dozens of AddLanguage lines) folded into one line.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# webtier import-httpd report: %d exact, %d approximate, %d left, %d unneeded\n",
		r.Count(Exact), r.Count(Approx), r.Count(Left), r.Count(Unneeded))
	for i := 0; i < len(r.Entries); {
		e := r.Entries[i]
		j := i + 1
		for j < len(r.Entries) {
			n := r.Entries[j]
			if n.File != e.File || n.Directive != e.Directive || n.Status != e.Status || n.Note != e.Note {
				break
			}
			j++
		}
		where := fmt.Sprintf("%s:%d", e.File, e.Line)
		what := e.Directive
		if j-i > 1 {
			where = fmt.Sprintf("%s:%d-%d", e.File, e.Line, r.Entries[j-1].Line)
			what = fmt.Sprintf("%s (%d lines)", e.Directive, j-i)
		}
		fmt.Fprintf(&b, "%-11s %s: %s", e.Status, where, what)
		if e.Note != "" {
			fmt.Fprintf(&b, ": %s", e.Note)
		}
		b.WriteByte('\n')
		i = j
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
