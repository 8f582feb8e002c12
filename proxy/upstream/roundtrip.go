package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/internal/interrupt"
	"github.com/webtier/webtier/proxy/upstream/ajp"
	"github.com/webtier/webtier/proxy/upstream/h1"
)

// notSentError marks a try that failed before any of the request was sent,
// other than by a failed connect (which is a DialError).
type notSentError struct{ error }

func (e *notSentError) Unwrap() error { return e.error }

// deadConnError marks a try whose connection broke because the backend
// stopped acknowledging (the kernel's TCP_USER_TIMEOUT).
type deadConnError struct{ error }

func (e *deadConnError) Unwrap() error { return e.error }

// errLostRace cancels the slower of two racing connects.
var errLostRace = errors.New("upstream: another address connected first")

// ErrRequestBody is matched (errors.Is) by the error of a request whose
// body could not be read from the client, on any transport: malformed
// chunked encoding, an upload the client cut off or reset, a body read
// timeout or limit of the front server. It is the client's fault, not the
// backend's: it never counts toward suspect, ejection or the 5xx outlier
// count, and the proxy answers it 400 (408, 413) rather than 502. The
// error's text is the cause's.
var ErrRequestBody = errors.New("upstream: request body not readable")

// requestBodyError marks a try that failed reading the request body.
type requestBodyError struct{ error }

func (e *requestBodyError) Unwrap() []error { return []error{ErrRequestBody, e.error} }

// requestBodyFailed reports whether a failed try failed because the
// request body could not be read: the h1 and AJP clients say so in their
// errors; net/http's Transport (https targets) returns the body's error as
// it is, which the try's bodyGuard noted.
func requestBodyFailed(req *http.Request, err error) bool {
	if errors.Is(err, h1.ErrRequestBody) {
		return true
	}
	if ae := (*ajp.Error)(nil); errors.As(err, &ae) && ae.Kind == ajp.KindRequestBody {
		return true
	}
	g, ok := req.Body.(*bodyGuard)
	return ok && g.read.failed.Load()
}

// RoundTrip sends req to the upstream. The address is chosen by the
// balancing algorithm; a try that fails is retried on another address when
// that is provably safe (see retryable), up to RetryTries addresses within
// RetryBudget. The caller owns req (the proxy passes its own outbound copy);
// each try sends a shallow copy addressed to its endpoint.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	var buf [4]*Endpoint
	tried := buf[:0]
	// ReverseProxy sets a nil Body for requests without one (Issue 16036).
	replayable := req.Body == nil || req.Body == http.NoBody
	idempotent := replayable && isIdempotent(req.Method)
	var body *bodyRead
	if !replayable {
		body = &bodyRead{real: req.Body}
	}
	var start time.Time
	var lastErr error
	for {
		e := p.pick(req, tried)
		if e == nil && len(tried) == 0 && p.awaitFirstAnswers(req.Context()) {
			e = p.pick(req, tried)
		}
		if e == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			p.refreshEmpty()
			return nil, fmt.Errorf("%w: upstream %q", ErrNoAddress, p.opts.Name)
		}
		tried = append(tried, e)
		if body != nil {
			// Transports close the request body when a try fails; each try
			// gets its own guard, so the body stays readable for the next.
			req.Body = &bodyGuard{read: body}
		}
		resp, second, err := p.try(req, e, idempotent, tried)
		if second != nil {
			tried = append(tried, second)
		}
		if err == nil {
			if !p.retry503(req, resp, idempotent, tried, start) {
				return resp, nil
			}
			// Another address takes the request (see retry503).
			resp.Body.Close()
			lastErr = fmt.Errorf("upstream: %s answered 503 Service Unavailable", e.addr)
			if start.IsZero() {
				start = p.now()
			}
			p.m.retries.WithLabelValues(p.opts.Name, "status_503").Inc()
			continue
		}
		lastErr = err
		if start.IsZero() {
			start = p.now()
		}
		if len(tried) >= p.opts.RetryTries || req.Context().Err() != nil ||
			p.now().Sub(start) > p.opts.RetryBudget || !p.retryable(err, idempotent, body) {
			return nil, err
		}
		if u := unsentBody(err); body != nil && len(u) > 0 {
			// The next try reads first what the failed one read and
			// never sent.
			body.prefix = u
			body.n.Store(0)
		}
		p.m.retries.WithLabelValues(p.opts.Name, retryReason(err)).Inc()
	}
}

