package config

import (
	"mime"
	"os"
	"slices"
	"strings"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/compress"
	"github.com/webtier/webtier/proxy/static"
)

// static checks routes[].static: a directory served instead of an
// upstream (httpd's DocumentRoot and Alias).
func (c *checker) static(f field[rawStatic]) *static.Options {
	if !f.Set {
		return nil
	}
	r := &f.V
	o := &static.Options{
		Root:           r.Root.V,
		Dotfiles:       r.Dotfiles.V,
		FollowSymlinks: r.FollowSymlinks.V,
		Precompressed:  static.DefaultPrecompressed,
		Listing:        r.Listing.V,
	}
	if r.Listing.V {
		c.errorf(r.Listing.loc, "directory listings are not served (they show the security team's reviewers what an attacker would see); put an index file in the directory, or leave listing out")
	}
	if r.Precompressed.Set {
		o.Precompressed = r.Precompressed.V
	}
	switch {
	case r.Root.V == "":
		c.errorf(r.Root.loc, "%s; write the directory to serve, like root: /var/www/html (httpd's DocumentRoot)", missing(r.Root.Set))
	default:
		o.Root = c.relative(r.Root.V)
		if fi, err := os.Stat(o.Root); err != nil {
			c.errorf(r.Root.loc, "cannot use %q: %v; create the directory or correct the path", r.Root.V, err)
		} else if !fi.IsDir() {
			c.errorf(r.Root.loc, "%q is not a directory; write the directory to serve (httpd's DocumentRoot), not a file", r.Root.V)
		}
	}
	if r.Index.Set {
		o.Index = []string{}
		for _, s := range r.Index.V {
			if s.V == "" || strings.ContainsAny(s.V, "/\\\x00") || s.V == "." || s.V == ".." {
				c.errorf(s.loc, "%q is not a file name; write a plain name like index.html", s.V)
				continue
			}
			o.Index = append(o.Index, s.V)
		}
	} else {
		o.Index = slices.Clone(static.DefaultIndex)
	}
	return o
}

// compress checks routes[].compress and listeners[].compress (httpd's
// mod_deflate). Writing the key turns compression on; encodings: []
// turns it off (on a route: its listener's default too).
func (c *checker) compress(f field[rawCompress]) *compress.Options {
	if !f.Set {
		return nil
	}
	r := &f.V
	o := &compress.Options{MinSize: c.intRange(r.MinSize, 0, 1<<30, compress.DefaultMinSize)}
	if r.Types.Set {
		o.Types = []string{}
		for _, s := range r.Types.V {
			mt, params, err := mime.ParseMediaType(s.V)
			if err != nil || len(params) > 0 || !strings.Contains(mt, "/") || strings.Contains(mt, "*") {
				c.errorf(s.loc, "%q is not a media type; write one without parameters, like text/html", s.V)
				continue
			}
			o.Types = append(o.Types, mt)
		}
	} else {
		o.Types = slices.Clone(compress.DefaultTypes)
	}
	if r.Encodings.Set {
		o.Encodings = []string{}
		for _, s := range r.Encodings.V {
			v := strings.ToLower(strings.TrimSpace(s.V))
			switch {
			case v != compress.Zstd && v != compress.Gzip:
				c.errorf(s.loc, "%q is not an encoding webtier compresses with; write %s", s.V, orList(compress.DefaultEncodings))
			case slices.Contains(o.Encodings, v):
				c.errorf(s.loc, "%q is listed twice; list each encoding once, in order of preference", s.V)
			default:
				o.Encodings = append(o.Encodings, v)
			}
		}
	} else {
		o.Encodings = slices.Clone(compress.DefaultEncodings)
	}
	return o
}

// staticRoute reports a route that names both an upstream and static, or
// neither. It returns whether the route is served from a directory.
func (c *checker) staticRoute(r rawRoute) bool {
	if !r.Static.Set {
		return false
	}
	if r.Upstream.Set {
		c.errorf(r.Upstream.loc, "a route has either upstream or static, not both; remove upstream to serve the files under static.root, or remove static to proxy")
	}
	return true
}

// upstreamsUnlessStatic is c.upstreams, except that a file whose routes
// are all static needs no upstreams section.
func (c *checker) upstreamsUnlessStatic(raw *rawFile) []proxy.UpstreamOptions {
	if len(raw.Upstreams.V) == 0 && len(raw.Routes.V) > 0 {
		allStatic := true
		for _, r := range raw.Routes.V {
			allStatic = allStatic && (r.Static.Set || r.Redirect.Set) // a redirect route forwards nothing either
		}
		if allStatic {
			return nil
		}
	}
	return c.upstreams(raw.Upstreams)
}
