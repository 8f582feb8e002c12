// Package h2 is webtier's HTTP/2 server for its TLS listeners.
//
// net/http's HTTP/2 server writes every response in at least two system
// calls: a handler's response headers are sent before its body can follow,
// and each flush of the connection runs on a goroutine of its own. A proxy
// answering small requests pays for that on every request (about 1.9 TLS
// writes per response under h2load -m5, against one for HTTP/1.1). This
// server runs the handler on a pooled goroutine and lets it append its
// frames to the connection's write buffer itself; the last goroutine to
// leave the buffer writes it, so the response headers, the body and the end
// of the stream of one or several responses go out in one write.
//
// Framing and HPACK are golang.org/x/net/http2's Framer (reading) and hpack
// (both ways); header blocks are decoded and validated by headers.go, with
// the Framer's checks and limits but no allocation of its own. The server plugs into an http.Server as
// its TLSNextProto["h2"], so TLS, HTTP/1.1 over TLS and graceful shutdown
// stay net/http's.
//
// Limits (RFC 9113 and the attacks on HTTP/2 servers): at most
// MaxConcurrentStreams open streams and handlers per connection (a stream
// over it is refused, and a client that keeps opening refused or reset
// streams is sent away: rapid reset, CVE-2023-44487); decoded header lists
// up to MaxHeaderBytes and MaxHeaderFields (an HPACK block expands a few
// bytes on the wire into a large list; CONTINUATION floods end at the
// same limit, CVE-2024-27316); request bodies buffered only within the
// flow-control windows this server grants (1 MiB per connection); a
// response write that waits for the client's flow-control window for
// WriteTimeout resets its stream, and socket writes that make no progress
// for WriteTimeout end the connection; how the client's last
// streamRecord streams ended, to answer frames on closed streams (RFC 9113
// 5.1), 8 bytes a stream.
package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/webtier/webtier/proxy"
)

const (
	clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

	// DefaultMaxConcurrentStreams is net/http's default.
	DefaultMaxConcurrentStreams = 250
	// DefaultMaxHeaderBytes bounds a decoded request header list, counted
	// as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 6.5.2: names,
	// values and 32 bytes a field): the listeners' max_header_size
	// default, 64 KiB.
	DefaultMaxHeaderBytes = proxy.DefaultMaxHeaderSize
	// DefaultMaxHeaderFields bounds the fields of a request header list,
	// pseudo-header fields and cookie crumbs after the first not counted
	// (they become the request line and one Cookie field): the listeners'
	// max_header_fields default, 100 (httpd's LimitRequestFields).
	DefaultMaxHeaderFields = proxy.DefaultMaxHeaderFields
	// DefaultWriteTimeout is how long a response write may wait for the
	// client's flow-control window, or a socket write make no progress:
	// the listeners' write_timeout default, 60 s (nginx's send_timeout,
	// httpd's Timeout).
	DefaultWriteTimeout = proxy.DefaultWriteTimeout

	// streamWindow and connWindow are the receive windows granted to the
	// client: what one stream, and all of them, may have buffered here.
	streamWindow = 1 << 20
	connWindow   = 1 << 20
	// initialWindow is the protocol's default window (RFC 9113 6.9.2).
	initialWindow = 65535
	// maxReadFrame is the largest frame accepted (the protocol default; a
	// larger one would only grow the read buffer).
	maxReadFrame = 16384
	// flushAt is how much the write buffer holds before it is written even
	// while others are about to add to it.
	flushAt = 32 << 10
	// keepWriteBuf is the largest write buffer a connection keeps between
	// writes.
	keepWriteBuf = 16 << 10
	// maxRefused is how many streams a connection may have refused or reset
	// while its handlers are still busy before it is sent away.
	maxRefused = 1000
)

