package ajp

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// Wire bytes of every packet the transport writes, pinned as in
// golang.org/x/net/http2's frame_test.go.
const (
	wireCPing     = "\x12\x34\x00\x01\x0a"
	wireBodyHello = "\x12\x34\x00\x07\x00\x05hello"
	wireBodyEnd   = "\x12\x34\x00\x00"

	// GET /a?q=1 with Host, Accept, X-A, secret and AJP_REMOTE_PORT.
	wireForwardGet = "\x12\x34\x00\x7a" +
		"\x02\x02" + // FORWARD_REQUEST, GET
		"\x00\x08HTTP/1.1\x00" +
		"\x00\x02/a\x00" +
		"\x00\x0810.0.0.1\x00" + // remote_addr
		"\x00\x0810.0.0.1\x00" + // remote_host
		"\x00\x06ex.com\x00" + // server_name
		"\x00\x50" + // server_port 80
		"\x00" + // is_ssl
		"\x00\x03" + // num_headers
		"\xa0\x0b\x00\x06ex.com\x00" + // host
		"\xa0\x01\x00\x03*/*\x00" + // accept
		"\x00\x03X-A\x00\x00\x011\x00" +
		"\x05\x00\x03q=1\x00" + // query_string
		"\x0c\x00\x01s\x00" + // secret
		"\x0a\x00\x0fAJP_REMOTE_PORT\x00\x00\x045555\x00" +
		"\xff"

	// PATCH (stored method) over TLS with an empty body, route and user.
	wireForwardPatch = "\x12\x34\x00\x89" +
		"\x02\xff" + // FORWARD_REQUEST, stored method
		"\x00\x08HTTP/1.1\x00" +
		"\x00\x01/\x00" +
		"\x00\x03::1\x00" +
		"\x00\x03::1\x00" +
		"\x00\x01h\x00" +
		"\x01\xbb" + // 443
		"\x01" + // is_ssl
		"\x00\x01" +
		"\xa0\x08\x00\x010\x00" + // content-length: 0
		"\x03\x00\x05alice\x00" + // remote_user
		"\x04\x00\x05Basic\x00" + // auth_type
		"\x06\x00\x02w1\x00" + // route
		"\x08\x00\x16TLS_AES_128_GCM_SHA256\x00" + // ssl_cipher
		"\x0b\x00\x80" + // ssl_key_size 128, an integer
		"\x0d\x00\x05PATCH\x00" + // stored_method
		"\x0a\x00\x10AJP_SSL_PROTOCOL\x00\x00\x07TLSv1.3\x00" +
		"\xff"
)

func forwardGet() *ForwardRequest {
	return &ForwardRequest{
		Method: "GET", Protocol: "HTTP/1.1", URI: "/a",
		RemoteAddr: "10.0.0.1", RemoteHost: "10.0.0.1", ServerName: "ex.com", ServerPort: 80,
		Host: "ex.com", ContentLength: -1,
		Header:      http.Header{"Accept": {"*/*"}, "X-A": {"1"}},
		Secret:      "s",
		QueryString: "q=1",
		RemotePort:  "5555",
	}
}

func forwardPatch() *ForwardRequest {
	return &ForwardRequest{
		Method: "PATCH", Protocol: "HTTP/1.1", URI: "/",
		RemoteAddr: "::1", RemoteHost: "::1", ServerName: "h", ServerPort: 443, IsSSL: true,
		ContentLength: 0,
		Route:         "w1", RemoteUser: "alice", AuthType: "Basic",
		SSLCipher: "TLS_AES_128_GCM_SHA256", SSLKeySize: 128, SSLProtocol: "TLSv1.3",
	}
}

