// Package errpage is a route's error pages (httpd's ErrorDocument):
// webtier's own 404, 502, 503 and 504, and optionally a backend's 5xx,
// answered from a file read at load, with the request id in it.
package errpage

import (
	"bytes"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
)

// Statuses are the statuses a page may be given for.
var Statuses = []int{404, 502, 503, 504}

// Page is one error page as loaded: its file's content and type.
type Page struct {
	// File names the page in logs and errors.
	File string
	// Body is the file's content; "{request_id}" in it is replaced.
	Body []byte
	// ContentType is from the file's extension (text/html for .html).
	ContentType string
}

// NewPage returns the page for file's content body.
func NewPage(file string, body []byte) Page {
	ct := mime.TypeByExtension(filepath.Ext(file))
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	return Page{File: file, Body: body, ContentType: ct}
}

// Pages are the pages of one route as served on one listener.
type Pages struct {
	pages map[int]compiled
	// Backend: a backend's 5xx body is replaced too.
	Backend bool
}

type compiled struct {
	parts [][]byte // the body split at {request_id}
	ct    string
	size  int // of the parts together
}

// New returns the pages of layers (later ones win for the same status),
// or nil when there are none.
func New(backend bool, layers ...map[int]Page) *Pages {
	p := &Pages{pages: map[int]compiled{}, Backend: backend}
	for _, l := range layers {
		for status, pg := range l {
			parts := bytes.Split(pg.Body, []byte("{request_id}"))
			c := compiled{parts: parts, ct: pg.ContentType}
			for _, x := range parts {
				c.size += len(x)
			}
			p.pages[status] = c
		}
	}
	if len(p.pages) == 0 {
		return nil
	}
	return p
}

// Has reports whether there is a page for status.
func (p *Pages) Has(status int) bool {
	if p == nil {
		return false
	}
	_, ok := p.pages[status]
	return ok
}

// Write answers status with its page, requestID in place of
// {request_id}, and reports whether there was one. The header fields w
// already has are kept; Content-Type and Content-Length are the page's.
func (p *Pages) Write(w http.ResponseWriter, status int, requestID string) bool {
	if p == nil {
		return false
	}
	c, ok := p.pages[status]
	if !ok {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", c.ct)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(c.size+(len(c.parts)-1)*len(requestID)))
	w.WriteHeader(status)
	for i, part := range c.parts {
		if i > 0 {
			w.Write([]byte(requestID)) //nolint:errcheck // the client went away; nothing to do
		}
		w.Write(part) //nolint:errcheck
	}
	return true
}
