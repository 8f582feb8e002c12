package ajp

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// Packet sizes, counted as on Tomcat's AJP Connector (packetSize): the whole
// packet including its 4-byte header (signature and length).
const (
	// DefaultPacketSize is the AJP13 default and Tomcat's packetSize default.
	DefaultPacketSize = 8192
	// MaxPacketSize is the largest packetSize Tomcat accepts.
	MaxPacketSize = 65536

	headerLen = 4 // signature (2) + payload length (2)
	// bodyOverhead is what a request body packet adds to its data:
	// header (4) + data length (2).
	bodyOverhead = 6
)

// PacketType is the first payload byte of an AJP13 packet (the "prefix code").
type PacketType uint8

// Packet types. The first four travel from the web server to the container,
// the others from the container to the web server.
const (
	TypeForwardRequest PacketType = 0x02
	TypeShutdown       PacketType = 0x07 // never sent by this package
	TypePing           PacketType = 0x08 // obsolete; never sent
	TypeCPing          PacketType = 0x0A

	TypeSendBodyChunk PacketType = 0x03
	TypeSendHeaders   PacketType = 0x04
	TypeEndResponse   PacketType = 0x05
	TypeGetBodyChunk  PacketType = 0x06
	TypeCPong         PacketType = 0x09
)

var packetTypeNames = map[PacketType]string{
	TypeForwardRequest: "FORWARD_REQUEST",
	TypeShutdown:       "SHUTDOWN",
	TypePing:           "PING",
	TypeCPing:          "CPING",
	TypeSendBodyChunk:  "SEND_BODY_CHUNK",
	TypeSendHeaders:    "SEND_HEADERS",
	TypeEndResponse:    "END_RESPONSE",
	TypeGetBodyChunk:   "GET_BODY_CHUNK",
	TypeCPong:          "CPONG",
}

func (t PacketType) String() string {
	if s, ok := packetTypeNames[t]; ok {
		return s
	}
	return "UNKNOWN_PACKET_TYPE_" + strconv.Itoa(int(t))
}

// Method is the AJP13 code of an HTTP method in a Forward Request.
type Method uint8

// Method codes. MethodStored means "see the stored_method attribute": it is
// how methods without a code (PATCH, anything custom) are sent.
const (
	MethodOptions         Method = 1
	MethodGet             Method = 2
	MethodHead            Method = 3
	MethodPost            Method = 4
	MethodPut             Method = 5
	MethodDelete          Method = 6
	MethodTrace           Method = 7
	MethodPropfind        Method = 8
	MethodProppatch       Method = 9
	MethodMkcol           Method = 10
	MethodCopy            Method = 11
	MethodMove            Method = 12
	MethodLock            Method = 13
	MethodUnlock          Method = 14
	MethodACL             Method = 15
	MethodReport          Method = 16
	MethodVersionControl  Method = 17
	MethodCheckin         Method = 18
	MethodCheckout        Method = 19
	MethodUncheckout      Method = 20
	MethodSearch          Method = 21
	MethodMkworkspace     Method = 22
	MethodUpdate          Method = 23
	MethodLabel           Method = 24
	MethodMerge           Method = 25
	MethodBaselineControl Method = 26
	MethodMkactivity      Method = 27
	MethodStored          Method = 0xFF
)

// methodNames is indexed by Method; index 0 is unused.
var methodNames = [...]string{
	"", "OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "PROPFIND",
	"PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "ACL", "REPORT",
	"VERSION-CONTROL", "CHECKIN", "CHECKOUT", "UNCHECKOUT", "SEARCH",
	"MKWORKSPACE", "UPDATE", "LABEL", "MERGE", "BASELINE-CONTROL", "MKACTIVITY",
}

func (m Method) String() string {
	if m == MethodStored {
		return "STORED"
	}
	if m > 0 && int(m) < len(methodNames) {
		return methodNames[m]
	}
	return "UNKNOWN_METHOD_" + strconv.Itoa(int(m))
}

// MethodCode returns the AJP13 code of an HTTP method. Methods are case
// sensitive (RFC 9110 9.1): "get" has no code. Methods without a code,
// PATCH among them, return MethodStored.
func MethodCode(method string) Method {
	switch method { // the common ones without a loop
	case "GET":
		return MethodGet
	case "POST":
		return MethodPost
	case "HEAD":
		return MethodHead
	case "PUT":
		return MethodPut
	case "DELETE":
		return MethodDelete
	case "OPTIONS":
		return MethodOptions
	}
	for i := 7; i < len(methodNames); i++ {
		if methodNames[i] == method {
			return Method(i)
		}
	}
	return MethodStored
}

// HeaderCode is the AJP13 code of a common request header name.
type HeaderCode uint16

