package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/frontend"
	"github.com/webtier/webtier/resolver"
	"github.com/webtier/webtier/resolver/dnsserver"
)

// demo shows the point of webtier on one machine with nothing installed: an
// in-process authoritative DNS server answers for elb.demo.internal with TTL
// 1, two backends listen on two loopback addresses, and the real proxy sends
// a steady stream of requests while the record flips between them, as
// Route53 does when an ELB changes its IPs.
func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	duration := fs.Duration("duration", 20*time.Second, "how long to run")
	flip := fs.Duration("flip", 5*time.Second, "how often the DNS record changes")
	listen := fs.String("listen", "127.0.0.1:0", "proxy listen address")
	if code := parseFlags(fs, args, stdout, stderr); code != proceed {
		return code
	}
	if err := runDemo(*duration, *flip, *listen, stdout); err != nil {
		fmt.Fprintf(stderr, "webtier demo: %v\n", err)
		return 1
	}
	return 0
}

const demoName = "elb.demo.internal"

func runDemo(duration, flip time.Duration, listen string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()

	backends := []struct{ name, ip string }{{"blue", "127.0.0.2"}, {"green", "127.0.0.3"}}
	port := 0
	for _, b := range backends {
		ln, err := net.Listen("tcp", net.JoinHostPort(b.ip, fmt.Sprint(port)))
		if err != nil {
			return fmt.Errorf("starting backend %s on %s (Linux answers on all of 127.0.0.0/8): %w", b.name, b.ip, err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		name := b.name
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, name)
		})}
		go srv.Serve(ln) //nolint:errcheck // closed below
		defer srv.Close()
	}

	dns, err := dnsserver.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting demo DNS server: %w", err)
	}
	defer dns.Close()
	current := 0
	dns.SetA(demoName, 1, netip.MustParseAddr(backends[current].ip))

	res, err := resolver.New(resolver.Options{Nameservers: []string{dns.Addr()}})
	if err != nil {
		return err
	}
	defer res.Close()
	opts := proxy.Options{
		Listeners: []proxy.ListenerOptions{{Name: "demo", Address: listen}},
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "elb"}},
		Upstreams: []proxy.UpstreamOptions{{
			Name:    "elb",
			Targets: []proxy.TargetOptions{{Scheme: "http", Host: demoName, Port: uint16(port), Weight: 1}},
		}},
	}
	srv, err := frontend.NewServer(opts, res, zap.NewNop())
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ctx) }()
	url := "http://" + srv.Addrs()[0].String() + "/"

	fmt.Fprintf(out, "webtier demo: DNS %s answers %s for %s (TTL 1s); backends blue=%s green=%s on port %d\n",
		dns.Addr(), backends[current].ip, demoName, backends[0].ip, backends[1].ip, port)
	fmt.Fprintf(out, "proxy listening on %s; the record flips every %s; running for %s\n\n", url, flip, duration)

	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	flipAt := start.Add(flip)
	var changedAt time.Time
	var total, failed int
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(out, "\n%d requests, %d failed\n", total, failed)
			<-serveDone
			return nil
		case now := <-tick.C:
			if now.After(flipAt) {
				current = 1 - current
				dns.SetA(demoName, 1, netip.MustParseAddr(backends[current].ip))
				changedAt, flipAt = now, now.Add(flip)
				fmt.Fprintf(out, "%6.2fs  dns: %s now answers %s (%s)\n", now.Sub(start).Seconds(),
					demoName, backends[current].ip, backends[current].name)
			}
			total++
			got, err := get(ctx, client, url)
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					continue
				}
				failed++
				fmt.Fprintf(out, "%6.2fs  request failed: %v\n", now.Sub(start).Seconds(), err)
				continue
			}
			note := ""
			if !changedAt.IsZero() && got == backends[current].name {
				note = fmt.Sprintf("   <- followed the DNS change after %.2fs", time.Since(changedAt).Seconds())
				changedAt = time.Time{}
			}
			fmt.Fprintf(out, "%6.2fs  answered by %s%s\n", now.Sub(start).Seconds(), got, note)
		}
	}
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}
