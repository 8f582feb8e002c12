// Package compress compresses responses, proxied or static, with gzip and
// zstd (github.com/klauspost/compress) for clients whose Accept-Encoding
// asks for it: httpd's mod_deflate, nginx's gzip. It decides from the
// response header when the handler writes it, streams (no body is held
// back beyond the encoder's own window) and passes flushes through, so
// event streams still reach the client as they come.
//
// klauspost/compress's own gzhttp wrapper was not used: it parses
// Accept-Encoding into a map per request, buffers up to its minimum size
// before deciding even for a stream, and leaves Cache-Control:
// no-transform and ETags alone.
package compress

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// Encoder settings, chosen for memory per response in flight as much as
// for speed: klauspost/compress's gzip level 1 holds about 0.5 MiB and
// compresses about as well as zlib's level 1 (nginx's default) at a
// fraction of its CPU; levels 2 to 9 hold 0.6 to 0.9 MiB. zstd's fastest
// level holds about 0.4 MiB (its default level 1.4 MiB) and still beats
// gzip's ratio on text. The zstd window is 1 MiB: enough for web pages,
// well under the 8 MiB RFC 9659 lets browsers refuse.
const (
	GzipLevel  = 1
	zstdWindow = 1 << 20
	// poolSize bounds the idle encoders kept per coding.
	poolSize = 16
	// MaxInFlight bounds the responses being compressed at once, in the
	// whole process, and with it the encoders' memory (about 64 MiB):
	// a response beyond it goes out uncompressed, as it is. Only long
	// streams (event streams, big downloads to slow clients) hold an
	// encoder for long; a page is compressed in a moment.
	MaxInFlight = 128
)

// inFlight holds one token per response being compressed.
var inFlight = make(chan struct{}, MaxInFlight)

// Compressor is one compress configuration, compiled. It is safe for
// concurrent use.
type Compressor struct {
	types     []string // media types, lower case
	minSize   int64
	encodings []string
}

// New compiles o. A nil Options or one without encodings compresses
// nothing and New returns nil, so that callers keep one nil check.
func New(o *Options) (*Compressor, error) {
	if o == nil || len(o.Encodings) == 0 {
		return nil, nil
	}
	c := &Compressor{minSize: int64(o.MinSize)}
	for _, e := range o.Encodings {
		if e != Gzip && e != Zstd {
			return nil, fmt.Errorf("compress: unknown encoding %q (want gzip or zstd)", e)
		}
	}
	c.encodings = slices.Clone(o.Encodings)
	types := o.Types
	if types == nil {
		types = DefaultTypes
	}
	for _, t := range types {
		c.types = append(c.types, strings.ToLower(t))
	}
	return c, nil
}

// Wrap returns w wrapped to compress the response to r, or nil when r is
// not to be compressed: c is nil, HEAD, a Range request, an upgrade, an
// Accept-Encoding that accepts none of the encodings, or MaxInFlight
// responses being compressed already. The caller must call
// Finish on the returned writer when the handler returns, in a defer.
func (c *Compressor) Wrap(w http.ResponseWriter, r *http.Request) *Writer {
	if c == nil {
		return nil
	}
	ae := r.Header["Accept-Encoding"]
	if len(ae) == 0 || r.Method == http.MethodHead || len(r.Header["Range"]) > 0 || len(r.Header["Upgrade"]) > 0 {
		return nil
	}
	enc := Negotiate(ae, c.encodings)
	if enc == "" {
		return nil
	}
	select {
	case inFlight <- struct{}{}:
	default:
		return nil // MaxInFlight: this one goes out as it is
	}
	cw := getWriter(enc)
	cw.w, cw.c = w, c
	return cw
}

// Writer compresses one response; see Compressor.Wrap.
type Writer struct {
	w     http.ResponseWriter
	c     *Compressor
	enc   string
	state int // undecided, compressing or plain

	gz *gzip.Writer
	zs *zstd.Encoder
}

const (
	undecided = iota
	compressing
	plain
)

// Header returns the underlying writer's header.
func (cw *Writer) Header() http.Header { return cw.w.Header() }

// Unwrap gives http.ResponseController the writer underneath.
func (cw *Writer) Unwrap() http.ResponseWriter { return cw.w }

// WriteHeader decides, from the response's status and header, whether to
// compress, and adjusts the header to what is sent.
func (cw *Writer) WriteHeader(code int) {
	if cw.state != undecided {
		cw.w.WriteHeader(code)
		return
	}
	if code < 200 {
		cw.w.WriteHeader(code) // 1xx: the final answer is still to come
		return
	}
	h := cw.w.Header()
	cw.state = plain
	if cw.compressible(code, h) {
		cw.state = compressing
		delete(h, "Content-Length")
		delete(h, "Accept-Ranges")
		h["Content-Encoding"] = []string{cw.enc}
		weakenETag(h)
		cw.startEncoder()
	}
	// A 304 keeps its ETag as the handler set it (as nginx's): a client
	// that validates the compressed copy sent the weak form, which
	// matches it by weak comparison, and a strong ETag in the 304 keeps
	// If-Range working for ranges, which are never compressed.
	cw.w.WriteHeader(code)
}

