package resolver

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name       string
		conf       string
		wantNS     []string
		wantSearch []string
		wantNdots  int
	}{
		{
			name:       "typical-vpc",
			conf:       "# generated\nnameserver 10.0.0.2\nsearch ec2.internal example.com\noptions ndots:2 timeout:1\n",
			wantNS:     []string{"10.0.0.2:53"},
			wantSearch: []string{"ec2.internal.", "example.com."},
			wantNdots:  2,
		},
		{
			name:       "last-search-or-domain-wins",
			conf:       "search a.test\ndomain b.test\n",
			wantSearch: []string{"b.test."},
			wantNdots:  -1,
		},
		{
			name:      "at-most-three-nameservers-and-ipv6",
			conf:      "nameserver 10.0.0.1\nnameserver ::1\nnameserver not-an-ip\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n",
			wantNS:    []string{"10.0.0.1:53", "[::1]:53", "10.0.0.3:53"},
			wantNdots: -1,
		},
		{
			name:      "comments-and-bad-ndots",
			conf:      "; nameserver 10.9.9.9\n#search x\noptions ndots:x rotate\noptions ndots:99\n",
			wantNdots: 15,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseResolvConf(strings.NewReader(tt.conf))
			if err != nil {
				t.Fatalf("parseResolvConf: %v", err)
			}
			if !slices.Equal(got.nameservers, tt.wantNS) {
				t.Errorf("nameservers = %q; want %q", got.nameservers, tt.wantNS)
			}
			if !slices.Equal(got.search, tt.wantSearch) {
				t.Errorf("search = %q; want %q", got.search, tt.wantSearch)
			}
			if got.ndots != tt.wantNdots {
				t.Errorf("ndots = %d; want %d", got.ndots, tt.wantNdots)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	search := []string{"a.test", "b.test."}
	tests := []struct {
		name  string
		ndots int
		want  []string
	}{
		{name: "web", ndots: 1, want: []string{"web.a.test.", "web.b.test.", "web."}},
		{name: "web.svc", ndots: 1, want: []string{"web.svc.", "web.svc.a.test.", "web.svc.b.test."}},
		{name: "web.svc", ndots: 2, want: []string{"web.svc.a.test.", "web.svc.b.test.", "web.svc."}},
		{name: "web", ndots: 0, want: []string{"web.", "web.a.test.", "web.b.test."}},
		{name: "web.svc.", ndots: 5, want: []string{"web.svc."}},
	}
	for _, tt := range tests {
		if got := candidates(tt.name, search, tt.ndots); !slices.Equal(got, tt.want) {
			t.Errorf("candidates(%q, ndots %d) = %q; want %q", tt.name, tt.ndots, got, tt.want)
		}
	}
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63)
	if got := candidates(long, []string{strings.Repeat("d", 63) + ".test"}, 1); len(got) != 1 {
		t.Errorf("candidates of a name that overflows with the search suffix = %q; want only the name itself", got)
	}
}

func TestNew_resolvConf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := write("resolv.conf", "nameserver 10.0.0.2\nsearch ec2.internal\noptions ndots:3\n")
	tests := []struct {
		name       string
		opts       Options
		wantNS     []string
		wantSearch []string
		wantNdots  int
	}{
		{name: "from-file", opts: Options{ResolvConf: conf}, wantNS: []string{"10.0.0.2:53"}, wantSearch: []string{"ec2.internal."}, wantNdots: 3},
		{name: "options-override-search-and-ndots", opts: Options{ResolvConf: conf, Search: []string{"x.test"}, Ndots: 1},
			wantNS: []string{"10.0.0.2:53"}, wantSearch: []string{"x.test"}, wantNdots: 1},
		{name: "empty-search-list-overrides-the-file's", opts: Options{ResolvConf: conf, Search: []string{}},
			wantNS: []string{"10.0.0.2:53"}, wantSearch: []string{}, wantNdots: 3},
		{name: "nameservers-skip-the-file", opts: Options{ResolvConf: "/nonexistent", Nameservers: []string{"127.0.0.1:5353", "::1", "[::2]"}},
			wantNS: []string{"127.0.0.1:5353", "[::1]:53", "[::2]:53"}, wantNdots: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.opts)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer r.Close()
			if !slices.Equal(r.servers, tt.wantNS) || !slices.Equal(r.search, tt.wantSearch) || r.ndots != tt.wantNdots ||
				(tt.wantSearch != nil) != (r.search != nil) {
				t.Errorf("servers %q search %q ndots %d; want %q %q %d", r.servers, r.search, r.ndots, tt.wantNS, tt.wantSearch, tt.wantNdots)
			}
		})
	}
}

func TestNew_errors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search x.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		wantErr string
		wantIs  error
	}{
		{name: "missing-file", opts: Options{ResolvConf: filepath.Join(dir, "nope")}, wantErr: "reading resolv.conf", wantIs: os.ErrNotExist},
		{name: "no-nameserver", opts: Options{ResolvConf: empty}, wantErr: "lists no nameserver"},
		{name: "hostname-nameserver", opts: Options{Nameservers: []string{"ns.example.com"}}, wantErr: "not an IP address"},
		{name: "max-below-min", opts: Options{Nameservers: []string{"::1"}, MinTTL: time.Minute, MaxTTL: time.Second}, wantErr: "MaxTTL 1s is less than MinTTL 1m0s"},
		{name: "negative", opts: Options{Nameservers: []string{"::1"}, Stale: -time.Second}, wantErr: "Stale -1s is negative"},
		{name: "bad-family", opts: Options{Nameservers: []string{"::1"}, Family: 7}, wantErr: "unknown address family"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.opts)
			if err == nil {
				r.Close()
				t.Fatalf("New = nil error; want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "resolver: ") {
				t.Errorf("New error = %q; want \"resolver: ...%s...\"", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false; want true", err, tt.wantIs)
			}
		})
	}
}

func TestError(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
		is   error
	}{
		{
			name: "nxdomain",
			err:  &Error{Name: "app.test", Server: "10.0.0.2:53", Rcode: dns.RcodeNameError, IsNotFound: true, Err: ErrNoSuchHost},
			want: "lookup app.test on 10.0.0.2:53: resolver: no such host",
			is:   ErrNoSuchHost,
		},
		{
			name: "closed",
			err:  closedError("app.test"),
			want: "lookup app.test: resolver: closed",
			is:   ErrClosed,
		},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s: Error() = %q; want %q", tt.name, got, tt.want)
		}
		var err error = tt.err
		if !errors.Is(err, tt.is) {
			t.Errorf("%s: errors.Is(%v, %v) = false; want true", tt.name, err, tt.is)
		}
	}
}
