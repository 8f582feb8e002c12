// Package access is a route's limits and access control: allow and deny
// by client address (httpd's Require ip), HTTP Basic authentication from
// an htpasswd file of bcrypt hashes (AuthType Basic, AuthUserFile), a
// per-client request rate limit (nginx's limit_req), a request body size
// limit (LimitRequestBody) and a response header timeout (ProxyTimeout).
//
// The proxy decides what to answer; this package only decides.
package access

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Options are a route's limits and access rules as configured. The zero
// value allows everything.
type Options struct {
	// MaxBodySize is the largest request body in bytes; 0: no limit.
	MaxBodySize int64
	// Timeout takes the place of the upstream's response_header_timeout
	// for the route's requests, longer or shorter: it bounds the wait
	// for the backend's response headers in each try, as that one does;
	// 0: the upstream's.
	Timeout time.Duration
	// Allow, when not empty, lists the only client addresses let in.
	Allow []netip.Prefix
	// Deny lists client addresses refused (checked after Allow).
	Deny []netip.Prefix
	// BasicAuth, when not nil, requires a user from its file.
	BasicAuth *BasicAuth
	// RateLimit, when not nil, limits requests per client address.
	RateLimit *RateLimit
}

// DefaultRealm is the realm of basic_auth when none is given.
const DefaultRealm = "webtier"

// BasicAuth is basic_auth: the users and their bcrypt hashes.
type BasicAuth struct {
	Realm string
	// Users maps a user name to its bcrypt hash (from ParseHtpasswd).
	Users map[string][]byte
	// ForwardAuth keeps the Authorization field on the forwarded request.
	ForwardAuth bool

	// dummy is compared against when the user is unknown, so that an
	// unknown user costs the time a known one does (the highest cost
	// among the users' hashes).
	dummy []byte

	// verified holds HMAC-SHA-256 digests (under key, made at start) of
	// "user\x00password" pairs bcrypt accepted, so that a logged-in
	// client's every request does not cost a bcrypt comparison (tens of
	// milliseconds of CPU), as httpd's mod_authn_socache. Bounded: it is
	// emptied when it reaches maxVerified. A reload builds a new
	// BasicAuth, so a changed password takes effect then.
	key      [32]byte
	verified sync.Map // [32]byte -> struct{}
	nOK      atomic.Int64
}

// maxVerified bounds BasicAuth's cache of accepted credentials.
const maxVerified = 4096

// ParseHtpasswd reads an htpasswd file's "user:hash" lines (blank lines and
// lines starting with # are skipped). Only bcrypt hashes ($2a$, $2b$, $2y$,
// written by htpasswd -B) are accepted: MD5-crypt ($apr1$), SHA-1 ({SHA}),
// crypt and plain text are quick to guess from a stolen file. The error
// names the line.
func ParseHtpasswd(data []byte) (map[string][]byte, error) {
	users := make(map[string][]byte)
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(s, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: not user:hash", line)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q appears twice; keep one line per user", line, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			kind := "not a bcrypt hash"
			switch {
			case strings.HasPrefix(hash, "$apr1$"):
				kind = "an MD5 ($apr1$) hash"
			case strings.HasPrefix(hash, "{SHA}"):
				kind = "a SHA-1 ({SHA}) hash"
			}
			return nil, fmt.Errorf("line %d: user %q has %s; only bcrypt is accepted: set the password again with htpasswd -B", line, user, kind)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("no users; add one with htpasswd -B FILE USER")
	}
	return users, nil
}

// NewBasicAuth returns the basic_auth of users (from ParseHtpasswd).
func NewBasicAuth(realm string, users map[string][]byte, forwardAuth bool) *BasicAuth {
	if realm == "" {
		realm = DefaultRealm
	}
	a := &BasicAuth{Realm: realm, Users: users, ForwardAuth: forwardAuth}
	cost := bcrypt.MinCost
	for _, h := range users {
		if c, err := bcrypt.Cost(h); err == nil && c > cost {
			cost = c
		}
	}
	a.dummy, _ = bcrypt.GenerateFromPassword([]byte("webtier: no such user"), cost)
	rand.Read(a.key[:])
	return a
}

// Check reports whether the request's Authorization field names a user of
// a with its password. Every attempt that carries credentials costs one
// bcrypt comparison, whether the user exists or not.
func (a *BasicAuth) Check(h http.Header) bool {
	vv := h["Authorization"]
	if len(vv) != 1 {
		return false
	}
	v := vv[0]
	const prefix = "Basic "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[len(prefix):]))
	if err != nil {
		return false
	}
	user, pass, ok := bytes.Cut(raw, []byte{':'})
	if !ok {
		return false
	}
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write(user)
	mac.Write([]byte{0})
	mac.Write(pass)
	var digest [32]byte
	mac.Sum(digest[:0])
	if _, ok := a.verified.Load(digest); ok {
		return true
	}
	hash, known := a.Users[string(user)]
	if !known {
		hash = a.dummy
	}
	okPass := bcrypt.CompareHashAndPassword(hash, pass) == nil
	if subtle.ConstantTimeEq(b2i(known), 1)&subtle.ConstantTimeEq(b2i(okPass), 1) != 1 {
		return false
	}
	if a.nOK.Add(1) > maxVerified {
		a.verified.Clear()
		a.nOK.Store(1)
	}
	a.verified.Store(digest, struct{}{})
	return true
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// Challenge is the WWW-Authenticate value of a 401.
func (a *BasicAuth) Challenge() string {
	realm := a.Realm
	if realm == "" {
		realm = DefaultRealm
	}
	return `Basic realm="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(realm) + `", charset="UTF-8"`
}

// Allowed reports whether the client address a may use the route: in
// Allow (when Allow is not empty) and not in Deny. An invalid address is
// allowed only when there are no lists.
func (o *Options) Allowed(a netip.Addr) bool {
	if len(o.Allow) == 0 && len(o.Deny) == 0 {
		return true
	}
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if len(o.Allow) > 0 && !containsAddr(o.Allow, a) {
		return false
	}
	return !containsAddr(o.Deny, a)
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// HasAddressRules reports whether the options read the client address.
func (o *Options) HasAddressRules() bool {
	return len(o.Allow) > 0 || len(o.Deny) > 0 || o.RateLimit != nil
}
