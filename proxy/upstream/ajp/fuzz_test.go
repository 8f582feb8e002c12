package ajp

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// encodePacket is the container-side encoder for a decoded packet, used to
// round-trip what ReadPacket accepted.
func encodePacket(p Packet) []byte {
	switch p := p.(type) {
	case *SendHeadersPacket:
		var hs []respHeader
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range p.Header {
				if !yield(k) {
					return
				}
			}
		}) {
			var code ResponseHeaderCode
			for i := 1; i < len(responseHeaderNames); i++ {
				if responseHeaderNames[i] == k {
					code = ResponseHeaderCode(0xA000 + i)
				}
			}
			for _, v := range p.Header[k] {
				hs = append(hs, respHeader{Code: code, Name: k, Value: v})
			}
		}
		return appendSendHeaders(nil, p.Status, p.Reason, hs...)
	case *BodyChunkPacket:
		return appendBodyChunk(nil, p.Data)
	case *EndResponsePacket:
		return appendEndResponse(nil, p.Reuse)
	case *GetBodyChunkPacket:
		return appendGetBodyChunk(nil, p.Length)
	case *CPongPacket:
		return appendCPong(nil)
	}
	panic(fmt.Sprintf("unknown packet %T", p))
}

// FuzzReadResponse feeds arbitrary bytes to the response decoder. It must
// not panic, must never grow its read buffer beyond the packet size, and
// whatever it accepts must survive encode → decode unchanged.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{
		wireSendHeaders, wireSendHeaders404, wireChunkTomcat, wireChunkNoNul, wireChunkFlush,
		wireEndReuse, wireEndClose, wireGetBodyChunk, wireCPong,
		wireSendHeaders + wireChunkTomcat + wireChunkFlush + wireEndReuse,
		"AB\xff\xff", "AB\x00\x00", "\x12\x34\x00\x01\x0a",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFramer(nil, bytes.NewReader(data), 0)
		for {
			p, err := fr.ReadPacket()
			if c := cap(fr.rbuf); c > DefaultPacketSize-headerLen {
				t.Fatalf("read buffer grew to %d bytes; the limit is %d", c, DefaultPacketSize-headerLen)
			}
			if err != nil {
				return
			}
			wire := encodePacket(p)
			p2, err := NewFramer(nil, bytes.NewReader(wire), MaxPacketSize).ReadPacket()
			if err != nil {
				t.Fatalf("re-reading %#v from %q: %v", p, wire, err)
			}
			if !reflect.DeepEqual(p, p2) {
				t.Fatalf("round trip changed %#v into %#v", p, p2)
			}
		}
	})
}

