package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// defaultHealthURL is what `webtier health` asks without -url: the health
// endpoint (a listener's default health path) on the port the container
// image's example config listens on (deploy/webtier.yaml).
const defaultHealthURL = "http://127.0.0.1:8080/health_check.html"

// health asks webtier's own health endpoint and exits 0 when it answers
// 2xx, 1 otherwise, with one line saying why. It is the Docker HEALTHCHECK:
// the image has no shell, curl or wget, only this binary.
func health(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	url := fs.String("url", defaultHealthURL, "the health endpoint to ask")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long (connect, send and read the answer)")
	if code := parseFlags(fs, args, stdout, stderr); code != proceed {
		return code
	}
	if fs.NArg() > 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "usage: webtier health [-url URL] [-timeout D]; D must be positive")
		return 2
	}
	status, err := checkHealth(context.Background(), *url, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "webtier health: %s: %v\n", *url, err)
		return 1
	}
	if status/100 != 2 {
		fmt.Fprintf(stderr, "webtier health: %s: answered %s; want 2xx (503 while draining or in standby)\n", *url, status)
		return 1
	}
	fmt.Fprintf(stdout, "webtier health: %s: %s\n", *url, status)
	return 0
}

// healthStatus is a status code that prints with its text.
type healthStatus int

func (s healthStatus) String() string { return fmt.Sprintf("%d %s", int(s), http.StatusText(int(s))) }

// checkHealth GETs url once and returns the status. It follows no redirect
// (a health endpoint that moved is a wrong -url), uses no proxy from the
// environment (HTTP_PROXY is for the outside, the endpoint is local), keeps
// no connection and reads at most 4 KiB of the body.
func checkHealth(ctx context.Context, url string, timeout time.Duration) (healthStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "webtier-health/"+versionString())
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) //nolint:errcheck // the status is the answer
	return healthStatus(resp.StatusCode), nil
}
