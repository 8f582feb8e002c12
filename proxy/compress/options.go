package compress

// Options configure response compression on a route or, as the default
// of its routes, on a listener. config fills in the defaults.
type Options struct {
	// Types are the media types (without parameters, lower case)
	// compressed. Nil: DefaultTypes.
	Types []string
	// MinSize is the smallest body compressed, in bytes, when the
	// response says its length; a body of unknown length is compressed.
	MinSize int
	// Encodings are the content codings offered, in the server's order
	// of preference, used when the client's q-values tie. Nil:
	// DefaultEncodings.
	Encodings []string
}

// Encodings webtier can produce.
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// DefaultTypes is Options.Types when it is nil: text formats that
// compress well. Images, video and archives are compressed already.
// Read only.
var DefaultTypes = []string{
	"text/html", "text/css", "text/plain", "text/xml", "text/javascript",
	"text/csv", "text/markdown",
	"application/javascript", "application/json", "application/xml",
	"application/manifest+json", "application/ld+json", "application/rss+xml",
	"application/atom+xml", "application/wasm", "image/svg+xml",
	"font/ttf", "font/otf", "application/vnd.ms-fontobject",
}

// DefaultMinSize is Options.MinSize when the key is absent: below about
// 1 KiB the coding's framing eats most of the gain.
const DefaultMinSize = 1024

// DefaultEncodings is Options.Encodings when it is nil, in order of
// preference. Read only.
var DefaultEncodings = []string{Zstd, Gzip}