func TestWritePackets(t *testing.T) {
	tests := []struct {
		name  string
		write func(fr *Framer) error
		want  string
	}{
		{"cping", (*Framer).WriteCPing, wireCPing},
		{"body", func(fr *Framer) error { return fr.WriteBody([]byte("hello")) }, wireBodyHello},
		{"body-end", func(fr *Framer) error { return fr.WriteBody(nil) }, wireBodyEnd},
		{"forward-get", func(fr *Framer) error { return fr.WriteForwardRequest(forwardGet()) }, wireForwardGet},
		{"forward-patch-tls", func(fr *Framer) error { return fr.WriteForwardRequest(forwardPatch()) }, wireForwardPatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			fr := NewFramer(&buf, nil, 0)
			if err := tt.write(fr); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("wrote\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestForwardRequestDecode reads the pinned packets back with the
// container-side decoder.
func TestForwardRequestDecode(t *testing.T) {
	got, err := decodeForwardRequest([]byte(wireForwardGet))
	if err != nil {
		t.Fatal(err)
	}
	want := &decodedRequest{
		Method: "GET", MethodCode: MethodGet, Protocol: "HTTP/1.1", URI: "/a",
		RemoteAddr: "10.0.0.1", RemoteHost: "10.0.0.1", ServerName: "ex.com", ServerPort: 80,
		Headers: []field{{"host", "ex.com"}, {"accept", "*/*"}, {"X-A", "1"}},
		Attrs: []attr{
			{Code: AttrQueryString, Value: "q=1"},
			{Code: AttrSecret, Value: "s"},
			{Code: AttrReqAttr, Name: "AJP_REMOTE_PORT", Value: "5555"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v\nwant %+v", got, want)
	}
	got, err = decodeForwardRequest([]byte(wireForwardPatch))
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != "PATCH" || got.MethodCode != MethodStored || !got.IsSSL || got.ServerPort != 443 {
		t.Errorf("decoded %+v", got)
	}
	if v, _ := got.attr(AttrSSLKeySize); v != "128" {
		t.Errorf("ssl_key_size = %q; want 128", v)
	}
}

// Wire bytes of every packet the transport reads, as Tomcat writes them.
const (
	wireSendHeaders = "AB\x00\x37" +
		"\x04\x00\xc8" + // SEND_HEADERS, 200
		"\x00\x03200\x00" + // Tomcat's reason phrase: the code
		"\x00\x04" +
		"\xa0\x01\x00\x09text/html\x00" +
		"\xa0\x07\x00\x03a=1\x00" +
		"\xa0\x07\x00\x03b=2\x00" +
		"\x00\x05X-Foo\x00\x00\x03bar\x00"
	wireChunkTomcat    = "AB\x00\x09\x03\x00\x05hello\x00" // trailing 0x00 not counted
	wireChunkNoNul     = "AB\x00\x08\x03\x00\x05hello"     // as the AJPv13 document draws it
	wireChunkFlush     = "AB\x00\x04\x03\x00\x00\x00"      // Tomcat's flush message
	wireEndReuse       = "AB\x00\x02\x05\x01"
	wireEndClose       = "AB\x00\x02\x05\x00"
	wireGetBodyChunk   = "AB\x00\x03\x06\x1f\xfa" // 8186 bytes
	wireCPong          = "AB\x00\x01\x09"
	wireSendHeaders404 = "AB\x00\x11\x04\x01\x94\xff\xff\x00\x01\x00\x03abc\x00\x00\x011\x00" // null reason, lower-case name
)

func TestReadPackets(t *testing.T) {
	tests := []struct {
		name   string
		wire   string
		encode []byte // the test encoder's bytes, when it has a form for this packet
		want   Packet
	}{
		{"send-headers", wireSendHeaders,
			appendSendHeaders(nil, 200, "200",
				respHeader{Code: RespContentType, Value: "text/html"},
				respHeader{Code: RespSetCookie, Value: "a=1"},
				respHeader{Code: RespSetCookie, Value: "b=2"},
				respHeader{Name: "X-Foo", Value: "bar"}),
			&SendHeadersPacket{Status: 200, Reason: "200", Header: http.Header{
				"Content-Type": {"text/html"}, "Set-Cookie": {"a=1", "b=2"}, "X-Foo": {"bar"}}}},
		{"send-headers-null-reason", wireSendHeaders404, nil,
			&SendHeadersPacket{Status: 404, Header: http.Header{"Abc": {"1"}}}},
		{"body-chunk-tomcat", wireChunkTomcat, appendBodyChunk(nil, []byte("hello")),
			&BodyChunkPacket{Data: []byte("hello")}},
		{"body-chunk-no-nul", wireChunkNoNul, nil, &BodyChunkPacket{Data: []byte("hello")}},
		{"body-chunk-flush", wireChunkFlush, appendBodyChunk(nil, nil), &BodyChunkPacket{Data: []byte{}}},
		{"end-reuse", wireEndReuse, appendEndResponse(nil, true), &EndResponsePacket{Reuse: true}},
		{"end-close", wireEndClose, appendEndResponse(nil, false), &EndResponsePacket{Reuse: false}},
		{"get-body-chunk", wireGetBodyChunk, appendGetBodyChunk(nil, 8186), &GetBodyChunkPacket{Length: 8186}},
		{"cpong", wireCPong, appendCPong(nil), &CPongPacket{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.encode != nil && string(tt.encode) != tt.wire {
				t.Errorf("test encoder wrote %q; want %q", tt.encode, tt.wire)
			}
			fr := NewFramer(nil, strings.NewReader(tt.wire), 0)
			got, err := fr.ReadPacket()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadPacket = %#v; want %#v", got, tt.want)
			}
			if _, err := fr.ReadPacket(); err != io.EOF {
				t.Errorf("second ReadPacket error = %v; want io.EOF", err)
			}
		})
	}
}

func TestReadPacketErrors(t *testing.T) {
	tests := []struct {
		name string
		wire string
		is   error // errors.Is target
	}{
		{"bad-magic", "\x12\x34\x00\x01\x09", ErrBadMagic},
		{"too-large", "AB\x20\x00\x03", ErrPacketTooLarge}, // 8192+4 bytes announced
		{"max-plus-one", "AB\x1f\xfd", ErrPacketTooLarge},  // 8189 payload + 4 = 8193
		{"empty", "AB\x00\x00", ErrProtocol},
		{"truncated-header", "AB\x00", io.ErrUnexpectedEOF},
		{"truncated-payload", "AB\x00\x05\x03\x00", io.ErrUnexpectedEOF},
		{"unknown-type", "AB\x00\x01\x02", ErrProtocol},
		{"chunk-length-past-end", "AB\x00\x04\x03\x00\x05h", ErrProtocol},
		{"chunk-trailing-garbage", "AB\x00\x06\x03\x00\x01hxy", ErrProtocol},
		{"end-short", "AB\x00\x01\x05", ErrProtocol},
		{"get-body-short", "AB\x00\x02\x06\x01", ErrProtocol},
		{"status-zero", "AB\x00\x08\x04\x00\x00\x00\x00\x00\x00\x00", ErrProtocol},
		{"header-count-too-big", "AB\x00\x08\x04\x00\xc8\x00\x00\x00\xff\xff", ErrProtocol},
		{"unknown-header-code", "AB\x00\x0d\x04\x00\xc8\x00\x00\x00\x00\x01\xa0\x7f\x00\x00\x00", ErrProtocol},
		{"string-no-nul", "AB\x00\x09\x04\x00\xc8\x00\x01xy\x00\x00", ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := NewFramer(nil, strings.NewReader(tt.wire), 0)
			p, err := fr.ReadPacket()
			if !errors.Is(err, tt.is) {
				t.Fatalf("ReadPacket = %#v, %v; want error %v", p, err, tt.is)
			}
		})
	}
}

// TestReadPacketTooLargeAllocatesNothing pins that the size check comes
// before the payload buffer: a hostile length costs no allocation and no
// payload read.
func TestReadPacketTooLargeAllocatesNothing(t *testing.T) {
	wire := []byte("AB\xff\xff" + strings.Repeat("x", 100))
	r := bytes.NewReader(wire)
	fr := NewFramer(nil, r, 0)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(wire)
		if _, err := fr.ReadPacket(); !errors.Is(err, ErrPacketTooLarge) {
			t.Fatalf("err = %v; want ErrPacketTooLarge", err)
		}
	})
	if r.Len() != 100 {
		t.Errorf("%d payload bytes read; want 0", 100-r.Len())
	}
	if cap(fr.rbuf) != 0 {
		t.Errorf("read buffer cap = %d; want 0", cap(fr.rbuf))
	}
	if allocs > 1 { // the *sizeError
		t.Errorf("%v allocations; want at most 1", allocs)
	}
}

func TestPacketSizeLimit(t *testing.T) {
	// A packet of exactly the maximum size (header included) is accepted;
	// with a larger configured size, larger packets are too.
	data := bytes.Repeat([]byte("z"), DefaultPacketSize-8)
	wire := appendBodyChunk(nil, data)
	if len(wire) != DefaultPacketSize {
		t.Fatalf("test packet is %d bytes", len(wire))
	}
	if p, err := NewFramer(nil, bytes.NewReader(wire), 0).ReadPacket(); err != nil || len(p.(*BodyChunkPacket).Data) != len(data) {
		t.Fatalf("max-size packet: %v", err)
	}
	big := appendBodyChunk(nil, bytes.Repeat([]byte("z"), 20000))
	if _, err := NewFramer(nil, bytes.NewReader(big), 0).ReadPacket(); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("20 KB packet with default size: err = %v; want ErrPacketTooLarge", err)
	}
	if _, err := NewFramer(nil, bytes.NewReader(big), 32768).ReadPacket(); err != nil {
		t.Errorf("20 KB packet with packet size 32768: %v", err)
	}
	var buf bytes.Buffer
	fr := NewFramer(&buf, nil, 0)
	if err := fr.WriteBody(make([]byte, DefaultPacketSize-bodyOverhead+1)); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("WriteBody over the limit: err = %v; want ErrPacketTooLarge", err)
	}
	fr.AllowIllegalWrites = true
	if err := fr.WriteBody(make([]byte, DefaultPacketSize)); err != nil {
		t.Errorf("WriteBody with AllowIllegalWrites: %v", err)
	}
}

