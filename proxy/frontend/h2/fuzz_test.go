package h2

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Limits of the server under fuzzing: small, so that short inputs reach
// them.
const (
	fuzzMaxHeaderBytes  = 2048
	fuzzMaxHeaderFields = 8
	// fuzzWriteTimeout is short, so that responses waiting for window
	// time out while the input's frames arrive.
	fuzzWriteTimeout = 20 * time.Millisecond
	// fuzzSafety bounds each wait: a server that neither answers nor
	// ends, or a handler that never returns, fails the input.
	fuzzSafety = 10 * time.Second
)

// fuzzInput hands out the fuzz input a few bytes at a time, zeros once it
// is used up.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	v := in.b[0]
	in.b = in.b[1:]
	return v
}

func (in *fuzzInput) bit() bool { return in.byte()&1 == 1 }

func (in *fuzzInput) u32() uint32 {
	var p [4]byte
	for i := range p {
		p[i] = in.byte()
	}
	return binary.BigEndian.Uint32(p[:])
}

func (in *fuzzInput) bytes(n int) []byte {
	n = min(n, len(in.b))
	p := in.b[:n]
	in.b = in.b[n:]
	return p
}

// stream picks a stream id: mostly the first odd ones, sometimes any.
func (in *fuzzInput) stream() uint32 {
	v := in.byte()
	if v == 0xff {
		return in.u32() & 0x7fffffff
	}
	return uint32(v % 16)
}

var (
	fuzzNames  = []string{":method", ":path", ":scheme", ":authority", ":status", "content-length", "cookie", "te", "connection", "trailer", "expect", "host", "x-a", "X-Upper", "x-big"}
	fuzzValues = []string{"GET", "POST", "CONNECT", "/", "/big", "/read", "/flush", "/panic", "https", "a.test", "0", "5", "trailers", "100-continue", "x-t", "", "a\x00b"}
	fuzzPaths  = []string{"/", "/big", "/read", "/flush", "/panic", "/trailer"}
)

// fuzzFrames turns the input into the bytes of a frame sequence a client
// might send after the preface, written with x/net/http2's Framer (illegal
// frames allowed) and HPACK encoder.
func fuzzFrames(data []byte) []byte {
	in := &fuzzInput{b: data}
	var out, hb bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	fr.AllowIllegalWrites = true
	enc := hpack.NewEncoder(&hb)
	block := func() []byte {
		hb.Reset()
		for n := int(in.byte() % 24); n > 0; n-- {
			name := fuzzNames[int(in.byte())%len(fuzzNames)]
			var value string
			switch v := in.byte(); {
			case v < 0xe0:
				value = fuzzValues[int(v)%len(fuzzValues)]
			case v < 0xf0:
				value = strings.Repeat("v", int(in.byte())*16) // a large table entry
			default:
				value = string(in.bytes(int(in.byte() % 32)))
			}
			enc.WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: in.bit()}) //nolint:errcheck // bytes.Buffer
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	for ops := 0; len(in.b) > 0 && ops < 256; ops++ {
		// Write errors are impossible on a bytes.Buffer with illegal writes
		// allowed but for sizes; an unwritable frame is skipped.
		switch in.byte() % 13 {
		case 0:
			var ss []http2.Setting
			for n := in.byte() % 4; n > 0; n-- {
				ss = append(ss, http2.Setting{ID: http2.SettingID(in.byte() % 8), Val: in.u32()})
			}
			fr.WriteSettings(ss...) //nolint:errcheck // see above
		case 1:
			fr.WriteSettingsAck() //nolint:errcheck // see above
		case 2:
			p := http2.HeadersFrameParam{StreamID: in.stream(), BlockFragment: block(), EndStream: in.bit(), EndHeaders: in.byte()%4 != 0}
			if in.byte()%8 == 0 {
				p.Priority = http2.PriorityParam{StreamDep: in.stream(), Weight: in.byte(), Exclusive: in.bit()}
			}
			fr.WriteHeaders(p) //nolint:errcheck // see above
		case 3:
			frag := block()
			if in.bit() {
				frag = in.bytes(int(in.byte() % 64)) // not HPACK, perhaps
			}
			fr.WriteContinuation(in.stream(), in.byte()%4 != 0, frag) //nolint:errcheck // see above
		case 4:
			id, end := in.stream(), in.bit()
			payload := bytes.Repeat([]byte{'d'}, int(in.byte())*64)
			if pad := in.byte(); pad%4 == 0 {
				fr.WriteDataPadded(id, end, payload, make([]byte, pad/4)) //nolint:errcheck // see above
			} else {
				fr.WriteData(id, end, payload) //nolint:errcheck // see above
			}
		case 5:
			fr.WriteWindowUpdate(in.stream(), in.u32()&0x7fffffff) //nolint:errcheck // see above
		case 6:
			fr.WriteRSTStream(in.stream(), http2.ErrCode(in.byte()%16)) //nolint:errcheck // see above
		case 7:
			var d [8]byte
			copy(d[:], in.bytes(8))
			fr.WritePing(in.bit(), d) //nolint:errcheck // see above
		case 8:
			fr.WritePriority(in.stream(), http2.PriorityParam{StreamDep: in.stream(), Weight: in.byte(), Exclusive: in.bit()}) //nolint:errcheck // see above
		case 9:
			fr.WriteGoAway(in.stream(), http2.ErrCode(in.byte()%16), nil) //nolint:errcheck // see above
		case 10:
			fr.WritePushPromise(http2.PushPromiseParam{StreamID: in.stream(), PromiseID: in.stream(), BlockFragment: block(), EndHeaders: true}) //nolint:errcheck // see above
		case 11:
			fr.WriteRawFrame(http2.FrameType(in.byte()), http2.Flags(in.byte()), in.stream(), in.bytes(int(in.byte()%32))) //nolint:errcheck // see above
		case 12:
			// A well-formed request, so that handlers run.
			hb.Reset()
			method := "GET"
			if in.bit() {
				method = "POST"
			}
			for _, hf := range []hpack.HeaderField{
				{Name: ":method", Value: method}, {Name: ":scheme", Value: "https"},
				{Name: ":authority", Value: "a.test"}, {Name: ":path", Value: fuzzPaths[int(in.byte())%len(fuzzPaths)]},
			} {
				enc.WriteField(hf) //nolint:errcheck // bytes.Buffer
			}
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: in.stream(), BlockFragment: hb.Bytes(), EndStream: method == "GET", EndHeaders: true}) //nolint:errcheck // see above
		}
	}
	return out.Bytes()
}