// Server is the HTTP/2 side of one http.Server. Configure installs it.
type Server struct {
	// MaxConcurrentStreams bounds open streams and running handlers per
	// connection (0: DefaultMaxConcurrentStreams).
	MaxConcurrentStreams uint32
	// MaxHeaderBytes bounds a request's decoded header list as
	// SETTINGS_MAX_HEADER_LIST_SIZE counts it, and is advertised so (0:
	// DefaultMaxHeaderBytes). Fields past it are not kept; the block is
	// still decoded, so the HPACK table stays in step, and the stream is
	// answered 431.
	MaxHeaderBytes uint32
	// MaxHeaderFields bounds the fields of a request's header list (0:
	// DefaultMaxHeaderFields); over it the stream is answered 431.
	MaxHeaderFields int
	// WriteTimeout is how long a response write may wait for flow-control
	// window before its stream is reset (RST_STREAM CANCEL, the handler's
	// write failing), and how long a write to the socket may make no
	// progress before the connection ends (0: DefaultWriteTimeout).
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that has had no open stream for this
	// long (0: never).
	IdleTimeout time.Duration
	// ReadHeaderTimeout bounds the wait for the client's preface and
	// SETTINGS (0: 10 s).
	ReadHeaderTimeout time.Duration

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
	draining atomic.Bool // see Drain
}

// Drain, on, sends every connection away (a GOAWAY: no new streams, the
// open ones finish, then the connection closes), and every connection
// opened while it is on after its first stream, so that clients reconnect
// through the balancer in front. Off, new connections are served as usual.
func (s *Server) Drain(on bool) {
	s.draining.Store(on)
	if on {
		s.goAway(false, true)
	}
}

// Configure makes hs serve HTTP/2 with s on connections that negotiate "h2"
// (hs.TLSConfig must list it in NextProtos) and sends those connections
// away gracefully when hs shuts down.
func (s *Server) Configure(hs *http.Server) {
	if hs.TLSNextProto == nil {
		hs.TLSNextProto = make(map[string]func(*http.Server, *tls.Conn, http.Handler))
	}
	hs.TLSNextProto[http2.NextProtoTLS] = s.serveTLS
	hs.RegisterOnShutdown(s.goAwayAll)
}

func (s *Server) maxStreams() int {
	if s.MaxConcurrentStreams == 0 {
		return DefaultMaxConcurrentStreams
	}
	return int(s.MaxConcurrentStreams)
}

func (s *Server) maxHeaderBytes() uint32 {
	if s.MaxHeaderBytes == 0 {
		return DefaultMaxHeaderBytes
	}
	return s.MaxHeaderBytes
}

func (s *Server) maxHeaderFields() int {
	if s.MaxHeaderFields <= 0 {
		return DefaultMaxHeaderFields
	}
	return s.MaxHeaderFields
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout <= 0 {
		return DefaultWriteTimeout
	}
	return s.WriteTimeout
}

// serveTLS is the TLSNextProto hook. h is net/http's wrapper around the
// server's handler; its BaseContext carries http.ServerContextKey.
func (s *Server) serveTLS(hs *http.Server, tc *tls.Conn, h http.Handler) {
	ctx := context.Background()
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext()
	}
	state := tc.ConnectionState()
	s.serveConn(ctx, hs, tc, &state, h)
}

// serveConn serves HTTP/2 on nc, whose TLS handshake (if any) is done. It
// returns the connection once its read loop ended (for tests: handlers may
// still be returning), or nil when the server is shutting down.
func (s *Server) serveConn(ctx context.Context, hs *http.Server, nc net.Conn, state *tls.ConnectionState, h http.Handler) *conn {
	c := &conn{
		srv:          s,
		hs:           hs,
		tc:           nc,
		handler:      h,
		ctx:          context.WithoutCancel(ctx),
		remoteAddr:   nc.RemoteAddr().String(),
		tlsState:     state,
		streams:      make(map[uint32]*stream),
		maxStreams:   s.maxStreams(),
		maxFields:    s.maxHeaderFields(),
		writeTimeout: s.writeTimeout(),

		sendWindow:     initialWindow,
		peerInitWindow: initialWindow,
		peerMaxFrame:   16384,
		recvConnAvail:  connWindow,
	}
	c.wcond.L = &c.wmu
	c.henc = hpack.NewEncoder(&c.hbuf)
	if !s.track(c, true) {
		nc.Close()
		return nil
	}
	defer s.track(c, false)
	c.serve()
	return c
}

