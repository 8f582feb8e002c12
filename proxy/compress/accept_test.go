package compress

import "testing"

func TestNegotiate(t *testing.T) {
	both := []string{Zstd, Gzip}
	tests := []struct {
		accept  []string
		offered []string
		want    string
	}{
		{nil, both, ""},
		{[]string{""}, both, ""},
		{[]string{"gzip"}, both, "gzip"},
		{[]string{"gzip, deflate, br, zstd"}, both, "zstd"},
		{[]string{"gzip, deflate, br, zstd"}, []string{Gzip, Zstd}, "gzip"},
		{[]string{"gzip;q=1.0, zstd;q=0.5"}, both, "gzip"},
		{[]string{"zstd;q=0, gzip"}, both, "gzip"},
		{[]string{"zstd;q=0", "gzip;q=0"}, both, ""},
		{[]string{"*"}, both, "zstd"},
		{[]string{"*;q=0"}, both, ""},
		{[]string{"*;q=0.1, gzip;q=0.5"}, both, "gzip"},
		{[]string{"gzip;q=0, *"}, both, "zstd"},
		{[]string{"identity"}, both, ""},
		{[]string{"GZIP"}, both, "gzip"},
		{[]string{"x-gzip"}, both, "gzip"},
		{[]string{"gzip;q=0.000"}, both, ""},
		{[]string{"gzip;q=1.001"}, both, ""}, // malformed: refused
		{[]string{"gzip;q=2"}, both, ""},
		{[]string{"gzip ; Q=0.8 , zstd;q=0.9"}, both, "zstd"},
		{[]string{"gzip;level=1"}, both, "gzip"},
		{[]string{"br"}, both, ""},
		{[]string{"gzip"}, []string{}, ""},
		{[]string{" , ,gzip"}, both, "gzip"},
	}
	for _, tt := range tests {
		if got := Negotiate(tt.accept, tt.offered); got != tt.want {
			t.Errorf("Negotiate(%q, %q) = %q; want %q", tt.accept, tt.offered, got, tt.want)
		}
	}
}

func TestNegotiateAllocatesNothing(t *testing.T) {
	ae := []string{"gzip, deflate, br, zstd;q=0.9"}
	offered := []string{Zstd, Gzip}
	if n := testing.AllocsPerRun(100, func() { Negotiate(ae, offered) }); n != 0 {
		t.Errorf("Negotiate allocates %v times; want 0", n)
	}
}