// fuzzHandlers counts the handlers running and checks what each was given
// against the limits.
type fuzzHandlers struct {
	mu       sync.Mutex
	zero     sync.Cond
	running  int
	timedOut bool
	overSize int // decoded header list size over the limit, if any
	overN    int
}

func (fh *fuzzHandlers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The list as the client sent it is at least this large (cookie
	// crumbs joined, Host taken out, :scheme not kept).
	size := len(":method") + len(r.Method) + 32 + len("host") + len(r.Host) + 32
	if r.Method != http.MethodConnect {
		size += len(":path") + len(r.RequestURI) + 32
	}
	n := 0
	for k, vv := range r.Header {
		for _, v := range vv {
			size += len(k) + len(v) + 32
			n++
		}
	}
	fh.mu.Lock()
	fh.running++
	if size > fuzzMaxHeaderBytes {
		fh.overSize = size
	}
	if n > fuzzMaxHeaderFields {
		fh.overN = n
	}
	fh.mu.Unlock()
	defer func() {
		fh.mu.Lock()
		fh.running--
		if fh.running == 0 {
			fh.zero.Broadcast()
		}
		fh.mu.Unlock()
	}()
	switch r.URL.Path {
	case "/big":
		w.Write(bytes.Repeat([]byte("b"), 200<<10)) //nolint:errcheck // the stream may be gone
	case "/read":
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, strconv.Itoa(len(b))) //nolint:errcheck // as above
	case "/flush":
		io.WriteString(w, "first") //nolint:errcheck // as above
		w.(http.Flusher).Flush()
		io.WriteString(w, "second") //nolint:errcheck // as above
	case "/panic":
		panic("fuzz handler panic")
	case "/trailer":
		w.Header().Set("Trailer", "X-T")
		io.WriteString(w, "body") //nolint:errcheck // as above
		w.Header().Set("X-T", "t")
	default:
		io.WriteString(w, "ok") //nolint:errcheck // as above
	}
}

