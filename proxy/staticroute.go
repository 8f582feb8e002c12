package proxy

import (
	"errors"
	"fmt"

	"github.com/webtier/webtier/proxy/compress"
)

// checkStatic refuses a route with both static and upstream, or a static
// one without a root (config reports these at their line first).
func checkStatic(ro RouteOptions) error {
	switch {
	case ro.Static == nil:
		return nil
	case ro.Upstream != "":
		return fmt.Errorf("route %s%s: a route has either upstream or static, not both", ro.Host, ro.PathPrefix)
	case ro.Static.Root == "":
		return fmt.Errorf("route %s%s: static: %w", ro.Host, ro.PathPrefix, errors.New("root is required"))
	}
	return nil
}

// compressors returns, by route index, the compression each route gets on
// listener lo: its own compress, else the listener's. It returns nil when
// no route compresses, so that the request path tests one pointer.
func compressors(lo ListenerOptions, routes []RouteOptions) ([]*compress.Compressor, error) {
	def, err := compress.New(lo.Compress)
	if err != nil {
		return nil, fmt.Errorf("listener %s: compress: %w", lo.Name, err)
	}
	var out []*compress.Compressor
	any := false
	for _, ro := range routes {
		c := def
		if ro.Compress != nil {
			if c, err = compress.New(ro.Compress); err != nil {
				return nil, fmt.Errorf("route %s%s: compress: %w", ro.Host, ro.PathPrefix, err)
			}
		}
		any = any || c != nil
		out = append(out, c)
	}
	if !any {
		return nil, nil
	}
	return out, nil
}
