//go:build unix

package static

import (
	"os"
	"syscall"
)

// openFlags open without blocking on a FIFO (which Stat then refuses).
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