// Request header codes.
const (
	HeaderAccept         HeaderCode = 0xA001
	HeaderAcceptCharset  HeaderCode = 0xA002
	HeaderAcceptEncoding HeaderCode = 0xA003
	HeaderAcceptLanguage HeaderCode = 0xA004
	HeaderAuthorization  HeaderCode = 0xA005
	HeaderConnection     HeaderCode = 0xA006
	HeaderContentType    HeaderCode = 0xA007
	HeaderContentLength  HeaderCode = 0xA008
	HeaderCookie         HeaderCode = 0xA009
	HeaderCookie2        HeaderCode = 0xA00A
	HeaderHost           HeaderCode = 0xA00B
	HeaderPragma         HeaderCode = 0xA00C
	HeaderReferer        HeaderCode = 0xA00D
	HeaderUserAgent      HeaderCode = 0xA00E
)

// requestHeaderNames is indexed by code-0xA000, in the lower case Tomcat
// uses when it decodes them.
var requestHeaderNames = [...]string{
	"", "accept", "accept-charset", "accept-encoding", "accept-language",
	"authorization", "connection", "content-type", "content-length", "cookie",
	"cookie2", "host", "pragma", "referer", "user-agent",
}

func (c HeaderCode) String() string {
	if i := int(c) - 0xA000; i > 0 && i < len(requestHeaderNames) {
		return requestHeaderNames[i]
	}
	return fmt.Sprintf("UNKNOWN_HEADER_0x%04X", uint16(c))
}

// headerCode returns the code of a request header name given in canonical
// form (as net/http stores it), or 0 if it has none. Non-canonical keys,
// which only appear when a caller writes the map directly, fall back to a
// case-insensitive scan.
func headerCode(name string) HeaderCode {
	switch name {
	case "Accept":
		return HeaderAccept
	case "Accept-Charset":
		return HeaderAcceptCharset
	case "Accept-Encoding":
		return HeaderAcceptEncoding
	case "Accept-Language":
		return HeaderAcceptLanguage
	case "Authorization":
		return HeaderAuthorization
	case "Connection":
		return HeaderConnection
	case "Content-Type":
		return HeaderContentType
	case "Content-Length":
		return HeaderContentLength
	case "Cookie":
		return HeaderCookie
	case "Cookie2":
		return HeaderCookie2
	case "Host":
		return HeaderHost
	case "Pragma":
		return HeaderPragma
	case "Referer":
		return HeaderReferer
	case "User-Agent":
		return HeaderUserAgent
	}
	if len(name) > len("accept-language") || len(name) < len("host") {
		return 0
	}
	for i := 1; i < len(requestHeaderNames); i++ {
		if httplex.EqualFold(name, requestHeaderNames[i]) {
			return HeaderCode(0xA000 + i)
		}
	}
	return 0
}

// ResponseHeaderCode is the AJP13 code of a common response header name.
// The codes overlap the request header codes; the direction tells them apart.
type ResponseHeaderCode uint16

// Response header codes.
const (
	RespContentType     ResponseHeaderCode = 0xA001
	RespContentLanguage ResponseHeaderCode = 0xA002
	RespContentLength   ResponseHeaderCode = 0xA003
	RespDate            ResponseHeaderCode = 0xA004
	RespLastModified    ResponseHeaderCode = 0xA005
	RespLocation        ResponseHeaderCode = 0xA006
	RespSetCookie       ResponseHeaderCode = 0xA007
	RespSetCookie2      ResponseHeaderCode = 0xA008
	RespServletEngine   ResponseHeaderCode = 0xA009
	RespStatus          ResponseHeaderCode = 0xA00A
	RespWWWAuthenticate ResponseHeaderCode = 0xA00B
)

// responseHeaderNames is indexed by code-0xA000, in canonical form.
var responseHeaderNames = [...]string{
	"", "Content-Type", "Content-Language", "Content-Length", "Date",
	"Last-Modified", "Location", "Set-Cookie", "Set-Cookie2", "Servlet-Engine",
	"Status", "Www-Authenticate",
}

func (c ResponseHeaderCode) String() string {
	if i := int(c) - 0xA000; i > 0 && i < len(responseHeaderNames) {
		return responseHeaderNames[i]
	}
	return fmt.Sprintf("UNKNOWN_RESPONSE_HEADER_0x%04X", uint16(c))
}

// AttributeCode is the code of an optional Forward Request attribute.
type AttributeCode uint8