func TestHeadersTooLarge(t *testing.T) {
	r := forwardGet()
	r.Header = http.Header{"Cookie": {strings.Repeat("c", 9000)}}
	dst := []byte("keep")
	got, err := AppendForwardRequest(dst, r, 0)
	if !errors.Is(err, ErrHeadersTooLarge) {
		t.Fatalf("err = %v; want ErrHeadersTooLarge", err)
	}
	if string(got) != "keep" {
		t.Errorf("dst changed to %d bytes", len(got))
	}
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindHeadersTooLarge {
		t.Fatalf("err = %#v; want *Error of kind %s", err, KindHeadersTooLarge)
	}
	for _, s := range []string{"ajp.packet_size", "packetSize", "8192", "9"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q does not mention %q", err, s)
		}
	}
	if _, err := AppendForwardRequest(nil, r, 16384); err != nil {
		t.Errorf("with packet size 16384: %v", err)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{TypeSendBodyChunk.String(), "SEND_BODY_CHUNK"},
		{TypeCPing.String(), "CPING"},
		{PacketType(0x42).String(), "UNKNOWN_PACKET_TYPE_66"},
		{MethodGet.String(), "GET"},
		{MethodMkactivity.String(), "MKACTIVITY"},
		{MethodStored.String(), "STORED"},
		{Method(99).String(), "UNKNOWN_METHOD_99"},
		{HeaderUserAgent.String(), "user-agent"},
		{HeaderCode(0xA0FF).String(), "UNKNOWN_HEADER_0xA0FF"},
		{RespWWWAuthenticate.String(), "Www-Authenticate"},
		{AttrSecret.String(), "secret"},
		{AttrRoute.String(), "route"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String() = %q; want %q", tt.got, tt.want)
		}
	}
}

