package ajp

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// ForwardRequest is the content of an AJP13 Forward Request packet.
//
// The attribute set is closed on purpose: there is a field for each
// attribute the transport can send and no way to send an attribute by
// name. A proxy that forwards attribute names taken from the client lets
// the client set servlet request attributes such as
// javax.servlet.include.request_uri (Ghostcat, CVE-2020-1938).
type ForwardRequest struct {
	Method     string // HTTP method; one without an AJP code goes as stored_method
	Protocol   string // e.g. "HTTP/1.1"
	URI        string // the escaped path only, e.g. "/app/a%20b"; the query goes in QueryString
	RemoteAddr string // client IP
	RemoteHost string // client host name; the transport sends the IP (no reverse DNS)
	ServerName string // host name the client asked for, without port
	ServerPort int    // port the client connected to
	IsSSL      bool   // the client connection used TLS

	// Host is sent as the host header if not empty. Header's own "Host"
	// entry, if any, is ignored.
	Host string
	// ContentLength is sent as the content-length header when >= 0. Use -1
	// for a request without a body and for one of unknown length (Tomcat
	// then asks for body packets until it gets an empty one). Header's own
	// Content-Length and Transfer-Encoding entries are ignored.
	ContentLength int64
	// Header holds the other request headers. Common names are sent as
	// codes, the rest as strings; each value of a repeated name is sent as
	// its own header. Keys are sent in sorted order.
	Header http.Header

	// Attributes. Empty strings and a zero SSLKeySize are not sent.
	Secret      string // secret (0x0C); must match the AJP Connector's secret
	QueryString string // query_string (0x05), raw, without the '?'
	Route       string // route (0x06), the jvmRoute the balancer picked
	RemoteUser  string // remote_user (0x03); Tomcat uses it only with tomcatAuthentication="false"
	AuthType    string // auth_type (0x04)
	SSLCert     string // ssl_cert (0x07), PEM of the client certificate
	SSLCipher   string // ssl_cipher (0x08), e.g. "TLS_AES_128_GCM_SHA256"
	SSLSession  string // ssl_session (0x09), hex
	SSLKeySize  int    // ssl_key_size (0x0B), cipher key bits
	// Private req_attributes (0x0A) that Tomcat accepts by name.
	RemotePort  string // AJP_REMOTE_PORT: the client's port (getRemotePort)
	LocalAddr   string // AJP_LOCAL_ADDR: the address the client connected to (getLocalAddr)
	SSLProtocol string // AJP_SSL_PROTOCOL: e.g. "TLSv1.3"
	// RequestID goes as the req_attribute named RequestIDAttribute (a
	// name from the config, never from the client) when both are set.
	RequestIDAttribute string
	RequestID          string
}

// Encoding helpers. Each appends to b; errors come out of encodeString only.

func appendU16(b []byte, v int) []byte { return append(b, byte(v>>8), byte(v)) }

// appendString appends an AJP string: 16-bit length, bytes, 0x00.
func appendString(b []byte, s string) ([]byte, error) {
	if len(s) >= 0xFFFF {
		return b, fmt.Errorf("%w: %d bytes", ErrStringTooLong, len(s))
	}
	b = appendU16(b, len(s))
	b = append(b, s...)
	return append(b, 0), nil
}

// startPacket appends a header to b with a zero length to be back-filled by
// endPacket, and returns the new slice and the header's offset.
func startPacket(b []byte) ([]byte, int) {
	return append(b, 0x12, 0x34, 0, 0), len(b)
}

// endPacket back-fills the payload length of the packet started at off.
func endPacket(b []byte, off int) []byte {
	binary.BigEndian.PutUint16(b[off+2:], uint16(len(b)-off-headerLen))
	return b
}

// AppendForwardRequest appends the Forward Request packet for r to dst.
// maxPacketSize is the size it must fit (see NewFramer; 0 means default).
// If it does not fit, dst is returned unchanged with an *Error wrapping
// ErrHeadersTooLarge that names the size needed.
func AppendForwardRequest(dst []byte, r *ForwardRequest, maxPacketSize int) ([]byte, error) {
	maxSize := clampPacketSize(maxPacketSize)
	b, off := startPacket(dst)
	b, err := appendForwardRequestPayload(b, r)
	if err != nil {
		return dst, err
	}
	if size := len(b) - off; size > maxSize {
		return dst, headersTooLarge(size, maxSize)
	}
	return endPacket(b, off), nil
}