// unsentBody returns the request body bytes a failed try read but never
// sent (the AJP client's ajp.Error.Unsent), or nil.
func unsentBody(err error) []byte {
	if ae := (*ajp.Error)(nil); errors.As(err, &ae) {
		return ae.Unsent
	}
	return nil
}

// retry503 reports whether a 503 answer is to be dropped and the request
// sent to another address: only for an idempotent request without a body,
// with RetryIdempotent, within RetryTries and RetryBudget, and only when
// another address would take it (else the client gets the 503). A 503 is
// a backend saying it cannot serve now (RFC 9110 15.6.4); Tomcat answers
// it to requests that reach it while it shuts down, between pausing its
// connectors and stopping its applications. HAProxy's "retry-on 503" and
// nginx's "proxy_next_upstream http_503" do the same, as options.
func (p *Pool) retry503(req *http.Request, resp *http.Response, idempotent bool, tried []*Endpoint, start time.Time) bool {
	return resp.StatusCode == http.StatusServiceUnavailable && idempotent && p.opts.RetryIdempotent &&
		len(tried) < p.opts.RetryTries && req.Context().Err() == nil &&
		(start.IsZero() || p.now().Sub(start) <= p.opts.RetryBudget) &&
		p.pick(req, tried) != nil
}

// retryable reports whether a failed try may be sent to another address:
//   - a connect failure: nothing was sent;
//   - a rescued try: only idempotent requests without a body are tracked
//     for rescue, and their connection is closed before the retry;
//   - any other failure before the response, only for idempotent requests
//     without a body and only with RetryIdempotent.
//
// A non-idempotent request whose bytes may have reached a backend is never
// retried. (A pooled connection found dead before anything was written is
// retried by the transport itself (upstream/h1, net/http, upstream/ajp) on a
// fresh connection to the same address.)
func (p *Pool) retryable(err error, idempotent bool, body *bodyRead) bool {
	var de *DialError
	switch {
	case errors.As(err, &de), errors.As(err, new(*notSentError)):
		// Nothing was sent; a body is resent only if no try read from it
		// (the AJP client reads the first body packet only once it has a
		// connection that answered CPING), or if the try gave back all it
		// read (ajp.Error.Unsent; see RoundTrip).
		return body == nil || body.n.Load() == 0 || body.n.Load() == int64(len(unsentBody(err)))
	case errors.Is(err, errRescued):
		return true
	case errors.As(err, new(*deadConnError)):
		// Like a rescue: the address stopped acknowledging while the
		// request waited, and only idempotent requests are re-sent.
		return idempotent
	default:
		return idempotent && p.opts.RetryIdempotent
	}
}

// bodyRead is a request body shared by the tries of one request; n counts
// the bytes read from it, so that a body partly consumed by a failed try is
// never resent.
type bodyRead struct {
	real io.ReadCloser
	// prefix is read before real: bytes a failed try read from real and
	// handed back unsent (see unsentBody). Tries are sequential for a
	// request with a body, so one reader at a time.
	prefix []byte
	n      atomic.Int64
	failed atomic.Bool // a read from real returned an error other than io.EOF
}

// bodyGuard is the body as one try's transport sees it. Close stops this
// try's reads (a transport closes the body to abort writing it) without
// closing the real body, which the proxy closes when the request is done.
type bodyGuard struct {
	read   *bodyRead
	closed atomic.Bool
}

var errBodyTryClosed = errors.New("upstream: request body read after its try ended")

func (b *bodyGuard) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyTryClosed
	}
	if len(b.read.prefix) > 0 {
		n := copy(p, b.read.prefix)
		b.read.prefix = b.read.prefix[n:]
		b.read.n.Add(int64(n))
		return n, nil
	}
	n, err := b.read.real.Read(p)
	b.read.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.read.failed.Store(true)
	}
	return n, err
}

func (b *bodyGuard) Close() error {
	b.closed.Store(true)
	return nil
}

