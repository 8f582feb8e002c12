package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func trustedFront(cidrs ...string) *front {
	f := &front{}
	for _, c := range cidrs {
		f.trusted = append(f.trusted, netip.MustParsePrefix(c))
	}
	return f
}

// The client is decided as mod_remoteip decides it: the peer unless it
// is a trusted proxy, else the right-most X-Forwarded-For address that
// is not one, with the peer's port.
func TestFront_client(t *testing.T) {
	for _, tc := range []struct {
		name, remote, xff string
		trusted           []string
		want, wantRemote  string
	}{
		{"no trusted proxies", "198.51.100.7:5000", "1.1.1.1", nil, "198.51.100.7", "198.51.100.7:5000"},
		{"untrusted peer: a forged header is ignored", "198.51.100.7:5000", "1.1.1.1", []string{"10.0.0.0/8"}, "198.51.100.7", "198.51.100.7:5000"},
		{"trusted peer without header", "10.0.0.5:41000", "", []string{"10.0.0.0/8"}, "10.0.0.5", "10.0.0.5:41000"},
		{"ALB: the client it saw", "10.0.0.5:41000", "203.0.113.9", []string{"10.0.0.0/8"}, "203.0.113.9", "203.0.113.9:41000"},
		{"client-sent entries before it", "10.0.0.5:41000", "1.1.1.1, 203.0.113.9", []string{"10.0.0.0/8"}, "203.0.113.9", "203.0.113.9:41000"},
		{"two trusted hops", "10.0.0.5:41000", "1.1.1.1, 203.0.113.9, 10.0.0.7", []string{"10.0.0.0/8"}, "203.0.113.9", "203.0.113.9:41000"},
		{"several fields", "10.0.0.5:41000", "1.1.1.1\n203.0.113.9, 10.0.0.7", []string{"10.0.0.0/8"}, "203.0.113.9", "203.0.113.9:41000"},
		{"garbage ends the chain", "10.0.0.5:41000", "203.0.113.9, bogus, 10.0.0.7", []string{"10.0.0.0/8"}, "10.0.0.7", "10.0.0.7:41000"},
		{"all trusted: the left-most", "10.0.0.5:41000", "10.0.0.8, 10.0.0.7", []string{"10.0.0.0/8"}, "10.0.0.8", "10.0.0.8:41000"},
		{"IPv6", "[2001:db8::5]:41000", "2001:db8:1::9", []string{"2001:db8::/64"}, "2001:db8:1::9", "[2001:db8:1::9]:41000"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.5]:41000", "203.0.113.9", []string{"10.0.0.0/8"}, "203.0.113.9", "203.0.113.9:41000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for v := range strings.SplitSeq(tc.xff, "\n") {
				if v != "" {
					r.Header.Add("X-Forwarded-For", v)
				}
			}
			f := trustedFront(tc.trusted...)
			addr, remote := f.client(r)
			if addr.String() != tc.want || remote != tc.wantRemote {
				t.Fatalf("client = %s, %q; want %s, %q", addr, remote, tc.want, tc.wantRemote)
			}
			if got := f.clientRemote(r); got != tc.wantRemote {
				t.Fatalf("clientRemote = %q; want %q", got, tc.wantRemote)
			}
		})
	}
}

// Without trusted proxies, or without X-Forwarded-For, deciding the
// client costs no allocation.
func TestFront_clientRemoteAllocs(t *testing.T) {
	r := &http.Request{RemoteAddr: "198.51.100.7:5000", Header: http.Header{"X-Forwarded-For": {"1.1.1.1"}}}
	plain := trustedFront()
	bare := &http.Request{RemoteAddr: "10.0.0.5:41000", Header: http.Header{}}
	behind := trustedFront("10.0.0.0/8")
	if n := testing.AllocsPerRun(100, func() { plain.clientRemote(r); behind.clientRemote(bare) }); n != 0 {
		t.Fatalf("%v allocations; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { plain.client(r) }); n != 0 {
		t.Fatalf("client: %v allocations; want 0", n)
	}
}

// Tomcat gets the client behind a trusted proxy as remote_addr and
// remote_host (getRemoteAddr, getRemoteHost), as httpd's mod_remoteip
// gives it to mod_proxy_ajp, not the proxy's address; from an untrusted
// peer a forged X-Forwarded-For changes nothing.
func TestForward_ajpRemoteAddrIsTheClient(t *testing.T) {
	seen := make(chan string, 4)
	ajpTarget := fakeAJPRemote(t, seen)
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "198.51.100.4 198.51.100.4"},
		{"untrusted", nil, "127.0.0.1 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{
				Routes:    []RouteOptions{{PathPrefix: "/", Upstream: "tc"}},
				Upstreams: []UpstreamOptions{{Name: "tc", Targets: []TargetOptions{ajpTarget}}},
				Listeners: []ListenerOptions{{Name: "front", TrustedProxies: tc.trusted}},
			}
			fe, _ := startProxy(t, opts)
			req, _ := http.NewRequest("GET", fe+"/x", nil)
			req.Header.Set("X-Forwarded-For", "198.51.100.4")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := <-seen; got != tc.want {
				t.Fatalf("Tomcat got remote_addr remote_host %q; want %q", got, tc.want)
			}
		})
	}
}

