package config

import (
	"errors"
	"io/fs"
	"net/textproto"
	"strings"

	"github.com/webtier/webtier/admin"
	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/accesslog"
)

// AccessLog configures the access log.
type AccessLog struct {
	// Format is the line format; FormatOff for none. Default combined.
	Format accesslog.Format
	// Path is "stdout", "stderr" or a file (made absolute against the
	// config file's directory). Default "stdout".
	Path string
}

func (c *checker) accessLog(r *rawAccessLog) AccessLog {
	f := c.oneOf(r.Format, "access log format", accesslog.DefaultFormat, "combined", "common", "json", "off")
	format, _ := accesslog.ParseFormat(f)
	path := accesslog.DefaultPath
	if r.Path.Set {
		switch {
		case r.Path.V == "":
			c.errorf(r.Path.loc, `is empty; write stdout, stderr or the path of the log file (or format: off for no access log)`)
		case r.Path.V == "stdout" || r.Path.V == "stderr":
			path = r.Path.V
		default:
			path = c.relative(r.Path.V)
		}
	}
	return AccessLog{Format: format, Path: path}
}

func (c *checker) requestID(r *rawRequestID) proxy.RequestIDOptions {
	if r.Enabled.Set && !r.Enabled.V {
		return proxy.RequestIDOptions{}
	}
	o := proxy.RequestIDOptions{Header: proxy.DefaultRequestIDHeader}
	if r.Header.Set {
		if !validFieldName(r.Header.V) {
			c.errorf(r.Header.loc, "%q is not a header field name; write one like %s (the default)", r.Header.V, proxy.DefaultRequestIDHeader)
		} else {
			o.Header = textproto.CanonicalMIMEHeaderKey(r.Header.V)
		}
	}
	if r.AJPAttribute.Set {
		v := r.AJPAttribute.V
		if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			c.errorf(r.AJPAttribute.loc, "%q is not an attribute name; write one like X_REQUEST_ID, which Tomcat's AJP connector must allow with allowedRequestAttributesPattern", v)
		} else {
			o.AJPAttribute = v
		}
	}
	return o
}

// validFieldName reports whether s is an HTTP field name (RFC 9110 token).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// maxTokenFile bounds what is read of an admin token_file.
const maxTokenFile = 4 << 10

func (c *checker) admin(f field[rawAdmin]) *admin.Options {
	if !f.Set {
		return nil
	}
	r := &f.V
	o := &admin.Options{Address: admin.DefaultAddress}
	if r.Address.Set {
		if _, _, ok := c.listenAddress(r.Address); ok {
			o.Address = r.Address.V
		}
	}
	switch {
	case r.Token.Set && r.TokenFile.Set:
		c.errorf(r.TokenFile.loc, "set token or token_file, not both; remove one")
	case r.Token.Set:
		if r.Token.V == "" || secretProblem(r.Token.V) {
			c.errorf(r.Token.loc, "is empty or holds a control character; write the token on one line, or use token_file")
		} else {
			o.Token = r.Token.V
		}
	case r.TokenFile.Set:
		o.Token = c.tokenFile(r.TokenFile)
	}
	if o.Token == "" && !r.Token.Set && !r.TokenFile.Set && !admin.IsLoopback(o.Address) {
		at := f.loc
		if r.Address.Set {
			at = r.Address.loc
		}
		c.errorf(at, "%s is not a loopback address, so the admin listener needs a token: set admin.token or admin.token_file (clients send Authorization: Bearer TOKEN), or listen on 127.0.0.1", o.Address)
	}
	return o
}

// tokenFile reads the admin token from the file f names, without one
// trailing line break.
func (c *checker) tokenFile(f field[string]) string {
	if f.V == "" {
		c.errorf(f.loc, "is empty; write the path of the file holding the admin token")
		return ""
	}
	path := c.relative(f.V)
	data, err := readLimited(path, maxTokenFile)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		c.errorf(f.loc, "cannot read %q: %v; write the path of a file webtier can read that holds the admin token", path, err)
		return ""
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if len(data) > maxTokenFile || s == "" || secretProblem(s) {
		c.errorf(f.loc, "%q must hold the token alone, on one line (at most %d KiB)", path, maxTokenFile>>10)
		return ""
	}
	return s
}
