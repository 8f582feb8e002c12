package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"
)

// DefaultBuffer is how many entries wait for the writer before new ones
// are dropped: a few seconds of a busy proxy's lines while the disk
// stalls, in about 2 MiB.
const DefaultBuffer = 8192

// batchMax is how many bytes of lines the writer gathers into one write.
const batchMax = 64 << 10

// Options configure a Writer.
type Options struct {
	// Path is "stdout", "stderr" or a file, opened for appending (created
	// 0640 if missing). Default DefaultPath.
	Path string
	// Stdout and Stderr are what "stdout" and "stderr" write to. Default
	// os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// Buffer is how many entries may wait for the writer. Default
	// DefaultBuffer.
	Buffer int
	// Registerer gets webtier_access_log_dropped_total. Nil: counted, not
	// exported.
	Registerer prometheus.Registerer
	// Log gets write and reopen errors. Nil: none.
	Log *zap.Logger
}

// Writer writes access log lines on a goroutine of its own. Its methods
// are safe for concurrent use.
type Writer struct {
	ch      chan Entry
	ctl     chan func()
	quit    chan struct{}
	done    chan struct{}
	stopped sync.Once

	dropped  atomic.Uint64
	droppedC prometheus.Counter
	log      *zap.Logger
	stdout   io.Writer
	stderr   io.Writer

	// Owned by the writer goroutine.
	path    string
	out     io.Writer
	file    *os.File // out, when path is a file
	buf     []byte
	lines   int       // lines in buf
	lastErr time.Time // when a write error was last logged
}

// New opens o.Path and starts the writer.
func New(o Options) (*Writer, error) {
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	w := &Writer{
		ch:     make(chan Entry, o.Buffer),
		ctl:    make(chan func()),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		log:    o.Log,
		stdout: o.Stdout,
		stderr: o.Stderr,
		buf:    make([]byte, 0, batchMax+4096),
		droppedC: promauto.With(o.Registerer).NewCounter(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "access_log", Name: "dropped_total",
			Help: "Access log lines not written: the writer was behind by the whole buffer, or the write failed.",
		}),
	}
	if err := w.open(o.Path); err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

// Log queues e for writing and never waits: when the buffer is full, the
// line is dropped and counted.
func (w *Writer) Log(e *Entry) {
	select {
	case w.ch <- *e:
	default:
		w.drop(1)
	}
}

// Dropped returns how many lines were not written.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

func (w *Writer) drop(n int) {
	w.dropped.Add(uint64(n))
	w.droppedC.Add(float64(n))
}

// Reopen writes the lines queued so far, then closes the file and opens
// its path again: after logrotate renamed it, new lines go to a new file
// (SIGUSR1, as nginx's USR1 and httpd's graceful restart). Without a
// file, it only flushes.
func (w *Writer) Reopen() error {
	return w.SetPath("")
}

// SetPath writes the lines queued so far and switches to path (a reload
// that changed it). "" reopens the current path. If path cannot be opened,
// lines keep going where they went and the error is returned.
func (w *Writer) SetPath(path string) error {
	errc := make(chan error, 1)
	select {
	case w.ctl <- func() {
		w.drain()
		p := path
		if p == "" {
			p = w.path
		}
		errc <- w.open(p)
	}:
	case <-w.done:
		return errors.New("access log: writer closed")
	}
	return <-errc
}

// Close writes what is queued and closes the file. Lines logged after
// Close are dropped.
func (w *Writer) Close() error {
	w.stopped.Do(func() { close(w.quit) })
	<-w.done
	if w.file != nil {
		return w.file.Close()
	}
	return nil
}

// open switches to path. On failure the current output stays.
func (w *Writer) open(path string) error {
	var out io.Writer
	var f *os.File
	switch path {
	case "stdout":
		out = w.stdout
	case "stderr":
		out = w.stderr
	default:
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		out = f
	}
	if w.file != nil {
		w.file.Close()
	}
	w.path, w.out, w.file = path, out, f
	return nil
}

// gather is how long the writer lets lines queue after the first one
// before it formats and writes them all. Woken for every line, the writer
// cost a goroutine wake-up per request and a write for every few lines
// under load; gathering for a moment makes that at most one wake-up and
// one write (of up to batchMax) per gather, and a line reaches the file
// at most this much later. An idle writer waits for a line: no ticker.
const gather = 5 * time.Millisecond

func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case e := <-w.ch:
			w.add(&e)
			t.Reset(gather)
			select {
			case <-t.C:
			case fn := <-w.ctl: // it drains first
				t.Stop()
				fn()
				continue
			case <-w.quit:
				w.drain()
				return
			}
			w.drain()
		case fn := <-w.ctl:
			fn()
		case <-w.quit:
			w.drain()
			return
		}
	}
}

// drain formats the entries queued now (not those that keep coming, so
// that a busy proxy cannot starve Reopen), writing a batch whenever it is
// full, and writes the rest.
func (w *Writer) drain() {
	for n := len(w.ch); n > 0; n-- {
		e := <-w.ch
		w.add(&e)
	}
	w.flush()
}

func (w *Writer) add(e *Entry) {
	w.buf = AppendLine(w.buf, e)
	w.lines++
	if len(w.buf) >= batchMax {
		w.flush()
	}
}

// flush writes the batch; when the write fails, its lines are counted as
// dropped (a partial write may have left part of them in the file).
func (w *Writer) flush() {
	if w.lines == 0 {
		return
	}
	_, err := w.out.Write(w.buf)
	if err != nil {
		w.drop(w.lines)
		if time.Since(w.lastErr) > time.Minute {
			w.lastErr = time.Now()
			w.log.Error("writing the access log failed; lines are dropped until it works",
				zap.String("path", w.path), zap.Error(err))
		}
	}
	w.buf, w.lines = w.buf[:0], 0
	if cap(w.buf) > 4*batchMax {
		w.buf = make([]byte, 0, batchMax+4096) // one huge line does not stay
	}
}
