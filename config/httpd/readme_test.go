package httpd

import (
	"os"
	"sort"
	"strings"
	"testing"
)

// README's "Migrating from httpd" names every directive the translator's
// table takes, so that its list of what is translated stays true.
func TestREADMENamesEveryDirective(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ToLower(string(b))
	start := strings.Index(text, "## migrating from httpd")
	if start < 0 {
		t.Fatal(`README has no "Migrating from httpd" section`)
	}
	sec := text[start:]
	if end := strings.Index(sec[3:], "\n## "); end >= 0 {
		sec = sec[:end+3]
	}
	var missing []string
	for name := range handlers {
		if !strings.Contains(sec, "`"+name) && !strings.Contains(sec, "<"+name) {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("README's Migrating from httpd does not name: %s", strings.Join(missing, ", "))
	}
}
