package static

// Options configure one route served from a directory (httpd's
// DocumentRoot and Alias). config fills in the defaults.
type Options struct {
	// Root is the directory served: the part of the request path after
	// the route's prefix is looked up under it. Required.
	Root string
	// Index lists the files tried, in order, for a request naming a
	// directory. Nil: DefaultIndex; empty: none (the directory is 404).
	Index []string
	// Dotfiles serves names starting with "." (.htaccess, .git). False
	// (the default): 404.
	Dotfiles bool
	// FollowSymlinks follows symbolic links whose target lies outside
	// Root. False (the default): such a link is 404; links that stay
	// inside Root are followed either way.
	FollowSymlinks bool
	// Precompressed serves file.gz, file.br or file.zst in place of file
	// when the client accepts that encoding and the sibling exists.
	Precompressed bool
	// Listing answers a directory without an index file with a list of
	// its entries. False (the default): 404.
	Listing bool
}

// DefaultIndex is Options.Index when it is nil. Read only.
var DefaultIndex = []string{"index.html"}

// DefaultPrecompressed is Options.Precompressed when the key is absent.
const DefaultPrecompressed = true
