package proxytest

import (
	"bytes"
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// OpenIdle connects to 127.0.0.1:port from 127.0.0.(2+i%100), completes
// one "GET /100" on the connection and returns its descriptor, open and
// idle. The socket is a raw one, outside Go's poller: a memory or CPU
// measurement of idle connections then sees the server's cost, not the
// client's, even in one process; and the spread of source addresses lets
// tens of thousands connect without running out of ports. The caller
// closes it with syscall.Close.
func OpenIdle(port, i int) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			syscall.Close(fd)
		}
	}()
	// The port is picked at connect, for the whole address pair: bound
	// sockets would hold ports that the server's own connects to its
	// backends (from 127.0.0.1) then could not use.
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, ipBindAddressNoPort, 1); err != nil {
		return -1, fmt.Errorf("IP_BIND_ADDRESS_NO_PORT: %w", err)
	}
	src := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, byte(2 + i%100)}}
	if err := syscall.Bind(fd, src); err != nil {
		return -1, fmt.Errorf("bind: %w", err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		return -1, fmt.Errorf("connect: %w", err)
	}
	req := []byte("GET /100 HTTP/1.1\r\nHost: idle\r\nUser-Agent: webtier-idle-measurement\r\n\r\n")
	if _, err := syscall.Write(fd, req); err != nil {
		return -1, fmt.Errorf("write: %w", err)
	}
	var resp []byte
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return -1, fmt.Errorf("read response: %v (got %q)", err, resp)
		}
		resp = append(resp, buf[:n]...)
		head, body, found := bytes.Cut(resp, []byte("\r\n\r\n"))
		if !found {
			continue
		}
		cl := -1
		for _, line := range strings.Split(string(head), "\r\n") {
			if k, v, kv := strings.Cut(line, ":"); kv && strings.EqualFold(k, "Content-Length") {
				cl, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if cl < 0 {
			return -1, fmt.Errorf("no Content-Length in %q", head)
		}
		if len(body) >= cl {
			ok = true
			return fd, nil
		}
	}
}

const ipBindAddressNoPort = 24 // linux/in.h

// OpenIdleN opens n connections with OpenIdle, 32 at a time. On an error
// it closes those it opened.
func OpenIdleN(port, n int) ([]int, error) {
	fds := make([]int, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fds[i], errs[i] = OpenIdle(port, i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed > 0 {
		CloseAll(fds)
		return nil, fmt.Errorf("%d of %d connections failed, first: %w", failed, n, first)
	}
	return fds, nil
}

// CloseAll closes the descriptors OpenIdleN returned.
func CloseAll(fds []int) {
	for _, fd := range fds {
		if fd > 0 {
			syscall.Close(fd)
		}
	}
}

// RaiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns it.
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, nil
}