func TestMethodCode(t *testing.T) {
	tests := []struct {
		method string
		want   Method
	}{
		{"GET", MethodGet}, {"OPTIONS", MethodOptions}, {"DELETE", MethodDelete},
		{"PROPFIND", MethodPropfind}, {"VERSION-CONTROL", MethodVersionControl},
		{"MKACTIVITY", MethodMkactivity},
		{"PATCH", MethodStored}, {"get", MethodStored}, {"BREW", MethodStored},
	}
	for _, tt := range tests {
		if got := MethodCode(tt.method); got != tt.want {
			t.Errorf("MethodCode(%q) = %v; want %v", tt.method, got, tt.want)
		}
	}
	for m := MethodOptions; m <= MethodMkactivity; m++ {
		if got := MethodCode(m.String()); got != m {
			t.Errorf("MethodCode(%v.String()) = %v", m, got)
		}
	}
}

func TestHeaderCode(t *testing.T) {
	for c := HeaderAccept; c <= HeaderUserAgent; c++ {
		canon := http.CanonicalHeaderKey(c.String())
		if got := headerCode(canon); got != c {
			t.Errorf("headerCode(%q) = %v; want %v", canon, got, c)
		}
		if got := headerCode(c.String()); got != c {
			t.Errorf("headerCode(%q) = %v; want %v", c.String(), got, c)
		}
	}
	if got := headerCode("X-Accept"); got != 0 {
		t.Errorf("headerCode(X-Accept) = %v; want 0", got)
	}
}

func TestStatusLine(t *testing.T) {
	tests := []struct {
		code   int
		reason string
		want   string
	}{
		{200, "200", "200 OK"}, // Tomcat
		{403, "403", "403 Forbidden"},
		{404, "", "404 Not Found"},
		{200, "Fine", "200 Fine"}, // a container that sends a real reason
		{599, "599", "599"},
	}
	for _, tt := range tests {
		if got := StatusLine(tt.code, tt.reason); got != tt.want {
			t.Errorf("StatusLine(%d, %q) = %q; want %q", tt.code, tt.reason, got, tt.want)
		}
	}
}

// TestResponseHeaderSanitizing: header names that are not tokens and values
// with CR/LF/NUL are dropped, so they cannot split the client's response.
func TestResponseHeaderSanitizing(t *testing.T) {
	wire := appendSendHeaders(nil, 200, "200",
		respHeader{Name: "Good", Value: "ok"},
		respHeader{Name: "Bad Name", Value: "x"},
		respHeader{Name: "X-Evil\r\nSet-Cookie: pwned=1\r\nX", Value: "v"},
		respHeader{Name: "X-Split", Value: "a\r\nSet-Cookie: evil=1"},
		respHeader{Name: "X-Nul", Value: "a\x00b"},
	)
	p, err := NewFramer(nil, bytes.NewReader(wire), 0).ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Good": {"ok"}}
	if got := p.(*SendHeadersPacket).Header; !reflect.DeepEqual(got, want) {
		t.Errorf("Header = %v; want %v", got, want)
	}
}