// compressible decides for one final response, and adds Vary:
// Accept-Encoding where the answer depends on it.
func (cw *Writer) compressible(code int, h http.Header) bool {
	if ce := h["Content-Encoding"]; len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(ce[0], "identity")) {
		return false // encoded already
	}
	if httplex.HasToken(h["Cache-Control"], "no-transform") {
		return false
	}
	if !cw.c.listedType(h["Content-Type"]) {
		return false
	}
	addVary(h)
	switch code {
	case http.StatusNoContent, http.StatusNotModified, http.StatusPartialContent:
		return false
	}
	if len(h["Content-Range"]) > 0 {
		return false
	}
	if cl := h["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n < cw.c.minSize {
			return false
		}
	}
	return true
}

// listedType reports whether the Content-Type's media type is listed.
func (c *Compressor) listedType(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	mt := ct[0]
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	for _, t := range c.types {
		if strings.EqualFold(mt, t) {
			return true
		}
	}
	return false
}

// addVary adds Accept-Encoding to Vary unless it is there (or "*").
func addVary(h http.Header) {
	for _, v := range h["Vary"] {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "*" || strings.EqualFold(item, "Accept-Encoding") {
				return
			}
		}
	}
	h["Vary"] = append(h["Vary"], "Accept-Encoding")
}

// weakenETag makes a strong ETag weak: the compressed bytes are not the
// ones a strong validator promises (RFC 9110 8.8.3).
func weakenETag(h http.Header) {
	if et := h["Etag"]; len(et) == 1 && strings.HasPrefix(et[0], `"`) {
		h["Etag"] = []string{"W/" + et[0]}
	}
}

func (cw *Writer) startEncoder() {
	switch cw.enc {
	case Gzip:
		cw.gz.Reset(cw.w)
	case Zstd:
		cw.zs.Reset(cw.w)
	}
}

// Write compresses p, or passes it on.
func (cw *Writer) Write(p []byte) (int, error) {
	if cw.state == undecided {
		cw.WriteHeader(http.StatusOK)
	}
	switch {
	case cw.state != compressing:
		return cw.w.Write(p)
	case cw.enc == Gzip:
		return cw.gz.Write(p)
	default:
		return cw.zs.Write(p)
	}
}

// ReadFrom passes a body it does not compress to the writer underneath
// as a reader, so that a file goes out with sendfile.
func (cw *Writer) ReadFrom(r io.Reader) (int64, error) {
	if cw.state == undecided {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.state != compressing {
		if rf, ok := cw.w.(io.ReaderFrom); ok {
			return rf.ReadFrom(r)
		}
	}
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(writerOnly{cw}, readerOnly{r}, buf[:])
}

var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// FlushError writes out what the encoder holds and flushes the writer
// underneath.
func (cw *Writer) FlushError() error {
	if cw.state == undecided {
		cw.WriteHeader(http.StatusOK)
	}
	var err error
	switch {
	case cw.state != compressing:
	case cw.enc == Gzip:
		err = cw.gz.Flush()
	default:
		err = cw.zs.Flush()
	}
	if err != nil {
		return err
	}
	return http.NewResponseController(cw.w).Flush()
}

// Flush implements http.Flusher.
func (cw *Writer) Flush() { cw.FlushError() } //nolint:errcheck // Flusher has no error

// Finish ends the compressed stream and returns the writer to its pool.
// Deferred by the caller, it sees a handler's panic (an aborted response,
// http.ErrAbortHandler): the stream is then left unfinished, so that the
// client sees it broken off rather than complete, and the panic goes on.
func (cw *Writer) Finish() {
	p := recover()
	if cw.state == compressing && p == nil {
		var err error
		if cw.enc == Gzip {
			err = cw.gz.Close()
		} else {
			err = cw.zs.Close()
		}
		_ = err // a broken connection: the server notices on its own
	}
	putWriter(cw)
	<-inFlight
	if p != nil {
		panic(p)
	}
}

// The bounded pools of writers, each with its encoder, by coding.
var (
	gzipWriters = make(chan *Writer, poolSize)
	zstdWriters = make(chan *Writer, poolSize)
)

func getWriter(enc string) *Writer {
	pool := gzipWriters
	if enc == Zstd {
		pool = zstdWriters
	}
	select {
	case cw := <-pool:
		return cw
	default:
	}
	cw := &Writer{enc: enc}
	var err error
	if enc == Gzip {
		cw.gz, err = gzip.NewWriterLevel(nil, GzipLevel)
	} else {
		cw.zs, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow),
			zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true))
	}
	if err != nil {
		panic(errors.New("compress: encoder settings: " + err.Error())) // constant settings: a bug
	}
	return cw
}

func putWriter(cw *Writer) {
	pool := gzipWriters
	if cw.enc == Zstd {
		pool = zstdWriters
		cw.zs.Reset(nil)
	} else {
		cw.gz.Reset(io.Discard)
	}
	cw.w, cw.c, cw.state = nil, nil, undecided
	select {
	case pool <- cw:
	default: // full: let it go
	}
}