// track adds or removes c; it reports false when the server is shutting
// down and c must not start.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.shutdown {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

// goAwayAll sends every connection away: no new streams, close once the
// open ones are done (http.Server.Shutdown waits for that).
func (s *Server) goAwayAll() { s.goAway(true, false) }

// goAway sends every connection away; with shutdown, the connections
// still to come are refused. With async the GOAWAYs are sent from a
// goroutine per connection, so that a client that does not read delays
// no other and not the caller.
func (s *Server) goAway(shutdown, async bool) {
	s.mu.Lock()
	s.shutdown = s.shutdown || shutdown
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		if async {
			go c.goAway(http2.ErrCodeNo)
		} else {
			c.goAway(http2.ErrCodeNo)
		}
	}
}

// conn is one HTTP/2 connection. The read loop (serve) owns the Framer and
// stream admission; handlers write through the write buffer.
type conn struct {
	srv     *Server
	hs      *http.Server
	tc      net.Conn // a *tls.Conn but in tests
	handler http.Handler
	// ctx carries the server's values to the streams' contexts but never
	// ends: a stream's context is not registered with a parent (a lock
	// and a map insert and delete per stream, shared by the connection's
	// streams). The read loop ends every stream it opened (close aborts
	// them, which cancels their contexts) before serveConn returns.
	ctx        context.Context
	remoteAddr string
	tlsState   *tls.ConnectionState
	maxStreams int
	maxFields  int
	// writeTimeout bounds a response write's wait for window and a socket
	// write's lack of progress.
	writeTimeout time.Duration
	fr           *http2.Framer
	hb           headerBlock // the read loop's header block decoding

	// Owned by the read loop.
	maxStreamID uint32 // highest stream the client opened
	sawSettings bool

	// smu guards the streams and the receive windows.
	smu           sync.Mutex
	streams       map[uint32]*stream // open streams
	closed        streamLog          // how the last streams opened ended
	handlers      int                // handlers running (a reset stream's too)
	refused       int                // streams refused or reset by the client while handlers were busy
	goAwayID      uint32             // last stream accepted after a GOAWAY (0: none sent)
	goingAway     bool
	peerGoAway    bool
	lastIdle      time.Time // when the last stream ended
	idleTimer     *time.Timer
	recvConnAvail int32 // bytes the client may still send on the connection
	connUnacked   int32 // bytes read by handlers or discarded, not yet granted back

	// wmu guards everything written to the client and the send windows.
	// lockW/unlockW: the last goroutine to leave with needFlush set writes
	// the buffer.
	wmu        sync.Mutex
	wcond      sync.Cond // window grew, stream reset or connection failed
	waiters    atomic.Int32
	running    atomic.Int32 // handlers running: c.handlers, read without smu
	wbuf       []byte
	needFlush  bool
	werr       error
	wdeadline  time.Time
	sendWindow int32 // connection send window
	// connBlockedAt is when a response write found the connection send
	// window closed (zero: open since); see stream.windowTimeout.
	connBlockedAt  time.Time
	peerInitWindow int32
	peerMaxFrame   int
	henc           *hpack.Encoder
	hbuf           bytes.Buffer
}

var errConnDone = errors.New("h2: connection closed")

