//go:build !linux

package frontend

import "syscall"

// deferAccept does nothing where TCP_DEFER_ACCEPT does not exist.
func deferAccept(_, _ string, _ syscall.RawConn) error { return nil }
