package frontend

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendFile sends n bytes of f from offset off to the client with
// sendfile(2): the kernel copies the page cache to the socket, and the
// bytes never enter the process. The write timeout holds as for Write
// (from the last progress). It returns the bytes sent; fewer than n with
// a nil error when the file ended first.
func (w *rawWriter) sendFile(f *os.File, off, n int64) (int64, error) {
	fc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	if err := w.rearm(); err != nil {
		return 0, err
	}
	var sent int64
	var ferr error
	cerr := fc.Control(func(infd uintptr) {
		rerr := w.rc.Write(func(fd uintptr) bool {
			for sent < n {
				chunk := min(n-sent, 1<<30)
				m, err := unix.Sendfile(int(fd), int(infd), &off, int(chunk))
				if m > 0 {
					sent += int64(m)
					w.progress = true
				}
				switch {
				case err == syscall.EINTR:
				case err == syscall.EAGAIN:
					if w.wait() {
						ferr = w.err
						w.err = nil
						return true
					}
					return false
				case err != nil:
					ferr = os.NewSyscallError("sendfile", err)
					return true
				case m == 0:
					return true // the file is shorter than it was
				}
			}
			return true
		})
		if ferr == nil {
			ferr = rerr
		}
	})
	if ferr == nil {
		ferr = cerr
	}
	w.timedOut(ferr)
	return sent, ferr
}
