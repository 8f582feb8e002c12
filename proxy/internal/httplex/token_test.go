package httplex

import "testing"

func TestHasToken(t *testing.T) {
	tests := []struct {
		vv   []string
		want bool
	}{
		{[]string{"close"}, true},
		{[]string{"Keep-Alive, CLOSE"}, true},
		{[]string{"upgrade", " close "}, true},
		{[]string{"closed"}, false},
		{[]string{"keep-alive,upgrade"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := HasToken(tt.vv, "close"); got != tt.want {
			t.Errorf("HasToken(%q, close) = %v; want %v", tt.vv, got, tt.want)
		}
	}
}

func TestEqualFold(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"Upgrade", "upgrade", true},
		{"UPGRADE", "Upgrade", true},
		{"upgrade", "upgrades", false},
		{"trailer\u017f", "trailers", false}, // not Unicode folding
		{"\u212a", "k", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := EqualFold(tt.a, tt.b); got != tt.want {
			t.Errorf("EqualFold(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
		if got := EqualFold([]byte(tt.a), tt.b); got != tt.want {
			t.Errorf("EqualFold([]byte(%q), %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
