package peer_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// Inside its namespace the test sees a private loopback: Blackhole makes a
// backend's connects time out and its established connections hang,
// removing it restores both, and Reject refuses connects at once.
func TestInNetns_faults(t *testing.T) {
	if !peer.InNetns(t) {
		return
	}
	b := peer.StartBackend(t, "127.0.0.3", "b")

	// An established keep-alive connection, used once before the fault.
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() error {
		conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	if err := get(); err != nil {
		t.Fatalf("GET before the fault: %v", err)
	}

	remove := peer.Blackhole(t, b.IP(), b.Port())
	var ne net.Error
	if err := get(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("GET on an established connection while black-holed: %v; want a timeout", err)
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("dial %s while black-holed succeeded; want a timeout", b.Addr())
	} else if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial %s while black-holed: %v; want a timeout", b.Addr(), err)
	}
	remove()
	c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
	if err != nil {
		t.Fatalf("dial %s after removing the black hole: %v", b.Addr(), err)
	}
	c.Close()

	defer peer.Reject(t, b.IP(), b.Port())()
	start := time.Now()
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("dial %s while rejected succeeded; want refused", b.Addr())
	} else if time.Since(start) > 500*time.Millisecond {
		t.Errorf("dial %s while rejected took %v (%v); want refused at once", b.Addr(), time.Since(start), err)
	}
}
