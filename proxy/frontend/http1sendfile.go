package frontend

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
)

// ReadFrom sends a body read from r. A file (or a length-limited reader of
// one, which is what http.ServeContent hands io.Copy) in a response with a
// declared Content-Length goes out with sendfile(2) after the head is
// flushed, unless it fits in the writer's buffer with the head; anything
// else is copied through Write with a pooled buffer.
// The declared length bounds what is sent, as for Write.
func (w *fastWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	f, lr := fileOf(r)
	if f == nil || w.raw == nil || w.discard || w.noBody || w.length < 0 || w.chunked || noSendfile {
		return w.copyFrom(r)
	}
	n := w.length - w.written
	if lr != nil && lr.N < n {
		n = lr.N
	}
	if n <= int64(w.bw.Available()) {
		// Small enough to go out with the head in one write: cheaper
		// than a flush and a sendfile.
		return w.copyFrom(r)
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil || n <= 0 {
		return w.copyFrom(r)
	}
	w.sendHead()
	if err := w.bw.Flush(); err != nil {
		return 0, err
	}
	sent, err := w.raw.sendFile(f, off, n)
	w.written += sent
	if lr != nil {
		lr.N -= sent
	}
	if _, serr := f.Seek(off+sent, io.SeekStart); err == nil {
		err = serr
	}
	if errors.Is(err, errors.ErrUnsupported) && sent == 0 {
		return w.copyFrom(r)
	}
	return sent, err
}

// noSendfile makes ReadFrom copy files too: for the benchmark that
// compares the two.
var noSendfile = false

// fileOf returns the file r reads, and the limit around it if any.
func fileOf(r io.Reader) (*os.File, *io.LimitedReader) {
	lr, _ := r.(*io.LimitedReader)
	if lr != nil {
		r = lr.R
	}
	f, _ := r.(*os.File)
	if f == nil {
		return nil, nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, nil
	}
	return f, lr
}

// copyFrom is io.Copy through Write, with a pooled buffer.
func (w *fastWriter) copyFrom(r io.Reader) (int64, error) {
	buf := sendfileCopyBufs.Get().(*[32 << 10]byte)
	defer sendfileCopyBufs.Put(buf)
	return io.CopyBuffer(writeOnly{w}, readOnly{r}, buf[:])
}

var sendfileCopyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// writeOnly and readOnly hide ReadFrom and WriteTo from io.CopyBuffer.
type (
	writeOnly struct{ io.Writer }
	readOnly  struct{ io.Reader }
)