// FuzzForwardRequest encodes a request built from fuzzed fields, decodes it
// with the container-side decoder and compares. Whatever the input, only
// the fixed attribute names may appear (Ghostcat).
func FuzzForwardRequest(f *testing.F) {
	f.Add("GET", "/a", "q=1", "Accept", "*/*", "s3cret", "node1", "10.0.0.1", "5555", uint16(80), false, int64(-1))
	f.Add("PATCH", "/", "", "X-Attr", "javax.servlet.include.request_uri", "", "", "::1", "", uint16(443), true, int64(0))
	f.Add("get", "/%2e%2e/WEB-INF", "a=%00", "content-length", "999", "x", "r", "", "1", uint16(0), false, int64(12))
	f.Add("MKACTIVITY", "*", "", "Transfer-Encoding", "chunked", "", "", "1.2.3.4", "", uint16(65535), true, int64(1<<40))
	f.Fuzz(func(t *testing.T, method, uri, query, hname, hvalue, secret, route, addr, port string,
		serverPort uint16, ssl bool, contentLength int64) {
		if contentLength < -1 {
			contentLength = -1
		}
		r := &ForwardRequest{
			Method: method, Protocol: "HTTP/1.1", URI: uri,
			RemoteAddr: addr, RemoteHost: addr, ServerName: "example.com", ServerPort: int(serverPort),
			IsSSL: ssl, Host: "example.com", ContentLength: contentLength,
			Header:      http.Header{hname: {hvalue, hvalue + "2"}, "User-Agent": {"fuzz"}},
			Secret:      secret,
			QueryString: query,
			Route:       route,
			RemotePort:  port,
		}
		if ssl {
			r.SSLCipher, r.SSLKeySize, r.SSLProtocol = "TLS_AES_128_GCM_SHA256", 128, "TLSv1.3"
		}
		pkt, err := AppendForwardRequest(nil, r, MaxPacketSize)
		if err != nil {
			if errors.Is(err, ErrHeadersTooLarge) || errors.Is(err, ErrStringTooLong) ||
				method == "" || hname == "" {
				return
			}
			t.Fatalf("AppendForwardRequest: %v", err)
		}
		if len(pkt) > MaxPacketSize {
			t.Fatalf("%d-byte packet", len(pkt))
		}
		d, err := decodeForwardRequest(pkt)
		if err != nil {
			t.Fatalf("decoding %q: %v", pkt, err)
		}
		want := &decodedRequest{
			Method: method, MethodCode: MethodCode(method), Protocol: "HTTP/1.1", URI: uri,
			RemoteAddr: addr, RemoteHost: addr, ServerName: "example.com", ServerPort: int(serverPort),
			IsSSL: ssl, Headers: expectedHeaders(r), Attrs: expectedAttrs(r),
		}
		if !reflect.DeepEqual(d, want) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", d, want)
		}
		for _, a := range d.Attrs {
			if a.Code == AttrReqAttr && a.Name != ReqAttrRemotePort && a.Name != ReqAttrLocalAddr && a.Name != ReqAttrSSLProtocol {
				t.Fatalf("req_attribute %q sent", a.Name)
			}
		}
	})
}

// expectedHeaders lists the headers AppendForwardRequest should send for r,
// in order, with coded names as Tomcat decodes them.
func expectedHeaders(r *ForwardRequest) []field {
	var hs []field
	if r.Host != "" {
		hs = append(hs, field{"host", r.Host})
	}
	if r.ContentLength >= 0 {
		hs = append(hs, field{"content-length", fmt.Sprint(r.ContentLength)})
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := k
		if c := headerCode(k); c != 0 {
			if c == HeaderHost || c == HeaderContentLength {
				continue
			}
			name = c.String()
		} else if strings.EqualFold(k, "Transfer-Encoding") {
			continue
		}
		for _, v := range r.Header[k] {
			hs = append(hs, field{name, v})
		}
	}
	return hs
}

func expectedAttrs(r *ForwardRequest) []attr {
	var as []attr
	add := func(c AttributeCode, v string) {
		if v != "" {
			as = append(as, attr{Code: c, Value: v})
		}
	}
	add(AttrRemoteUser, r.RemoteUser)
	add(AttrAuthType, r.AuthType)
	add(AttrQueryString, r.QueryString)
	add(AttrRoute, r.Route)
	add(AttrSSLCert, r.SSLCert)
	add(AttrSSLCipher, r.SSLCipher)
	add(AttrSSLSession, r.SSLSession)
	if r.SSLKeySize > 0 {
		as = append(as, attr{Code: AttrSSLKeySize, Value: fmt.Sprint(r.SSLKeySize)})
	}
	add(AttrSecret, r.Secret)
	if MethodCode(r.Method) == MethodStored {
		add(AttrStoredMeth, r.Method)
	}
	for _, ra := range []struct{ name, v string }{
		{ReqAttrRemotePort, r.RemotePort}, {ReqAttrLocalAddr, r.LocalAddr}, {ReqAttrSSLProtocol, r.SSLProtocol},
	} {
		if ra.v != "" {
			as = append(as, attr{Code: AttrReqAttr, Name: ra.name, Value: ra.v})
		}
	}
	return as
}