func (c *conn) logf(format string, args ...any) {
	if c.hs != nil && c.hs.ErrorLog != nil {
		c.hs.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// serve runs the read loop until the connection ends.
func (c *conn) serve() {
	defer c.close(errConnDone)
	rht := c.srv.ReadHeaderTimeout
	if rht <= 0 {
		rht = 10 * time.Second
	}
	c.tc.SetReadDeadline(time.Now().Add(rht)) //nolint:errcheck // a closed conn fails the read below
	var pre [len(clientPreface)]byte
	if _, err := io.ReadFull(c.tc, pre[:]); err != nil || string(pre[:]) != clientPreface {
		return
	}
	c.fr = http2.NewFramer(nil, c.tc)
	// Header blocks are decoded by readFrame (headers.go). It stops
	// keeping fields past this size but decodes the rest of the block
	// (indexed fields cost no allocation then), so that the HPACK table
	// stays in step and the stream can be answered 431 (RFC 9113 4.3,
	// 10.5.1). A CONTINUATION after the limit is reached ends the
	// connection (PROTOCOL_ERROR): nothing of it would be kept.
	c.hb.init(c.srv.maxHeaderBytes())
	c.fr.SetMaxReadFrameSize(maxReadFrame)
	c.fr.SetReuseFrames()

	c.lockW()
	c.appendSettings()
	c.wbuf = appendWindowUpdate(c.wbuf, 0, connWindow-initialWindow)
	c.needFlush = true
	c.unlockW()

	if c.srv.IdleTimeout > 0 {
		c.smu.Lock() // onIdle takes it: the timer is set before it runs
		c.lastIdle = time.Now()
		c.idleTimer = time.AfterFunc(c.srv.IdleTimeout, c.onIdle)
		c.smu.Unlock()
		defer c.idleTimer.Stop()
	}
	for {
		c.hb.release()
		f, err := c.readFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) && c.sawSettings {
				// A malformed request (bad header field or pseudo-header):
				// that stream is reset, the connection goes on.
				c.smu.Lock()
				if se.StreamID%2 == 1 && se.StreamID > c.maxStreamID {
					c.opened(se.StreamID)
				}
				st := c.streams[se.StreamID]
				c.smu.Unlock()
				if st != nil {
					st.abort(errStreamReset, true, se.Code)
				} else {
					c.writeReset(se.StreamID, se.Code)
				}
				continue
			}
			c.readError(err)
			return
		}
		if !c.sawSettings {
			sf, ok := f.(*http2.SettingsFrame)
			if !ok || sf.IsAck() {
				c.connError(http2.ErrCodeProtocol)
				return
			}
			c.sawSettings = true
			c.tc.SetReadDeadline(time.Time{}) //nolint:errcheck // as above
		}
		if err := c.processFrame(f); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				c.connError(http2.ErrCode(ce))
			}
			return
		}
	}
}

// readError answers a Framer error that ends the connection.
func (c *conn) readError(err error) {
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.connError(http2.ErrCode(ce))
		return
	}
	if errors.Is(err, http2.ErrFrameTooLarge) {
		c.connError(http2.ErrCodeFrameSize)
	}
}

