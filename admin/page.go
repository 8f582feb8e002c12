package admin

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
)

// static holds the status page: HTML, one script and one style sheet, all
// served from the binary (no external assets, so the page works on a host
// without internet access and the CSP can say 'self').
//
//go:embed static
var static embed.FS

// tokenMark is where index.html takes the page token.
var tokenMark = []byte("{{TOKEN}}")

// renderPage returns index.html with the page token in its meta tag.
func renderPage(token string) ([]byte, error) {
	b, err := static.ReadFile("static/index.html")
	if err != nil {
		return nil, fmt.Errorf("admin: status page: %w", err)
	}
	if !bytes.Contains(b, tokenMark) {
		return nil, fmt.Errorf("admin: status page has no %s mark", tokenMark)
	}
	return bytes.ReplaceAll(b, tokenMark, []byte(token)), nil
}

// staticHandler serves /static/app.js and /static/style.css. The token is
// only in index.html, so these may be cached like any file; they are
// revalidated so that an upgraded webtier's page is never mixed with an
// old script.
func staticHandler() http.Handler {
	sub, _ := fs.Sub(static, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/static/index.html" || r.URL.Path == "/static/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
