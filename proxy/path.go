package proxy

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
)

// errPathAboveRoot is the answer to a path whose ".." segments climb above
// "/": RFC 3986 5.2.4 would drop them silently, which would route a request
// for one thing and serve another.
var errPathAboveRoot = errors.New(`the path climbs above "/" with ".."`)

// errDotWithParams is the answer to a "." or ".." segment with path
// parameters ("/..;x/"): Tomcat drops the parameters and reads it as a dot
// segment, so the backend would serve a path other than the one routed.
var errDotWithParams = errors.New(`the path has a "." or ".." segment with ";" parameters`)

// errPathEscape is the answer to a '%' not followed by two hex digits (the
// URL parsers refuse it first; this guards the raw form cleanPath builds
// from).
var errPathEscape = errors.New("the path has a malformed %-escape")

// cleanPath is webtier's one decision on request paths, taken before
// routing so that the router and the backend see the same path:
// percent-encoded unreserved characters (letters, digits, "-", ".", "_",
// "~") are decoded, dot segments are removed (RFC 3986 5.2.4), "//" is
// merged into "/" (as httpd, nginx and Tomcat do), and a path
// whose ".." climbs above the root is refused, and so is a dot segment
// with path parameters ("..;x", which Tomcat reads as ".."). Every other
// escape, "%2F"
// among them, is kept byte for byte, so "/public/..%2fadmin" stays one
// segment below /public/. Bytes a URI may not carry as they are (a
// backslash, a space, non-ASCII) are escaped, as Go's client would escape
// them anyway, so that the raw form below is the one the backend receives
// (url.URL.EscapedPath would otherwise re-encode the decoded path and turn
// a kept "%2F" into "/").
//
// It returns u itself when nothing changes, which is the case, without a
// scan of more than the path, for a path with no escape Go kept raw and no
// dot segment; otherwise a copy whose Path (what the router matches) is
// the decoding of RawPath (what the backend receives).
func cleanPath(u *url.URL) (*url.URL, error) {
	if u.RawPath == "" && !needsCleaning(u.Path) {
		// RawPath is empty when the request's path was exactly
		// url.PathEscape-like encoding of Path: no unreserved character
		// escaped, no kept escape that decoding would lose.
		return u, nil
	}
	raw := u.RawPath
	if raw == "" {
		raw = u.EscapedPath()
	}
	clean, err := cleanRawPath(raw)
	if err != nil {
		return nil, err
	}
	if clean == u.RawPath {
		return u, nil
	}
	path, err := url.PathUnescape(clean)
	if err != nil {
		return nil, errPathEscape
	}
	nu := *u
	nu.Path, nu.RawPath = path, clean
	return &nu, nil
}

// cleanRawPath applies cleanPath's rules to an escaped path and returns it
// (the same string when nothing changes). A path that does not start with
// "/" ("*", an empty one) is returned as it is.
func cleanRawPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return p, nil
	}
	change := needsCleaning(p)
	for i := 0; i < len(p) && !change; i++ {
		switch c := p[i]; {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errPathEscape
			}
			change = unreserved(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
		case !rawPathByte(c):
			change = true
		}
	}
	if !change {
		return p, nil
	}
	// Decode and escape into b, then remove the dot segments in place.
	b := make([]byte, 0, len(p)+8)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errPathEscape
			}
			if d := unhex(p[i+1])<<4 | unhex(p[i+2]); unreserved(d) {
				b = append(b, d)
			} else {
				b = append(b, p[i:i+3]...)
			}
			i += 2
		case rawPathByte(c):
			b = append(b, c)
		default:
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	out, err := removeDotSegments(b)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// removeDotSegments removes "." and ".." segments from p, which starts with
// "/", reusing p's array. Separators are literal "/" only: an escaped
// "%2F" is part of its segment.
func removeDotSegments(p []byte) ([]byte, error) {
	out := p[:0] // writes never overtake reads: a segment only moves left
	for i := 1; i <= len(p); {
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i:j]
		last := j == len(p)
		if name, _, ok := bytes.Cut(seg, []byte(";")); ok && (string(name) == "." || string(name) == "..") {
			return nil, errDotWithParams
		}
		switch string(seg) {
		case ".":
			if last {
				out = append(out, '/')
			}
		case "..":
			k := len(out) - 1
			for k >= 0 && out[k] != '/' {
				k--
			}
			if k < 0 {
				return nil, errPathAboveRoot
			}
			out = out[:k]
			if last {
				out = append(out, '/')
			}
		case "":
			// An empty segment: "//" is merged into one "/", as httpd
			// (MergeSlashes), nginx (merge_slashes) and Tomcat do, so that
			// "//admin" is routed as the "/admin" the backend serves. A
			// trailing "/" stays.
			if last {
				out = append(out, '/')
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j + 1
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	return out, nil
}

// needsCleaning reports whether p has a dot segment or an empty one
// ("//"), which cleanPath removes.
func needsCleaning(p string) bool {
	return hasDotSegment(p) || strings.Contains(p, "//")
}

// hasDotSegment reports whether p has a "." or ".." segment, or one of
// them with path parameters (".;x", "..;x").
func hasDotSegment(p string) bool {
	for {
		i := strings.Index(p, "/.")
		if i < 0 {
			return false
		}
		p = p[i+2:]
		if p == "" || p[0] == '/' || p[0] == ';' {
			return true
		}
		if p[0] == '.' && (len(p) == 1 || p[1] == '/' || p[1] == ';') {
			return true
		}
	}
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// rawPathByte reports whether c may stand unescaped in the path Go sends:
// unreserved, sub-delims, ":", "@", "/", and the "[" and "]" Go's
// url.URL.EscapedPath accepts as they are.
func rawPathByte(c byte) bool {
	if unreserved(c) {
		return true
	}
	return strings.IndexByte("!$&'()*+,;=:@/[]", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

const upperHex = "0123456789ABCDEF"