// processFrame handles one frame. It returns a ConnectionError to end the
// connection with a GOAWAY, or another error to end it silently.
func (c *conn) processFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		c.lockW()
		c.wbuf = appendPing(c.wbuf, f.Data)
		c.needFlush = true
		c.unlockW()
		return nil
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.RSTStreamFrame:
		if f.StreamID > c.maxStreamID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
		}
		c.smu.Lock()
		st := c.streams[f.StreamID]
		if st != nil {
			c.refused++
			st.peerReset = true
		}
		refused := c.refused
		c.smu.Unlock()
		if st != nil {
			st.abort(errStreamReset, false)
		}
		if refused > maxRefused && c.busy() {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return nil
	case *http2.GoAwayFrame:
		c.smu.Lock()
		c.peerGoAway = true
		done := c.handlers == 0
		c.smu.Unlock()
		if done {
			return errConnDone
		}
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients never push
	case *http2.PriorityFrame:
		return c.processPriority(f)
	case *http2.UnknownFrame:
		return nil
	case *http2.HeadersFrame, *http2.ContinuationFrame:
		// readFrame returns MetaHeadersFrames.
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// processPriority checks a PRIORITY frame; priorities are otherwise
// ignored (RFC 9113 5.3.2 deprecates the scheme).
func (c *conn) processPriority(f *http2.PriorityFrame) error {
	if !selfDependent(f.StreamID, f.PriorityParam) {
		return nil
	}
	// RFC 9113 5.3.1: a stream that depends on itself is a stream error of
	// type PROTOCOL_ERROR. An idle stream stays idle (PRIORITY does not
	// open it, RFC 9113 5.1), as in net/http; a closed one takes nothing
	// more but PRIORITY, so it is left alone.
	c.smu.Lock()
	st := c.streams[f.StreamID]
	c.smu.Unlock()
	switch {
	case st != nil:
		st.abort(errStreamReset, true, http2.ErrCodeProtocol)
	case f.StreamID > c.maxStreamID:
		c.writeReset(f.StreamID, http2.ErrCodeProtocol)
	}
	return nil
}

// busy reports whether handlers are still running.
func (c *conn) busy() bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.handlers > 0
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	// A frame may repeat a setting; its values count in order, the last
	// wins (RFC 9113 6.5.3). Only the count is bounded.
	if f.NumSettings() > 100 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if err := f.ForeachSetting(func(s http2.Setting) error { return s.Valid() }); err != nil {
		return err
	}
	c.smu.Lock() // lock order: smu, then wmu
	defer c.smu.Unlock()
	c.lockW()
	defer c.unlockW()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - int64(c.peerInitWindow)
			c.peerInitWindow = int32(s.Val)
			for _, st := range c.streams {
				w := int64(st.sendWindow) + delta
				if w > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				st.sendWindow = int32(w)
			}
			c.wcond.Broadcast()
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.wbuf = appendFrameHeader(c.wbuf, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	c.needFlush = true
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	if f.StreamID == 0 {
		c.lockW()
		defer c.unlockW()
		w := int64(c.sendWindow) + int64(f.Increment)
		if w > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.sendWindow = int32(w)
		if c.sendWindow > 0 {
			c.connBlockedAt = time.Time{}
		}
		c.wcond.Broadcast()
		return nil
	}
	if f.StreamID > c.maxStreamID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
	}
	c.smu.Lock()
	st := c.streams[f.StreamID]
	c.smu.Unlock()
	if st == nil {
		return nil // closed: a late update is allowed
	}
	c.lockW()
	w := int64(st.sendWindow) + int64(f.Increment)
	overflow := w > 1<<31-1
	if !overflow {
		st.sendWindow = int32(w)
		c.wcond.Broadcast()
	}
	c.unlockW()
	if overflow {
		st.abort(errStreamReset, true, http2.ErrCodeFlowControl)
	}
	return nil
}

