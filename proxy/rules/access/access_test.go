package access

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func hash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseHtpasswd(t *testing.T) {
	good := hash(t, "secret")
	tests := []struct {
		name, file, err string
	}{
		{"bcrypt", "# users\n\nalice:" + good + "\n", ""},
		{"apr1", "alice:" + good + "\nbob:$apr1$abc$defghijkl\n", "line 2: user \"bob\" has an MD5 ($apr1$) hash"},
		{"sha", "carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "line 1: user \"carol\" has a SHA-1 ({SHA}) hash"},
		{"crypt", "dave:rl0uE7AEpOLGU\n", "line 1: user \"dave\" has not a bcrypt hash"},
		{"plain", "eve\n", "line 1: not user:hash"},
		{"twice", "alice:" + good + "\nalice:" + good + "\n", "line 2: user \"alice\" appears twice"},
		{"empty", "# nobody\n", "no users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := ParseHtpasswd([]byte(tt.file))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err = %v; want one containing %q", err, tt.err)
			case tt.err == "" && len(users) != 1:
				t.Fatalf("users = %v", users)
			}
		})
	}
}

func basic(user, pass string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
}

func TestBasicAuth_Check(t *testing.T) {
	a := NewBasicAuth("", map[string][]byte{"alice": []byte(hash(t, "secret"))}, false)
	tests := []struct {
		name string
		h    http.Header
		ok   bool
	}{
		{"right", basic("alice", "secret"), true},
		{"lower-case scheme", http.Header{"Authorization": {"basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret"))}}, true},
		{"wrong password", basic("alice", "Secret"), false},
		{"unknown user", basic("mallory", "secret"), false},
		{"none", http.Header{}, false},
		{"two fields", http.Header{"Authorization": {basic("alice", "secret").Get("Authorization"), "Basic x"}}, false},
		{"bearer", http.Header{"Authorization": {"Bearer abc"}}, false},
		{"bad base64", http.Header{"Authorization": {"Basic !!!"}}, false},
		{"no colon", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}}, false},
	}
	for _, tt := range tests {
		if got := a.Check(tt.h); got != tt.ok {
			t.Errorf("%s: Check = %v; want %v", tt.name, got, tt.ok)
		}
	}
	// Accepted credentials are remembered (one pair, whatever the
	// scheme's case), rejected ones never; a remembered pair is not
	// checked with bcrypt again (a reload makes a new BasicAuth).
	n := 0
	a.verified.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d verified pairs remembered; want 1", n)
	}
	a.Users["alice"] = []byte(hash(t, "changed"))
	if !a.Check(basic("alice", "secret")) {
		t.Error("a remembered pair was checked with bcrypt again")
	}
	if a.Check(basic("alice", "wrong")) {
		t.Error("wrong password accepted")
	}
	if c := (&BasicAuth{Realm: `a"b`}).Challenge(); c != `Basic realm="a\"b", charset="UTF-8"` {
		t.Errorf("Challenge = %s", c)
	}
}

func TestAllowed(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	o := &Options{Allow: []netip.Prefix{p("10.0.0.0/8"), p("2001:db8::/32")}, Deny: []netip.Prefix{p("10.9.0.0/16")}}
	tests := []struct {
		addr netip.Addr
		ok   bool
	}{
		{a("10.1.2.3"), true},
		{a("::ffff:10.1.2.3"), true}, // mapped
		{a("10.9.1.1"), false},       // denied inside allowed
		{a("192.0.2.1"), false},
		{a("2001:db8::1"), true},
		{netip.Addr{}, false},
	}
	for _, tt := range tests {
		if got := o.Allowed(tt.addr); got != tt.ok {
			t.Errorf("Allowed(%v) = %v; want %v", tt.addr, got, tt.ok)
		}
	}
	if !(&Options{}).Allowed(netip.Addr{}) {
		t.Error("no lists: an unknown address must pass")
	}
	if (&Options{Deny: []netip.Prefix{p("0.0.0.0/0")}}).Allowed(a("1.2.3.4")) {
		t.Error("deny all let 1.2.3.4 in")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(RateLimit{Rate: 2, Burst: 3})
	c := netip.MustParseAddr("192.0.2.1")
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.Allow(c, now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow(c, now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th = %v, %v; want refused, 500ms", ok, wait)
	}
	if ok, _ := l.Allow(netip.MustParseAddr("192.0.2.2"), now); !ok {
		t.Fatal("another client shares the bucket")
	}
	if ok, _ := l.Allow(netip.MustParseAddr("::ffff:192.0.2.1"), now); ok {
		t.Fatal("the IPv4-mapped form of a client has a bucket of its own")
	}
	v6 := NewLimiter(RateLimit{Rate: 1, Burst: 1})
	v6.Allow(netip.MustParseAddr("2001:db8:1:2::1"), now)
	if ok, _ := v6.Allow(netip.MustParseAddr("2001:db8:1:2:ffff::9"), now); ok {
		t.Fatal("another address of the same IPv6 /64 has a bucket of its own")
	}
	if ok, _ := v6.Allow(netip.MustParseAddr("2001:db8:1:3::1"), now); !ok {
		t.Fatal("another /64 shares the bucket")
	}
	if ok, _ := l.Allow(c, now.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after the refill time")
	}
	if ok, _ := l.Allow(c, now.Add(500*time.Millisecond)); ok {
		t.Fatal("refill gave more than one token")
	}
	// A long pause refills to the burst, not beyond.
	later := now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow(c, later); !ok {
			t.Fatalf("after a pause, request %d refused", i+1)
		}
	}
	if ok, _ := l.Allow(c, later); ok {
		t.Fatal("bucket grew past the burst")
	}
}

// The memory is bounded: however many addresses come, at most MaxClients
// (rounded up to the shards) are remembered.
func TestLimiter_bounded(t *testing.T) {
	const max = 64
	l := NewLimiter(RateLimit{Rate: 1, Burst: 1, MaxClients: max})
	now := time.Unix(1000, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				a := netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)})
				l.Allow(a, now)
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > max+limiterShards {
		t.Fatalf("%d addresses remembered; want at most %d", n, max+limiterShards)
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	l := NewLimiter(RateLimit{Rate: 1e9, Burst: 1 << 20})
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i>>8, i&255))
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(addrs[i&1023], now)
		i++
	}
}