// wait waits until no handler runs; false after fuzzSafety.
func (fh *fuzzHandlers) wait() bool {
	t := time.AfterFunc(fuzzSafety, func() {
		fh.mu.Lock()
		fh.timedOut = true
		fh.zero.Broadcast()
		fh.mu.Unlock()
	})
	defer t.Stop()
	fh.mu.Lock()
	defer fh.mu.Unlock()
	for fh.running > 0 && !fh.timedOut {
		fh.zero.Wait()
	}
	return fh.running == 0
}

// fuzzServe runs frames against a fresh server over net.Pipe and checks
// the invariants: the server answers a PING that follows them or ends the
// connection; handlers saw header lists within the limits; once the
// connection is closed no stream is left and every handler returns.
func fuzzServe(t *testing.T, frames []byte) {
	srv := &Server{MaxHeaderBytes: fuzzMaxHeaderBytes, MaxHeaderFields: fuzzMaxHeaderFields, WriteTimeout: fuzzWriteTimeout}
	hs := &http.Server{ErrorLog: log.New(io.Discard, "", 0)}
	fh := &fuzzHandlers{}
	fh.zero.L = &fh.mu
	cli, sc := net.Pipe()
	served := make(chan *conn, 1)
	go func() { served <- srv.serveConn(context.Background(), hs, sc, nil, fh) }()

	// The client reads everything and reports the PING ACK, or the end.
	answered := make(chan string, 1)
	go func() {
		fr := http2.NewFramer(nil, cli)
		fr.SetMaxReadFrameSize(1 << 24)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					answered <- "no answer: " + err.Error()
					return
				}
				answered <- "closed"
				io.Copy(io.Discard, cli) //nolint:errcheck // until our Close
				return
			}
			if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && string(p.Data[:]) == "fuzzsync" {
				answered <- "answered"
				io.Copy(io.Discard, cli) //nolint:errcheck // until our Close
				return
			}
		}
	}()
	cli.SetDeadline(time.Now().Add(fuzzSafety)) //nolint:errcheck // the safety net
	// The preface, an empty SETTINGS (without it the server reads no
	// further), the frames, and a PING.
	var settings, ping bytes.Buffer
	http2.NewFramer(&settings, nil).WriteSettings()                                               //nolint:errcheck // bytes.Buffer
	http2.NewFramer(&ping, nil).WritePing(false, [8]byte{'f', 'u', 'z', 'z', 's', 'y', 'n', 'c'}) //nolint:errcheck // bytes.Buffer
	msg := append([]byte(clientPreface), settings.Bytes()...)
	msg = append(msg, frames...)
	msg = append(msg, ping.Bytes()...)
	go func() {
		cli.Write(msg) //nolint:errcheck // the server may close first
	}()
	select {
	case how := <-answered:
		if strings.HasPrefix(how, "no answer") {
			t.Fatalf("the server neither answered the PING nor closed the connection: %s", how)
		}
	case <-time.After(fuzzSafety):
		t.Fatalf("the server neither answered the PING nor closed the connection")
	}
	cli.Close()
	var c *conn
	select {
	case c = <-served:
	case <-time.After(fuzzSafety):
		t.Fatalf("the server did not end the connection after the client closed it")
	}

	c.smu.Lock()
	left := len(c.streams)
	c.smu.Unlock()
	if left > 0 {
		t.Errorf("%d streams left after the connection ended", left)
	}
	if !fh.wait() {
		t.Fatalf("handlers still running %v after the connection ended", fuzzSafety)
	}
	// handlerDone follows the handler's return.
	for deadline := time.Now().Add(fuzzSafety); c.running.Load() > 0; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("%d handlers not done %v after the connection ended", c.running.Load(), fuzzSafety)
		}
	}
	c.smu.Lock()
	handlers, left := c.handlers, len(c.streams)
	c.smu.Unlock()
	if handlers != 0 || left != 0 {
		t.Errorf("after the handlers: %d handlers counted, %d streams left", handlers, left)
	}
	if fh.overSize > 0 || fh.overN > 0 {
		t.Errorf("a handler got a header list of %d bytes, %d fields; limits %d, %d",
			fh.overSize, fh.overN, fuzzMaxHeaderBytes, fuzzMaxHeaderFields)
	}
}

// FuzzServerFrames writes a frame sequence built from the input to a live
// server (see fuzzFrames, fuzzServe). Seeds in testdata/fuzz/FuzzServerFrames.
func FuzzServerFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzServe(t, fuzzFrames(data))
	})
}