// processData delivers a DATA frame to its stream's body, within the
// windows granted.
func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	if id > c.maxStreamID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
	}
	n := int32(f.Header().Length) // padding counts against the windows
	data := f.Data()
	c.smu.Lock()
	if n > c.recvConnAvail {
		c.smu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvConnAvail -= n
	st := c.streams[id]
	var closed streamEnd
	if st != nil {
		// Both END_STREAMs sent: closed, though its handler has not
		// returned yet.
		closed = st.end()
	}
	if st == nil || closed == endBoth {
		// A closed stream: nothing reads it. The frame counted against the
		// connection window all the same (RFC 9113 5.1, 6.9).
		if st == nil {
			closed = c.closedEnd(id)
		}
		c.connUnacked += n
		c.smu.Unlock()
		switch closed {
		case endNever, endBoth:
			// RFC 9113 5.1, closed: neither a skipped stream nor one both
			// sides ended may see DATA.
			return fmt.Errorf("h2: DATA on closed stream %d: %w", id, http2.ConnectionError(http2.ErrCodeStreamClosed))
		case endByPeer:
			// RFC 9113 5.1, closed: DATA after the client's RST_STREAM
			// is a stream error of type STREAM_CLOSED.
			c.writeReset(id, http2.ErrCodeStreamClosed)
		}
		// Otherwise reset here: the client may have sent it before it saw
		// our RST_STREAM (RFC 9113 5.1, 6.4); ignored, the window granted
		// back.
		c.grant(nil, 0)
		return nil
	}
	if st.remoteClosed || st.body == nil {
		// RFC 9113 5.1, half-closed (remote): a stream error of type
		// STREAM_CLOSED (nothing more is sent when the stream was reset
		// here meanwhile). Nothing reads the data: the connection window
		// is granted back.
		c.connUnacked += n
		c.smu.Unlock()
		c.grant(nil, 0)
		st.abort(errStreamReset, true, http2.ErrCodeStreamClosed)
		return nil
	}
	if n > st.recvAvail {
		c.connUnacked += n
		c.smu.Unlock()
		c.grant(nil, 0)
		st.abort(errStreamReset, true, http2.ErrCodeFlowControl)
		return nil
	}
	st.recvAvail -= n
	pad := n - int32(len(data))
	st.received += int64(len(data))
	tooMuch := st.declared >= 0 && st.received > st.declared
	end := f.StreamEnded()
	short := end && st.declared >= 0 && st.received != st.declared
	if end {
		st.remoteClosed = true
		st.remoteEnded = true
	}
	c.connUnacked += pad
	c.smu.Unlock()
	if tooMuch || short {
		st.abort(errBodyLength, true, http2.ErrCodeProtocol)
		return nil
	}
	if len(data) > 0 {
		st.body.write(data)
	}
	if pad > 0 {
		c.grant(st, pad)
	}
	if end {
		st.body.closeWithError(io.EOF, nil)
		c.maybeForget(st)
	}
	return nil
}

// grant records n bytes of st read (or discarded) and sends WINDOW_UPDATEs
// once enough has accumulated. st may be nil for the connection only.
func (c *conn) grant(st *stream, n int32) {
	var connInc, streamInc int32
	c.smu.Lock()
	if st != nil && !st.remoteClosed {
		st.unacked += n
		if st.unacked >= streamWindow/4 {
			streamInc = st.unacked
			st.recvAvail += streamInc
			st.unacked = 0
		}
	}
	if st != nil {
		c.connUnacked += n
	}
	if c.connUnacked >= connWindow/4 || (c.connUnacked > 0 && c.recvConnAvail == 0) {
		connInc = c.connUnacked
		c.recvConnAvail += connInc
		c.connUnacked = 0
	}
	c.smu.Unlock()
	if connInc == 0 && streamInc == 0 {
		return
	}
	c.lockW()
	if connInc > 0 {
		c.wbuf = appendWindowUpdate(c.wbuf, 0, uint32(connInc))
	}
	if streamInc > 0 {
		c.wbuf = appendWindowUpdate(c.wbuf, st.id, uint32(streamInc))
	}
	c.needFlush = true
	c.unlockW()
}

// connError sends a GOAWAY with code and ends the connection.
func (c *conn) connError(code http2.ErrCode) {
	c.lockW()
	if c.werr == nil {
		c.wbuf = appendGoAway(c.wbuf, c.maxStreamID, code)
		c.needFlush = true
	}
	c.unlockW()
}

