package resolver

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// Names answered without DNS, as glibc does with "hosts: files dns" in
// nsswitch.conf: `ProxyPass / http://localhost:8080/` is the most common
// httpd line, and a container's /etc/hosts often names its neighbours.
//
//   - localhost and every name under .localhost are the loopback address
//     (127.0.0.1, ::1 with AAAA), whatever DNS or the hosts file say
//     (RFC 6761 section 6.3);
//   - a name the hosts file lists is answered from it, for the families
//     asked for; a name it lists only for another family goes to DNS, as
//     glibc's files backend reports it not found;
//   - the file is read when first needed and read again when its size or
//     modification time changes, checked at most once per hostsCheckEvery;
//     its answers are used for hostsTTL, so a change to the file is followed
//     within hostsTTL + hostsCheckEvery.
//
// Search domains are not applied to the hosts file (glibc applies them to
// DNS queries only).
const (
	hostsTTL        = 5 // seconds
	hostsCheckEvery = time.Second
)

// SourceDNS, SourceHosts and SourceLocalhost say where LocalAnswer found a
// name, for `webtier validate`.
const (
	SourceDNS       = "dns"
	SourceHosts     = "hosts file"
	SourceLocalhost = "localhost rule (RFC 6761)"
)

// hostsFile is one hosts file as the resolver reads it. It is safe for
// concurrent use: every name's refresh goroutine consults it.
type hostsFile struct {
	path string

	mu      sync.Mutex // guards the fields below
	checked time.Time  // last stat
	size    int64
	mtime   time.Time
	names   map[string][]netip.Addr // lower-case name without trailing dot -> addresses in file order
	err     error                   // the last read's error (a missing file is no error: no names)
}

func newHostsFile(path string) *hostsFile { return &hostsFile{path: path} }

// lookup returns the file's addresses for name, reading the file again if
// it changed since the last check.
func (h *hostsFile) lookup(name string, now time.Time) []netip.Addr {
	if h == nil || h.path == "" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.checked.IsZero() || now.Sub(h.checked) >= hostsCheckEvery {
		h.checked = now
		h.refreshLocked()
	}
	return h.names[canonicalHostName(name)]
}

// refreshLocked reads the file again if its size or modification time
// changed. A file that cannot be read keeps the names last read from it.
func (h *hostsFile) refreshLocked() {
	fi, err := os.Stat(h.path)
	if os.IsNotExist(err) {
		h.names, h.size, h.mtime, h.err = nil, 0, time.Time{}, nil
		return
	}
	if err != nil {
		h.err = err
		return
	}
	if h.names != nil && fi.Size() == h.size && fi.ModTime().Equal(h.mtime) {
		return
	}
	data, err := os.ReadFile(h.path)
	if err != nil {
		h.err = err
		return
	}
	h.names, h.size, h.mtime, h.err = parseHosts(data), fi.Size(), fi.ModTime(), nil
}

// parseHosts reads hosts(5): an address, then one or more names, per line;
// '#' starts a comment. Lines whose address does not parse are skipped, as
// glibc skips them. The result is never nil.
func parseHosts(data []byte) map[string][]netip.Addr {
	names := map[string][]netip.Addr{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		for _, n := range f[1:] {
			n = canonicalHostName(n)
			if !containsAddr(names[n], ip) {
				names[n] = append(names[n], ip)
			}
		}
	}
	return names
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// canonicalHostName lower-cases name and drops one trailing dot.
func canonicalHostName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// isLocalhost reports whether name is localhost or under .localhost.
func isLocalhost(name string) bool {
	n := canonicalHostName(name)
	return n == "localhost" || strings.HasSuffix(n, ".localhost")
}

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.IPv6Loopback()
)

// local answers name without DNS when it can (see the comment at the top
// of this file): the addresses for family, where they came from, and true;
// or false when DNS must be asked.
func local(hosts *hostsFile, family Family, name string, now time.Time) ([]netip.Addr, string, bool) {
	if isLocalhost(name) {
		switch family {
		case FamilyIPv6:
			return []netip.Addr{loopback6}, SourceLocalhost, true
		case FamilyBoth:
			return []netip.Addr{loopback4, loopback6}, SourceLocalhost, true
		default:
			return []netip.Addr{loopback4}, SourceLocalhost, true
		}
	}
	var out []netip.Addr
	for _, a := range hosts.lookup(name, now) {
		if family == FamilyBoth || (family == FamilyIPv6) == a.Is6() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, "", false
	}
	return sortAddrs(out), SourceHosts, true
}

// LocalAnswer tells where a Resolver with o would find name, without
// asking DNS: for localhost names and names in o's hosts file, their
// addresses and SourceLocalhost or SourceHosts; for any other name, no
// addresses and SourceDNS. An unreadable hosts file is an error. It is for
// `webtier validate`; the Resolver itself does the same on every
// resolution.
func LocalAnswer(o Options, name string) ([]netip.Addr, string, error) {
	path := o.HostsFile
	if path == "" {
		path = DefaultHostsFile
	}
	h := newHostsFile(path)
	addrs, src, ok := local(h, o.Family, name, time.Now())
	if h.err != nil {
		return nil, "", fmt.Errorf("resolver: reading hosts file: %w", h.err)
	}
	if !ok {
		return nil, SourceDNS, nil
	}
	return addrs, src, nil
}
