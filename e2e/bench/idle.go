package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// idleResult is the idle keep-alive connection measurement of one target.
type idleResult struct {
	held           int    // connections open and still alive when measured
	closedByServer int    // connections the server had closed by then
	rssBefore      uint64 // KiB
	rssAfter       uint64
	pssBefore      uint64
	pssAfter       uint64
	err            error
}

func (r idleResult) rssPerConnKiB() float64 {
	if r.held == 0 {
		return 0
	}
	return (float64(r.rssAfter) - float64(r.rssBefore)) / float64(r.held)
}

func (r idleResult) pssPerConnKiB() float64 {
	if r.held == 0 {
		return 0
	}
	return (float64(r.pssAfter) - float64(r.pssBefore)) / float64(r.held)
}

// idleDialers is how many connections are being set up at once.
const idleDialers = 32

// measureIdle opens n keep-alive connections to addr, each completing one
// GET of path (so the server holds a real idle HTTP/1.1 connection, past
// its first request), measures the RSS/PSS of the server's process tree
// before and after, then closes them all.
func measureIdle(ctx context.Context, rootPID int, addr, path string, n int) idleResult {
	var res idleResult
	time.Sleep(300 * time.Millisecond)
	before, err := sampleTree(rootPID)
	if err != nil {
		res.err = err
		return res
	}
	res.rssBefore, res.pssBefore = before.rssKiB, before.pssKiB

	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < idleDialers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conns[i], errs[i] = openIdle(addr, path)
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second) // bound for the whole set-up
feed:
	for i := 0; i < n; i++ {
		if ctx.Err() != nil || time.Now().After(deadline) {
			for j := i; j < n; j++ {
				errs[j] = errors.New("not attempted (time bound or interrupted)")
			}
			break feed
		}
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		time.Sleep(300 * time.Millisecond) // let the server notice
	}()

	var firstErr error
	failed := 0
	for _, e := range errs {
		if e != nil {
			failed++
			if firstErr == nil {
				firstErr = e
			}
		}
	}
	if failed > 0 {
		res.err = fmt.Errorf("%d of %d connections failed, first: %v", failed, n, firstErr)
		return res
	}
	// Let lazily freed buffers settle, as the at-scale step does: the
	// memory a burst of connections leaves behind is the process's until
	// it frees it (C peers at once; webtier within about 1.3 s of the
	// burst, cmd/webtier/procs.go), and this is the memory of the idle
	// connections.
	time.Sleep(scaleSettle)
	after, err := sampleTree(rootPID)
	if err != nil {
		res.err = err
		return res
	}
	res.rssAfter, res.pssAfter = after.rssKiB, after.pssKiB
	for _, c := range conns {
		if alive(c) {
			res.held++
		} else {
			res.closedByServer++
		}
	}
	return res
}

// openIdle dials addr and completes one keep-alive request on it.
func openIdle(addr, path string) (net.Conn, error) { return openIdleFrom(nil, addr, path) }

// openIdleFrom is openIdle from the source address local (nil: any).
func openIdleFrom(local *net.TCPAddr, addr, path string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: webtier-bench-idle\r\n\r\n", path, addr); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		c.Close()
		return nil, fmt.Errorf("status %d, close=%v", resp.StatusCode, resp.Close)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// alive reports whether the server still holds c open: a non-blocking
// MSG_PEEK returns EAGAIN for an open idle connection, 0 bytes at EOF.
func alive(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	buf := make([]byte, 1)
	_ = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = errors.Is(err, syscall.EAGAIN) // EOF: n == 0, err == nil
		return true
	})
	return open
}