// retryReason names why a failed try is retried, for the retries metric.
func retryReason(err error) string {
	switch {
	case errors.As(err, new(*DialError)), errors.As(err, new(*notSentError)):
		return "connect"
	case errors.Is(err, errRescued):
		return "rescued"
	case errors.As(err, new(*deadConnError)):
		return "dead_connection"
	}
	return "idempotent"
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// try sends req to e. For an idempotent request with a second eligible
// address it races connects (RFC 8305 style): if e has not given a
// connection after RaceDelay, a try on another address starts, and the
// first to get a connection sends the request; the other is cancelled
// (its dial goes on in the background and pools the connection or counts
// the failure). second is the other address when a second try started, so
// that the caller counts it as tried. (It is returned rather than appended
// through a pointer, which would move RoundTrip's tried array to the heap.)
func (p *Pool) try(req *http.Request, e *Endpoint, idempotent bool, tried []*Endpoint) (_ *http.Response, second *Endpoint, _ error) {
	if !idempotent || p.opts.RaceDelay < 0 || len(p.active.Load().eps) < 2 || e.hasIdle() {
		// A request that will find a pooled connection does not connect:
		// nothing to race, and no timer and contexts to pay for.
		resp, err := p.send(req, e, idempotent, nil)
		return resp, nil, err
	}
	r := &race{p: p, req: req, exclude: append([]*Endpoint(nil), tried...)}
	timer := time.AfterFunc(p.opts.RaceDelay, r.startSecond)
	resp, err := p.send(req, e, true, r)
	timer.Stop()
	r.mu.Lock()
	r.stopped = true
	second, secondDone := r.second, r.secondDone
	r.mu.Unlock()
	if second == nil {
		return resp, nil, err
	}
	if err == nil {
		// e won: stop the second try and discard whatever it returns.
		r.cancelSecond(errLostRace)
		go func() {
			if res := <-secondDone; res.resp != nil {
				res.resp.Body.Close()
			}
		}()
		return resp, second, nil
	}
	res := <-secondDone
	switch {
	case res.err == nil:
		return res.resp, second, nil
	case errors.Is(err, errLostRace):
		return nil, second, res.err
	}
	return nil, second, err
}

// race coordinates two connect attempts for one request.
type race struct {
	p       *Pool
	req     *http.Request
	exclude []*Endpoint

	mu           sync.Mutex // guards the fields below
	winner       *Endpoint
	stopped      bool
	second       *Endpoint
	secondDone   chan result
	cancelSecond context.CancelCauseFunc
	cancelFirst  context.CancelCauseFunc
}

type result struct {
	resp *http.Response
	err  error
}

// attach records the cancel function of the try on e, so that the other
// try's win can stop it while it still waits for a connection.
func (r *race) attach(e *Endpoint, cancel context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.winner != nil && r.winner != e {
		cancel(errLostRace)
		return
	}
	if r.second != e {
		r.cancelFirst = cancel
	}
}

// claim is called when e got a connection; it reports whether e is first,
// and cancels the other try when it is.
func (r *race) claim(e *Endpoint) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.winner == nil {
		r.winner = e
		switch {
		case e == r.second && r.cancelFirst != nil:
			r.cancelFirst(errLostRace)
		case e != r.second && r.cancelSecond != nil:
			r.cancelSecond(errLostRace)
		}
	}
	return r.winner == e
}

// startSecond runs when the first try has not connected after RaceDelay.
func (r *race) startSecond() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.winner != nil {
		return
	}
	e := r.p.pick(r.req, r.exclude)
	if e == nil {
		return
	}
	ctx, cancel := context.WithCancelCause(r.req.Context())
	r.second, r.cancelSecond, r.secondDone = e, cancel, make(chan result, 1)
	done := r.secondDone
	go func() {
		resp, err := r.p.send(r.req.WithContext(ctx), e, true, r)
		done <- result{resp, err}
	}()
}

// awaitFirstAnswers waits, for a request that found no address, until
// every named target has had its first DNS answer, for at most
// ConnectTimeout (the time the request would have spent connecting) or
// until ctx ends. It reports whether the answers came while it waited: a
// request that arrives while webtier is still resolving at start-up is
// served rather than answered 502. Once every target has answered, it
// returns false at once.
func (p *Pool) awaitFirstAnswers(ctx context.Context) bool {
	select {
	case <-p.answered:
		return false
	default:
	}
	if p.testHookAwait != nil {
		p.testHookAwait()
	}
	t := time.NewTimer(p.opts.ConnectTimeout)
	defer t.Stop()
	select {
	case <-p.answered:
	case <-t.C: // some targets may have answered: look again all the same
	case <-ctx.Done():
		return false
	}
	return true
}