// Attribute codes. The list of attributes ends with AttrAreDone.
const (
	AttrContext     AttributeCode = 0x01 // unused by Tomcat; never sent
	AttrServletPath AttributeCode = 0x02 // unused by Tomcat; never sent
	AttrRemoteUser  AttributeCode = 0x03
	AttrAuthType    AttributeCode = 0x04
	AttrQueryString AttributeCode = 0x05
	AttrRoute       AttributeCode = 0x06 // jvm_route
	AttrSSLCert     AttributeCode = 0x07
	AttrSSLCipher   AttributeCode = 0x08
	AttrSSLSession  AttributeCode = 0x09
	AttrReqAttr     AttributeCode = 0x0A // followed by a name and a value
	AttrSSLKeySize  AttributeCode = 0x0B // a 16-bit integer, not a string
	AttrSecret      AttributeCode = 0x0C
	AttrStoredMeth  AttributeCode = 0x0D
	AttrAreDone     AttributeCode = 0xFF
)

var attributeNames = map[AttributeCode]string{
	AttrContext: "context", AttrServletPath: "servlet_path", AttrRemoteUser: "remote_user",
	AttrAuthType: "auth_type", AttrQueryString: "query_string", AttrRoute: "route",
	AttrSSLCert: "ssl_cert", AttrSSLCipher: "ssl_cipher", AttrSSLSession: "ssl_session",
	AttrReqAttr: "req_attribute", AttrSSLKeySize: "ssl_key_size", AttrSecret: "secret",
	AttrStoredMeth: "stored_method", AttrAreDone: "are_done",
}

func (a AttributeCode) String() string {
	if s, ok := attributeNames[a]; ok {
		return s
	}
	return "UNKNOWN_ATTRIBUTE_" + strconv.Itoa(int(a))
}

// Names of the private request attributes (req_attribute, 0x0A) the
// transport sends. Tomcat consumes these three by name before it applies
// allowedRequestAttributesPattern, so they never cause a 403 (see
// AjpProcessor.prepareRequest). No other name is ever sent.
const (
	ReqAttrRemotePort  = "AJP_REMOTE_PORT"
	ReqAttrLocalAddr   = "AJP_LOCAL_ADDR"
	ReqAttrSSLProtocol = "AJP_SSL_PROTOCOL"
)

// Packet is a decoded packet from the container: one of *SendHeadersPacket,
// *BodyChunkPacket, *EndResponsePacket, *GetBodyChunkPacket, *CPongPacket.
type Packet interface {
	Type() PacketType
}

// SendHeadersPacket carries the response status line and headers.
type SendHeadersPacket struct {
	Status int
	// Reason is the reason phrase as sent. Tomcat sends the numeric status
	// here ("200"), so callers should not show it; see StatusLine.
	Reason string
	Header http.Header // canonical keys; repeated names (Set-Cookie) kept
}

// BodyChunkPacket carries response body bytes. An empty chunk is a flush.
// Data aliases the Framer's read buffer: it is only valid until the next
// call to ReadPacket.
type BodyChunkPacket struct {
	Data []byte
}

// EndResponsePacket ends a response. Reuse reports whether the container
// keeps the connection open for another request.
type EndResponsePacket struct {
	Reuse bool
}

// GetBodyChunkPacket asks for up to Length more bytes of the request body.
type GetBodyChunkPacket struct {
	Length int
}

// CPongPacket answers a CPING.
type CPongPacket struct{}

func (*SendHeadersPacket) Type() PacketType  { return TypeSendHeaders }
func (*BodyChunkPacket) Type() PacketType    { return TypeSendBodyChunk }
func (*EndResponsePacket) Type() PacketType  { return TypeEndResponse }
func (*GetBodyChunkPacket) Type() PacketType { return TypeGetBodyChunk }
func (*CPongPacket) Type() PacketType        { return TypeCPong }

// Framer reads packets from the container and writes packets to it, the
// web-server side of AJP13. It is modelled on golang.org/x/net/http2's
// Framer: the header is read with io.ReadFull, the announced length is
// checked against the maximum packet size before the payload is read, and
// one read buffer is reused, so a packet returned by ReadPacket (and any
// slice in it) is only valid until the next call to ReadPacket.
//
// A Framer is not safe for concurrent use.
type Framer struct {
	r       io.Reader
	w       io.Writer
	maxSize int // whole packet, header included

	hdr  [headerLen]byte
	rbuf []byte
	wbuf []byte

	// Packet values reused by ReadPacket, so that body chunks, GET_BODY_CHUNK
	// and END_RESPONSE do not allocate. SEND_HEADERS is new each time: its
	// header map outlives the next read.
	bodyChunk BodyChunkPacket
	endResp   EndResponsePacket
	getBody   GetBodyChunkPacket
	cpong     CPongPacket

	// AllowIllegalWrites lets the Write methods send packets larger than
	// the maximum packet size. For conformance tests only.
	AllowIllegalWrites bool
}

