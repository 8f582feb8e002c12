package config

import (
	"cmp"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/webtier/webtier/proxy/upstream"
	"github.com/webtier/webtier/proxy/upstream/ajp"
)

// This file checks what is particular to ajp:// targets: that an upstream
// does not mix them with http(s):// ones, and the ajp key. The secret is
// never put in an error message.

const (
	// defaultAJPPort is Tomcat's default AJP Connector port.
	defaultAJPPort = 8009
	// maxSecretFile bounds what is read of a secret_file; a secret is a
	// line, so anything larger is the wrong file.
	maxSecretFile = 64 << 10
)

// The protocols an upstream's targets speak.
const (
	protoHTTP = "http" // http:// and https://
	protoAJP  = "ajp"
)

// targetProtocol returns the protocol of a target URL as written, or "" when
// it has no supported scheme (which target reports).
func targetProtocol(url string) string {
	scheme, _, ok := strings.Cut(url, "://")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		return protoHTTP
	case "ajp":
		return protoAJP
	}
	return ""
}

// protocol returns the protocol an upstream's targets speak, judged by their
// schemes as written. It returns "" when no target has a supported scheme, or
// when the targets mix ajp:// with http(s)://, which it reports at the first
// target that differs from the first one.
func (c *checker) protocol(f field[[]rawTarget]) string {
	proto, first := "", -1
	for i, t := range f.V {
		p := targetProtocol(t.URL.V)
		switch {
		case p == "":
			continue
		case proto == "":
			proto, first = p, i
			continue
		case p == proto:
			continue
		}
		// Name the schemes, not the URLs: a URL may hold a user:password.
		c.errorf(t.URL.loc, "this target is %s:// but %s (line %d) is %s://; an upstream speaks one protocol: put ajp:// targets in an upstream of their own",
			schemeOf(t.URL.V), f.V[first].Path, f.V[first].Line, schemeOf(f.V[first].URL.V))
		return ""
	}
	return proto
}

func schemeOf(url string) string {
	scheme, _, _ := strings.Cut(url, "://")
	return strings.ToLower(scheme)
}

// ajpOptions checks the ajp key of an upstream whose targets speak proto.
// An upstream that does not speak AJP gets zero AJPOptions.
func (c *checker) ajpOptions(f field[rawAJP], proto string) upstream.AJPOptions {
	switch {
	case proto == protoHTTP && f.Set:
		c.errorf(f.loc, "ajp is only read for ajp:// targets, and this upstream's targets are http(s)://; remove ajp, or write the targets as ajp://host:port")
		return upstream.AJPOptions{}
	case proto == "" && f.Set:
		// Mixed or no valid targets, which is reported: still check what
		// is written, so that every problem shows at once.
		c.ajpValues(f, false)
		return upstream.AJPOptions{}
	case proto != protoAJP:
		return upstream.AJPOptions{}
	}
	return c.ajpValues(f, true)
}

// ajpValues checks the keys under ajp and fills in their defaults. needSecret
// makes a missing secret an error unless secret_required is false.
func (c *checker) ajpValues(f field[rawAJP], needSecret bool) upstream.AJPOptions {
	r := &f.V
	o := upstream.AJPOptions{
		Secret:     c.ajpSecret(f, needSecret),
		PacketSize: ajp.DefaultPacketSize,
		CPingIdle:  c.durationOrOff(r.CPingIdle, ajp.DefaultCPingIdle, -1, ""),
	}
	if p := r.PacketSize; p.Set {
		if p.V < ajp.DefaultPacketSize || p.V > ajp.MaxPacketSize {
			c.errorf(p.loc, "must be from %d to %d (the range of Tomcat's packetSize), got %d; write the packetSize of Tomcat's AJP connector, %d unless it sets one: the two must match",
				ajp.DefaultPacketSize, ajp.MaxPacketSize, p.V, ajp.DefaultPacketSize)
		} else {
			o.PacketSize = p.V
		}
	}
	return o
}

// ajpSecret returns the secret from secret or secret_file. f need not be set:
// an upstream with ajp:// targets and no ajp key needs a secret too.
func (c *checker) ajpSecret(f field[rawAJP], need bool) string {
	r := &f.V
	s, file := r.Secret, r.SecretFile
	switch {
	case s.Set && file.Set:
		first, second, key := s.loc, file.loc, "secret"
		if cmp.Or(cmp.Compare(file.Line, s.Line), cmp.Compare(file.Column, s.Column)) < 0 {
			first, second, key = file.loc, s.loc, "secret_file"
		}
		c.errorf(second, "set secret or secret_file, not both (%s is at line %d); remove one", key, first.Line)
		return ""
	case s.Set:
		if s.V == "" {
			c.errorf(s.loc, "is empty; write the secret of Tomcat's AJP connector, or use secret_file to read it from a file")
			return ""
		}
		if secretProblem(s.V) {
			c.errorf(s.loc, `contains a line break or other control character; write the secret on one line (a YAML block scalar "|" keeps its last line break: use "|-" or a quoted string)`)
			return ""
		}
		return s.V
	case file.Set:
		return c.secretFile(file)
	}
	if need && (!r.SecretRequired.Set || r.SecretRequired.V) {
		at := f.loc // no ajp key: point at the upstream, key path ...ajp
		if f.Set {
			at = s.loc
		}
		c.errorf(at, `Tomcat's AJP connector requires a secret by default (secretRequired="true"); set ajp.secret or ajp.secret_file to the connector's secret, or, if the connector sets secretRequired="false", write ajp.secret_required: false`)
	}
	return ""
}

// secretFile reads the secret from the file f names, relative to the config
// file's directory, without one trailing line break.
func (c *checker) secretFile(f field[string]) string {
	if f.V == "" {
		c.errorf(f.loc, "is empty; write the path of the file holding the secret of Tomcat's AJP connector")
		return ""
	}
	path := c.relative(f.V)
	data, err := readLimited(path, maxSecretFile)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		c.errorf(f.loc, "cannot read %q: %v; write the path of a file webtier can read that holds the secret of Tomcat's AJP connector", path, err)
		return ""
	}
	if len(data) > maxSecretFile {
		c.errorf(f.loc, "%q is larger than %d KiB; it should hold only the secret of Tomcat's AJP connector", path, maxSecretFile>>10)
		return ""
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	switch {
	case s == "":
		c.errorf(f.loc, "%q is empty; write the secret of Tomcat's AJP connector into it", path)
		return ""
	case secretProblem(s):
		c.errorf(f.loc, "%q holds more than one line or a control character; write only the secret, on one line", path)
		return ""
	}
	return s
}

// readLimited reads at most limit+1 bytes of the file at path, so that a
// caller can tell a file larger than limit.
func readLimited(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, limit+1))
}

// secretProblem reports whether s holds a control character, such as the
// line break a YAML block scalar or an editor leaves: Tomcat would compare
// it too, and refuse every request.
func secretProblem(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}