// fakeAJPRemote is an AJP13 container that sends "remote_addr
// remote_host" of each FORWARD_REQUEST to seen and answers 200.
func fakeAJPRemote(t *testing.T, seen chan<- string) TargetOptions {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var h [4]byte
					if _, err := io.ReadFull(br, h[:]); err != nil {
						return
					}
					p := make([]byte, binary.BigEndian.Uint16(h[2:]))
					if _, err := io.ReadFull(br, p); err != nil {
						return
					}
					if len(p) == 1 && p[0] == 10 { // CPING
						c.Write([]byte{'A', 'B', 0, 1, 9})
						continue
					}
					if len(p) < 2 || p[0] != 2 { // not FORWARD_REQUEST: a body packet
						continue
					}
					// type, method, then protocol, req_uri, remote_addr,
					// remote_host: each a length, the bytes and a NUL.
					var strs []string
					for off := 2; len(strs) < 4 && off+2 <= len(p); {
						n := int(binary.BigEndian.Uint16(p[off:]))
						strs = append(strs, string(p[off+2:off+2+n]))
						off += 2 + n + 1
					}
					seen <- fmt.Sprintf("%s %s", strs[2], strs[3])
					// SEND_HEADERS 200 "OK" without headers; END_RESPONSE.
					c.Write([]byte{'A', 'B', 0, 9, 4, 0, 200, 0, 2, 'O', 'K', 0, 0, 0})
					c.Write([]byte{'A', 'B', 0, 2, 5, 1})
				}
			}()
		}
	}()
	return TargetOptions{Scheme: "ajp", Host: "127.0.0.1", Port: uint16(ln.Addr().(*net.TCPAddr).Port), Weight: 1}
}

// forwarded_header: true sends RFC 7239 Forwarded with the same
// addresses as X-Forwarded-For; off (the default), none, and a client's
// own Forwarded never reaches the backend.
func TestSetForwarded_forwardedHeader(t *testing.T) {
	for _, tc := range []struct {
		name, remote, xff, fwd string
		trusted                []string
		on                     bool
		want                   string
	}{
		{"off", "198.51.100.7:5000", "", "for=1.1.1.1", nil, false, ""},
		{"untrusted", "198.51.100.7:5000", "1.1.1.1", "for=1.1.1.1", nil, true, `for=198.51.100.7;proto=http;host="a.example:8080"`},
		{"behind an ALB", "10.0.0.5:41000", "203.0.113.9", "", []string{"10.0.0.0/8"}, true, `for=203.0.113.9, for=10.0.0.5;proto=http;host="a.example:8080"`},
		{"IPv6 and unknown", "[2001:db8::5]:41000", `unknown, 2001:db8::9, "x`, "", []string{"2001:db8::/64"}, true,
			`for=unknown, for="[2001:db8::9]", for="\"x", for="[2001:db8::5]";proto=http;host="a.example:8080"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := trustedFront(tc.trusted...)
			f.forwarded = tc.on
			in := &http.Request{RemoteAddr: tc.remote, Host: "a.example:8080", Header: http.Header{}}
			if tc.xff != "" {
				in.Header.Set("X-Forwarded-For", tc.xff)
			}
			out := &http.Request{Header: outboundHeader(http.Header{"Forwarded": {tc.fwd}}, false, "")}
			f.setForwarded(in, out)
			if got := out.Header.Get("Forwarded"); got != tc.want {
				t.Fatalf("Forwarded: %q; want %q", got, tc.want)
			}
		})
	}
}
