// Package static serves a route from a directory: httpd's DocumentRoot
// and Alias. Content-Type comes from the file's extension; validators,
// conditional requests and ranges are net/http's ServeContent. What this
// package owns is which file a request may reach: only regular files under
// the root, reached by a path whose every segment is a plain name, opened
// relative to the root with os.Root (openat, no-follow resolution) so that
// neither "..", an encoded separator nor a symbolic link, even one swapped
// in while the request is served, leads out of it.
package static

import (
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/webtier/webtier/proxy/compress"
)

// Handler serves one static route.
type Handler struct {
	root          string
	prefix        string // the route's path prefix, cut off the request path
	index         []string
	dotfiles      bool
	follow        bool
	precompressed bool
}

// New returns the handler of a route whose path prefix is prefix.
func New(o Options, prefix string) *Handler {
	idx := o.Index
	if idx == nil {
		idx = DefaultIndex
	}
	if prefix == "" {
		prefix = "/"
	}
	return &Handler{root: o.Root, prefix: prefix, index: idx, dotfiles: o.Dotfiles,
		follow: o.FollowSymlinks, precompressed: o.Precompressed}
}

// siblings are the precompressed files tried, in order of preference when
// the client's q-values tie, with their Content-Encoding.
var (
	siblingEncodings = []string{compress.Zstd, "br", compress.Gzip}
	siblingExt       = map[string]string{compress.Zstd: ".zst", "br": ".br", compress.Gzip: ".gz"}
)

// ServeHTTP answers GET and HEAD from the file the path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		answer(w, http.StatusMethodNotAllowed, "405 Method Not Allowed: static files answer GET and HEAD only")
		return
	}
	rel, status := h.relPath(r)
	if status != 0 {
		if status == http.StatusBadRequest {
			answer(w, status, "400 Bad Request: the path has an encoded \"/\" or \"\\\", a backslash, a NUL or a dot segment")
		} else {
			notFound(w)
		}
		return
	}
	f, fi, err := h.open(rel)
	if err != nil {
		notFound(w)
		return
	}
	name := path.Base("/" + rel)
	if fi.IsDir() {
		f.Close()
		if !strings.HasSuffix(r.URL.Path, "/") {
			h.redirectToDir(w, r)
			return
		}
		f, fi, name = h.openIndex(rel)
		if f == nil {
			notFound(w)
			return
		}
	} else if strings.HasSuffix(r.URL.Path, "/") {
		f.Close()
		notFound(w) // "file.html/" names no directory
		return
	}
	defer func() { f.Close() }()

	hdr := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hdr.Set("Content-Type", ctype)
	etagSuffix := ""
	if h.precompressed {
		hdr.Add("Vary", "Accept-Encoding")
		if ae := r.Header["Accept-Encoding"]; len(ae) > 0 {
			if zf, zfi, enc := h.openSibling(rel, name, fi, ae); zf != nil {
				f.Close()
				f, fi = zf, zfi
				hdr.Set("Content-Encoding", enc)
				etagSuffix = "-" + enc
			}
		}
	}
	hdr.Set("Etag", etag(fi, etagSuffix))
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// relPath returns the file path under the root that r names ("." for the
// root itself), or the status to answer: 400 for an encoded "/" or "\",
// a backslash, a NUL or a dot segment, 404 for a dotfile (unless served)
// or a path outside the route's prefix.
func (h *Handler) relPath(r *http.Request) (string, int) {
	p := r.URL.Path
	rest, ok := strings.CutPrefix(p, h.prefix)
	if !ok {
		return "", http.StatusNotFound
	}
	if !strings.HasSuffix(h.prefix, "/") && rest != "" && rest[0] != '/' {
		return "", http.StatusNotFound // "/icons" serves "/icons/x", not "/iconsx"
	}
	if strings.ContainsAny(p, "\\\x00") {
		return "", http.StatusBadRequest
	}
	if raw := r.URL.RawPath; raw != "" && (containsFold(raw, "%2f") || containsFold(raw, "%5c") || containsFold(raw, "%00")) {
		return "", http.StatusBadRequest
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return ".", 0
	}
	for seg := range strings.SplitSeq(rest, "/") {
		switch {
		case seg == "", seg == ".", seg == "..":
			return "", http.StatusBadRequest
		case seg[0] == '.' && !h.dotfiles:
			return "", http.StatusNotFound
		}
	}
	return rest, 0
}

// containsFold reports whether s contains sub, ASCII case-insensitively.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// open opens rel for reading: within the root only (os.Root) unless
// symbolic links may lead out of it. Opening does not block on a FIFO,
// and anything but a regular file or a directory is refused.
func (h *Handler) open(rel string) (*os.File, os.FileInfo, error) {
	var f *os.File
	var err error
	if h.follow {
		f, err = os.OpenFile(filepath.Join(h.root, filepath.FromSlash(rel)), openFlags, 0)
	} else {
		var root *os.Root
		if root, err = os.OpenRoot(h.root); err != nil {
			return nil, nil, err
		}
		f, err = root.OpenFile(rel, openFlags, 0)
		root.Close()
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		err = os.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// openFile is open for a regular file only.
func (h *Handler) openFile(rel string) (*os.File, os.FileInfo) {
	f, fi, err := h.open(rel)
	if err != nil {
		return nil, nil
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil
	}
	return f, fi
}

// openIndex opens the first index file of the directory rel.
func (h *Handler) openIndex(rel string) (*os.File, os.FileInfo, string) {
	for _, name := range h.index {
		if name[0] == '.' && !h.dotfiles {
			continue
		}
		if f, fi := h.openFile(path.Join(rel, name)); f != nil {
			return f, fi, name
		}
	}
	return nil, nil, ""
}

// openSibling opens the precompressed sibling of the file rel (or of the
// index file name in the directory rel) the client prefers, if one exists,
// and returns it with its Content-Encoding.
func (h *Handler) openSibling(rel, name string, orig os.FileInfo, ae []string) (*os.File, os.FileInfo, string) {
	file := rel
	if path.Base("/"+rel) != name {
		file = path.Join(rel, name) // an index file
	}
	var tried [3]bool
	for range siblingEncodings {
		// The client's preference first, the server's on a tie; a
		// coding whose file is missing is not asked for again.
		offered := make([]string, 0, len(siblingEncodings))
		for i, e := range siblingEncodings {
			if !tried[i] {
				offered = append(offered, e)
			}
		}
		enc := compress.Negotiate(ae, offered)
		if enc == "" {
			return nil, nil, ""
		}
		for i, e := range siblingEncodings {
			if e == enc {
				tried[i] = true
			}
		}
		if f, fi := h.openFile(file + siblingExt[enc]); f != nil {
			return f, fi, enc
		}
	}
	return nil, nil, ""
}

// etag is a strong validator from the file's modification time and size
// (as nginx's), with the encoding of a precompressed sibling appended so
// that the two representations never share one.
func etag(fi os.FileInfo, suffix string) string {
	b := make([]byte, 0, 40)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 36)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.Size(), 36)
	b = append(b, suffix...)
	b = append(b, '"')
	return string(b)
}

// redirectToDir sends the client to the directory's path with its "/", as
// httpd's DirectorySlash, so that relative links in its index resolve.
func (h *Handler) redirectToDir(w http.ResponseWriter, r *http.Request) {
	loc := r.URL.EscapedPath() + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	answer(w, http.StatusMovedPermanently, "301 Moved Permanently")
}

func notFound(w http.ResponseWriter) {
	answer(w, http.StatusNotFound, "404 Not Found")
}

func answer(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n") //nolint:errcheck // the client went away
}