func appendForwardRequestPayload(b []byte, r *ForwardRequest) ([]byte, error) {
	var err error
	str := func(s string) {
		if err == nil {
			b, err = appendString(b, s)
		}
	}
	method := MethodCode(r.Method)
	b = append(b, byte(TypeForwardRequest), byte(method))
	str(r.Protocol)
	str(r.URI)
	str(r.RemoteAddr)
	str(r.RemoteHost)
	str(r.ServerName)
	if r.ServerPort < 0 || r.ServerPort > 0xFFFF {
		return b, fmt.Errorf("ajp: server port %d out of range", r.ServerPort)
	}
	b = appendU16(b, r.ServerPort)
	if r.IsSSL {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}

	// Headers: the count is back-filled once known.
	countAt := len(b)
	b = append(b, 0, 0)
	count := 0
	coded := func(c HeaderCode, v string) {
		b = appendU16(b, int(c))
		str(v)
		count++
	}
	if r.Host != "" {
		coded(HeaderHost, r.Host)
	}
	if r.ContentLength >= 0 {
		var nb [20]byte
		coded(HeaderContentLength, string(strconv.AppendInt(nb[:0], r.ContentLength, 10)))
	}
	// Sorted keys make the packet deterministic; the array keeps the
	// common case free of allocations.
	var keyArr [32]string
	keys := keyArr[:0]
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		code := headerCode(k)
		switch code {
		case HeaderHost, HeaderContentLength:
			continue // sent from Host and ContentLength above
		case 0:
			if httplex.EqualFold(k, "transfer-encoding") {
				continue // framing is AJP's business, not a header's
			}
			// A name string whose length reads as 0xA0xx would be taken for
			// a code by the container; no sane name is that long.
			if len(k) >= 0xA000 || k == "" {
				return b, fmt.Errorf("ajp: invalid header name of %d bytes", len(k))
			}
		}
		for _, v := range r.Header[k] {
			if code != 0 {
				b = appendU16(b, int(code))
			} else {
				str(k)
			}
			str(v)
			count++
		}
	}
	if err != nil {
		return b, err
	}
	if count > 0xFFFF {
		return b, fmt.Errorf("ajp: %d request headers, more than AJP can count", count)
	}
	binary.BigEndian.PutUint16(b[countAt:], uint16(count))

	attr := func(a AttributeCode, v string) {
		if v != "" {
			b = append(b, byte(a))
			str(v)
		}
	}
	reqAttr := func(name, v string) {
		if v != "" {
			b = append(b, byte(AttrReqAttr))
			str(name)
			str(v)
		}
	}
	attr(AttrRemoteUser, r.RemoteUser)
	attr(AttrAuthType, r.AuthType)
	attr(AttrQueryString, r.QueryString)
	attr(AttrRoute, r.Route)
	attr(AttrSSLCert, r.SSLCert)
	attr(AttrSSLCipher, r.SSLCipher)
	attr(AttrSSLSession, r.SSLSession)
	if r.SSLKeySize > 0 {
		if r.SSLKeySize > 0xFFFF {
			return b, fmt.Errorf("ajp: ssl key size %d out of range", r.SSLKeySize)
		}
		b = append(b, byte(AttrSSLKeySize))
		b = appendU16(b, r.SSLKeySize)
	}
	attr(AttrSecret, r.Secret)
	if method == MethodStored {
		if r.Method == "" {
			return b, fmt.Errorf("ajp: empty method")
		}
		b = append(b, byte(AttrStoredMeth))
		str(r.Method)
	}
	reqAttr(ReqAttrRemotePort, r.RemotePort)
	reqAttr(ReqAttrLocalAddr, r.LocalAddr)
	reqAttr(ReqAttrSSLProtocol, r.SSLProtocol)
	if r.RequestIDAttribute != "" {
		reqAttr(r.RequestIDAttribute, r.RequestID)
	}
	b = append(b, byte(AttrAreDone))
	return b, err
}

// AppendBodyPacket appends a request body packet holding data:
//
//	0x12 0x34, length (2) = len(data)+2, data length (2), data
//
// An empty data slice gives the empty packet (0x12 0x34 0x00 0x00) that
// tells the container the body has ended. data must fit the packet size
// in use (at most packetSize-6 bytes); the caller sizes it.
func AppendBodyPacket(dst, data []byte) []byte {
	if len(data) == 0 {
		return append(dst, 0x12, 0x34, 0, 0)
	}
	b, off := startPacket(dst)
	b = appendU16(b, len(data))
	b = append(b, data...)
	return endPacket(b, off)
}

// cpingPacket is the whole CPING packet.
var cpingPacket = []byte{0x12, 0x34, 0x00, 0x01, byte(TypeCPing)}

// AppendCPing appends a CPING packet.
func AppendCPing(dst []byte) []byte { return append(dst, cpingPacket...) }

// WriteForwardRequest encodes r and writes it in one Write.
func (fr *Framer) WriteForwardRequest(r *ForwardRequest) error {
	max := fr.maxSize
	if fr.AllowIllegalWrites {
		max = MaxPacketSize
	}
	b, err := AppendForwardRequest(fr.wbuf[:0], r, max)
	if err != nil {
		return err
	}
	fr.wbuf = b
	_, err = fr.w.Write(b)
	return err
}

// WriteBody writes one request body packet; empty data ends the body. Data
// above the packet size is an error unless AllowIllegalWrites is set.
func (fr *Framer) WriteBody(data []byte) error {
	if len(data)+bodyOverhead > fr.maxSize && !fr.AllowIllegalWrites {
		return fmt.Errorf("%w: %d bytes of body data in a %d-byte packet", ErrPacketTooLarge, len(data), fr.maxSize)
	}
	fr.wbuf = AppendBodyPacket(fr.wbuf[:0], data)
	_, err := fr.w.Write(fr.wbuf)
	return err
}

// WriteCPing writes a CPING packet.
func (fr *Framer) WriteCPing() error {
	_, err := fr.w.Write(cpingPacket)
	return err
}