// send makes one try of req on e. Idempotent tries are tracked while they
// wait for response headers, so that ejecting e can rescue them.
//
// The outbound URL, the rescue registration, the response body wrapper and
// the outbound request (a shallow copy of req) of a try share one
// allocation (tryState): a try to an HTTP backend allocates one object
// here. A try with a context of its own (racing, or rescue through a
// cancel) also has the copy WithContext makes, and the context's.
func (p *Pool) send(req *http.Request, e *Endpoint, idempotent bool, r *race) (*http.Response, error) {
	ts := &tryState{url: *req.URL}
	ts.url.Scheme, ts.url.Host = e.scheme, e.hostport
	ctx := req.Context()
	if e.scheme == "ajp" && e.target.Route != "" {
		// Tomcat's jvmRoute of this target, as mod_jk sends it.
		ctx = ajp.WithRoute(ctx, e.target.Route)
	}
	var a *attempt
	var cancel context.CancelCauseFunc
	it := e.intrT
	if idempotent && p.opts.RescueGrace >= 0 && r == nil && it != nil {
		// Rescue only: the h1 and AJP clients can be interrupted without
		// a context of the try's own (see package interrupt).
		a = &ts.att
		a.start = p.now()
		a.watched = true
		e.track(a)
	} else if idempotent && (p.opts.RescueGrace >= 0 || r != nil) {
		ctx, cancel = context.WithCancelCause(ctx)
		if r != nil {
			r.attach(e, cancel)
		}
		if p.opts.RescueGrace >= 0 {
			a = &ts.att
			a.cancel, a.start = cancel, p.now()
			// The stall watch looks at the connection GotConn names
			// (net/http's Transport: engine std, https://) and ends
			// the try by its context.
			a.watched = true
		}
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				if r != nil && !r.claim(e) {
					cancel(errLostRace)
					return
				}
				if a != nil {
					a.intr.Attach(connStaller{info.Conn})
				}
			},
		})
		if a != nil {
			e.track(a)
		}
	}
	var out *http.Request
	if ctx != req.Context() {
		out = req.WithContext(ctx) // a shallow copy
	} else {
		out = &ts.req
		*out = *req
	}
	out.URL = &ts.url
	if p.opts.HostHeader != "" {
		out.Host = p.opts.HostHeader
	}
	var tm *Timing
	var t0 time.Time
	if p.opts.Timing {
		if tm = timingFrom(ctx); tm != nil {
			t0 = time.Now()
			tm.endpoint.Store(e)
		}
	}
	e.inflight.Add(1)
	e.total.Add(1)
	var resp *http.Response
	var err error
	if a != nil && a.cancel == nil {
		resp, err = it.RoundTripInterruptible(out, &a.intr)
	} else {
		resp, err = e.transport.RoundTrip(out)
	}
	if a != nil {
		e.untrack(a)
	}
	if err != nil {
		e.done()
		if a != nil && a.cancel == nil {
			if cause := a.intr.Cause(); (cause == errRescued || cause == errStalled) && !errors.Is(err, cause) {
				err = fmt.Errorf("%w: %w", cause, err)
			}
		}
		if cancel != nil {
			if cause := context.Cause(out.Context()); (cause == errRescued || cause == errLostRace || cause == errStalled) && !errors.Is(err, cause) {
				err = fmt.Errorf("%w: %w", cause, err)
			}
			cancel(nil)
		}
		return nil, p.tryFailed(req, e, err)
	}
	if tm != nil {
		tm.endpoint.Store(e) // the winner, when two raced
		tm.header.Store(nanosSince(t0))
	}
	if resp.StatusCode >= 500 {
		p.gatewayFailure(e, fmt.Sprintf("answered %d", resp.StatusCode))
	} else {
		e.succeeded()
	}
	if e.fails.Load() != 0 && e.State() == StateRunning {
		e.fails.Store(0)
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A 101 Switching Protocols body must stay writable for the
		// proxy's upgrade copier.
		resp.Body = &trackedRWBody{ReadWriteCloser: rwc, t: tracked{e: e, cancel: cancel}}
	} else {
		ts.body.ReadCloser, ts.body.t.e, ts.body.t.cancel = resp.Body, e, cancel
		resp.Body = &ts.body
	}
	return resp, nil
}