// goAway stops new streams and closes the connection once the open ones
// are done.
func (c *conn) goAway(code http2.ErrCode) {
	c.smu.Lock()
	if c.goingAway {
		c.smu.Unlock()
		return
	}
	c.goingAway = true
	c.goAwayID = c.maxStreamID // processHeaders raises it under smu
	done := c.handlers == 0
	id := c.goAwayID
	// The GOAWAY is in the write buffer before smu is released: the last
	// handler, ending now, sees goingAway only with the GOAWAY queued, and
	// its close writes it out first (lock order: smu, then wmu).
	c.lockW()
	if c.werr == nil {
		c.wbuf = appendGoAway(c.wbuf, id, code)
		c.needFlush = true
	}
	c.wmu.Unlock() // written below or by the goroutine waiting for wmu
	c.smu.Unlock()
	c.lockW()
	if done {
		c.flushLocked()
	}
	c.unlockW()
	if done {
		c.tc.Close()
	}
}

// onIdle closes the connection when it has had no stream for IdleTimeout.
func (c *conn) onIdle() {
	c.smu.Lock()
	idle := len(c.streams) == 0 && c.handlers == 0
	left := c.srv.IdleTimeout - time.Since(c.lastIdle)
	if !idle || left > 0 {
		if left <= 0 {
			left = c.srv.IdleTimeout
		}
		c.idleTimer.Reset(left)
		c.smu.Unlock()
		return
	}
	c.smu.Unlock()
	c.goAway(http2.ErrCodeNo)
}

// close ends the connection: handlers waiting to write or read are woken
// with err.
func (c *conn) close(err error) {
	c.lockW()
	if c.werr == nil {
		c.flushLocked()
		if c.werr == nil {
			c.werr = err
		}
	}
	c.wcond.Broadcast()
	c.unlockW()
	c.tc.Close()
	c.smu.Lock()
	streams := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st)
	}
	c.smu.Unlock()
	for _, st := range streams {
		st.abort(errConnDone, false)
	}
}

func (c *conn) lockW() {
	c.waiters.Add(1)
	c.wmu.Lock()
	c.waiters.Add(-1)
}

// unlockW writes the buffer when a flush is due and nobody else is about
// to add to it (they will write it), or when it is large.
func (c *conn) unlockW() {
	if c.needFlush && c.waiters.Load() == 0 || len(c.wbuf) >= flushAt {
		c.flushLocked()
	}
	c.wmu.Unlock()
}

// unlockWBatch is unlockW for the end of a response. While other handlers
// of the connection run, it first yields the P once: answers that came back
// from the backends together then leave in one TLS write instead of one
// each (under h2load -c10 -m5: 2.0 -> 1.35 writes per request, counting
// the write to the backend). A goroutine that finds others waiting for the
// lock afterwards leaves the flush to them, as unlockW does, so none is
// lost. Frames the read loop answers (SETTINGS, PING, WINDOW_UPDATE) go
// through unlockW and do not wait.
func (c *conn) unlockWBatch() {
	if c.needFlush && c.waiters.Load() == 0 && len(c.wbuf) < flushAt && c.running.Load() > 1 {
		c.wmu.Unlock()
		runtime.Gosched()
		c.wmu.Lock()
	}
	c.unlockW()
}

func (c *conn) flushLocked() {
	c.needFlush = false
	if len(c.wbuf) == 0 || c.werr != nil {
		c.wbuf = c.wbuf[:0]
		return
	}
	// The deadline moves once a second at most (less with a write timeout
	// under 2 s): a timer update per write would cost more than the check.
	if now := time.Now(); c.wdeadline.Sub(now) < c.writeTimeout-min(time.Second, c.writeTimeout/2) {
		c.wdeadline = now.Add(c.writeTimeout)
		c.tc.SetWriteDeadline(c.wdeadline) //nolint:errcheck // a failed write reports it
	}
	_, err := c.tc.Write(c.wbuf)
	if cap(c.wbuf) > keepWriteBuf {
		c.wbuf = nil // a large body passed: an idle connection keeps little
	} else {
		c.wbuf = c.wbuf[:0]
	}
	if err != nil {
		c.werr = err
		c.wcond.Broadcast()
		c.tc.Close() // the read loop ends and aborts the streams
	}
}
