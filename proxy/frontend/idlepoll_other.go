//go:build !linux

package frontend

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// idlePoller needs epoll; elsewhere plain-HTTP listeners use net/http's
// server (newFastServer fails and Server falls back).
type idlePoller struct{}

var errNoIdlePoller = errors.New("proxy: the fast HTTP/1 path needs Linux epoll")

func newIdlePoller(func(*fastConn)) (*idlePoller, error) { return nil, errNoIdlePoller }
func (p *idlePoller) run()                               {}
func (p *idlePoller) add(*fastConn) error                { return errNoIdlePoller }
func (p *idlePoller) remove(*fastConn)                   {}
func (p *idlePoller) unregister(*fastConn)               {}
func (p *idlePoller) close() error                       { return nil }

func connFD(syscall.RawConn) (int, error) { return -1, errNoIdlePoller }

var errNotReady = errors.New("proxy: no request yet")

type rawReader struct{}

func (*rawReader) read(syscall.RawConn, []byte) (int, error) { return 0, errNoIdlePoller }

type rawWriter struct{}

func (*rawWriter) reset(net.Conn, syscall.RawConn, time.Duration) {}
func (*rawWriter) Write([]byte) (int, error)                      { return 0, errNoIdlePoller }
func (*rawWriter) disarm() bool                                   { return true }