// tryFailed classifies a failed try of req on e, counts it against e when
// it says something about the backend, and returns the error RoundTrip
// decides the retry by (see retryable).
func (p *Pool) tryFailed(req *http.Request, e *Endpoint, err error) error {
	var de *DialError
	var ae *ajp.Error
	switch {
	case requestBodyFailed(req, err):
		// The client's fault (issue 15: twelve POSTs with a malformed
		// chunked body ejected a healthy address): nothing about the
		// backend, and the proxy answers it as the client's.
		err = &requestBodyError{err}
	case errors.As(err, &de), errors.Is(err, errLostRace), errors.Is(err, errRescued), req.Context().Err() != nil:
	case errors.Is(err, ajp.ErrUpgrade), errors.Is(err, h1.ErrInvalidRequest), errors.Is(err, errInvalidRequest),
		errors.As(err, &ae) && ae.Kind == ajp.KindHeadersTooLarge:
		// The request's own fault, or webtier's own limit: it says
		// nothing about the backend.
	case errors.As(err, new(*CertificateError)), isCertificateFailure(err), refusedClientCert(e, err):
		// A wrong certificate is no dead address (see CertificateError):
		// not counted. Under TLS 1.3 a backend refuses webtier's
		// certificate (or its absence) after the handshake, before it
		// reads a request: its alert, or the end of the connection,
		// comes as the answer.
		notSent := !refusedClientCert(e, err) // a broken write may have sent part of a request
		if !errors.As(err, new(*CertificateError)) {
			err = &CertificateError{Addr: e.addr, Err: err}
		}
		p.log.Error("TLS handshake with backend failed: certificate not accepted; not ejected, check tls.ca_file, tls.server_name, tls.cert_file and the backend's certificate",
			zap.String("target", e.target.Host), zap.Stringer("address", e.addr), zap.Error(err))
		if notSent {
			err = &notSentError{err}
		}
	case errors.As(err, &ae) && ae.Kind == ajp.KindCPing:
		// Tomcat accepted the connection but its AJP connector did not
		// answer CPING: nothing was sent, and the address is as unusable
		// as one that refuses connects.
		if p.res != nil && !e.target.isLiteral {
			p.res.RefreshNow(e.target.Host)
		}
		p.failure(e, p.opts.FailuresToEject, "no answer to AJP CPING: "+err.Error())
		err = &notSentError{err}
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, errStalled):
		// The backend stopped acknowledging: the kernel gave up
		// (TCP_USER_TIMEOUT), or the stall watch saw the request
		// left unacknowledged through a retransmission. The address is
		// as dead as one that refuses connects.
		if p.res != nil && !e.target.isLiteral {
			p.res.RefreshNow(e.target.Host)
		}
		reason := "connection timed out: " + err.Error()
		if errors.Is(err, errStalled) {
			reason = "backend stopped acknowledging a request"
		}
		p.failure(e, p.opts.FailuresToEject, reason)
		err = &deadConnError{err}
	case p.opts.MaxRouteTimeout > 0 && isHeaderTimeout(err) && routeTimed(req):
		// The route's own timeout (its `timeout`) expired: an
		// expectation of that route's requests, which says nothing of
		// the address's health. Not counted, and answered 504.
	default:
		p.gatewayFailure(e, "request failed: "+err.Error())
	}
	return err
}

// isHeaderTimeout reports whether err is a client's response header
// timeout (after the cases of tryFailed that come first: a dial error,
// ETIMEDOUT).
func isHeaderTimeout(err error) bool {
	if ae := (*ajp.Error)(nil); errors.As(err, &ae) {
		return ae.Kind == ajp.KindTimeout
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// routeTimed reports whether req carries a route's timeout.
func routeTimed(req *http.Request) bool {
	_, route := backendconn.HeaderTimeout(req.Context(), 0)
	return route
}

// interruptible is a backend client whose requests an interrupt.Interrupt
// can end (h1 and AJP).
type interruptible interface {
	RoundTripInterruptible(*http.Request, *interrupt.Interrupt) (*http.Response, error)
}

var (
	_ interruptible = (*h1.Transport)(nil)
	_ interruptible = (*ajp.Transport)(nil)
)

// tryState is what one try allocates: the outbound URL (the request's,
// addressed to the endpoint), its rescue registration, and the wrapper of
// the response body. They live and die together: the URL stays reachable
// through resp.Request until the proxy drops the response.
type tryState struct {
	url  url.URL
	att  attempt
	body trackedBody
	req  http.Request // the outbound request when the try has no context of its own
}

// tracked counts the request as in flight until the proxy closes the
// response body, and then releases the try's context.
type tracked struct {
	e      *Endpoint
	cancel context.CancelCauseFunc
	once   atomic.Bool
}

func (t *tracked) close() {
	if t.once.CompareAndSwap(false, true) {
		t.e.done()
		if t.cancel != nil {
			t.cancel(nil)
		}
	}
}

type trackedBody struct {
	io.ReadCloser
	t tracked
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.t.close()
	return err
}

type trackedRWBody struct {
	io.ReadWriteCloser
	t tracked
}

func (b *trackedRWBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.t.close()
	return err
}