// NewFramer returns a Framer that writes to w and reads from r (which
// should be buffered). maxPacketSize is clamped to [DefaultPacketSize,
// MaxPacketSize], the range Tomcat allows for packetSize; 0 means the
// default.
func NewFramer(w io.Writer, r io.Reader, maxPacketSize int) *Framer {
	return &Framer{w: w, r: r, maxSize: clampPacketSize(maxPacketSize)}
}

// MaxPacketSize returns the packet size the Framer enforces.
func (fr *Framer) MaxPacketSize() int { return fr.maxSize }

func clampPacketSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPacketSize
	case n < DefaultPacketSize:
		return DefaultPacketSize
	case n > MaxPacketSize:
		return MaxPacketSize
	}
	return n
}

// readHeader reads a 4-byte packet header and returns the payload length.
func (fr *Framer) readHeader() (int, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, err
	}
	if fr.hdr[0] != 'A' || fr.hdr[1] != 'B' {
		return 0, fmt.Errorf("%w: got 0x%02x%02x, want \"AB\"", ErrBadMagic, fr.hdr[0], fr.hdr[1])
	}
	n := int(binary.BigEndian.Uint16(fr.hdr[2:]))
	if n+headerLen > fr.maxSize {
		return n, &sizeError{size: n + headerLen, max: fr.maxSize}
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: empty packet", ErrProtocol)
	}
	return n, nil
}

// sizeError is ErrPacketTooLarge with the sizes, for the transport's message.
type sizeError struct{ size, max int }

func (e *sizeError) Error() string {
	return fmt.Sprintf("%v: %d-byte packet, limit %d", ErrPacketTooLarge, e.size, e.max)
}
func (e *sizeError) Unwrap() error { return ErrPacketTooLarge }

// ReadPacket reads and decodes the next packet from the container. It
// returns io.EOF only when the connection ended cleanly between packets,
// io.ErrUnexpectedEOF when it ended inside one, an error wrapping
// ErrPacketTooLarge when the announced length exceeds the maximum packet
// size (nothing of the payload has been read or allocated then), and an
// error wrapping ErrProtocol or ErrBadMagic for malformed input.
//
// The packet and the slices it holds are only valid until the next call.
func (fr *Framer) ReadPacket() (Packet, error) {
	n, err := fr.readHeader()
	if err != nil {
		return nil, err
	}
	if cap(fr.rbuf) < n {
		// Grow to what this packet needs, at least a default-sized packet's
		// payload, never more than the maximum.
		c := max(n, min(DefaultPacketSize, fr.maxSize)-headerLen)
		fr.rbuf = make([]byte, c)
	}
	p := fr.rbuf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return fr.decode(p)
}

// decode parses a payload (type byte first).
func (fr *Framer) decode(p []byte) (Packet, error) {
	switch t := PacketType(p[0]); t {
	case TypeSendBodyChunk:
		data, err := parseBodyChunk(p)
		if err != nil {
			return nil, err
		}
		fr.bodyChunk.Data = data
		return &fr.bodyChunk, nil
	case TypeSendHeaders:
		return parseSendHeaders(p)
	case TypeEndResponse:
		if len(p) < 2 {
			return nil, fmt.Errorf("%w: short END_RESPONSE", ErrProtocol)
		}
		// Only 1 means "reuse": anything else closes, the safe reading.
		fr.endResp.Reuse = p[1] == 1
		return &fr.endResp, nil
	case TypeGetBodyChunk:
		if len(p) < 3 {
			return nil, fmt.Errorf("%w: short GET_BODY_CHUNK", ErrProtocol)
		}
		fr.getBody.Length = int(binary.BigEndian.Uint16(p[1:]))
		return &fr.getBody, nil
	case TypeCPong:
		return &fr.cpong, nil
	default:
		return nil, fmt.Errorf("%w: unexpected packet type %v from container", ErrProtocol, t)
	}
}

// parseBodyChunk returns the data of a SEND_BODY_CHUNK payload:
// type (1), length (2), data, and a trailing 0x00 that the length does not
// count. Tomcat always writes the trailing byte (AjpMessage.appendBytes);
// the AJPv13 document does not show it, so a payload without it is
// accepted too. Anything else after the data is a protocol error.
func parseBodyChunk(p []byte) ([]byte, error) {
	if len(p) < 3 {
		return nil, fmt.Errorf("%w: short SEND_BODY_CHUNK", ErrProtocol)
	}
	n := int(binary.BigEndian.Uint16(p[1:]))
	end := 3 + n
	switch {
	case len(p) == end:
	case len(p) == end+1 && p[end] == 0:
	default:
		return nil, fmt.Errorf("%w: SEND_BODY_CHUNK length %d in a %d-byte payload", ErrProtocol, n, len(p))
	}
	return p[3:end:end], nil
}
