package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// checker validates raw values and converts them to option values. Each
// method reports problems at the value's own line and returns something
// usable (usually the default), so checking goes on and finds every problem.
type checker struct {
	*report
}

// duration returns f's value, or def when the key is absent. Zero and
// negative durations are errors: every duration in the runtime options uses
// zero to mean "the default", and none of them means anything when negative.
func (c *checker) duration(f field[time.Duration], def time.Duration) time.Duration {
	if !f.Set {
		return def
	}
	if f.V <= 0 {
		c.errorf(f.loc, "must be greater than 0, got %s; write a duration like %s (the default), or leave the key out",
			formatDuration(f.V), formatDuration(def))
		return def
	}
	return f.V
}

// intRange returns f's value, or def when the key is absent. hi < 0 means no
// upper bound.
func (c *checker) intRange(f field[int], lo, hi, def int) int {
	if !f.Set {
		return def
	}
	if f.V < lo || hi >= 0 && f.V > hi {
		if hi < 0 {
			c.errorf(f.loc, "must be %d or more, got %d; write a whole number like %d (the default)", lo, f.V, def)
		} else {
			c.errorf(f.loc, "must be from %d to %d, got %d; write a whole number like %d (the default)", lo, hi, f.V, def)
		}
		return def
	}
	return f.V
}

// oneOf returns f's value, which must be one of allowed, or def when the key
// is absent. what names the kind of value in the error, e.g. "log level".
func (c *checker) oneOf(f field[string], what, def string, allowed ...string) string {
	if !f.Set {
		return def
	}
	for _, a := range allowed {
		if f.V == a {
			return a
		}
	}
	c.errorf(f.loc, "%q is not a %s; write %s", f.V, what, orList(allowed))
	return def
}

// relative resolves path, a file named in the config, against the config
// file's directory unless it is absolute, so that the file is found
// whatever the working directory.
func (c *checker) relative(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(c.file), path)
}

// missing starts the message for a required list or mapping that is absent
// or empty.
func missing(set bool) string {
	if set {
		return "is empty"
	}
	return "missing"
}

// formatDuration is time.Duration.String without the trailing zero units
// ("5m" rather than "5m0s"), as people write durations in the file.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// hostnameProblem says why s is not a DNS host name, or returns "". It
// accepts "_" (used in service names) as resolvers do.
func hostnameProblem(s string) string {
	if len(s) > 253 {
		return "is longer than 253 characters"
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" {
			return `has an empty label (a leading, trailing or doubled ".")`
		}
		if len(l) > 63 {
			return fmt.Sprintf("has a label longer than 63 characters (%q)", l)
		}
		for _, r := range l {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return fmt.Sprintf("contains %q, which a host name cannot", r)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("has a label that starts or ends with \"-\" (%q)", l)
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return "is not a valid IP address, and a host name cannot end in a number"
	}
	return ""
}

// validName reports whether s may name an upstream: it appears in logs and
// metric labels, so it is kept to [A-Za-z0-9_.-]+.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
