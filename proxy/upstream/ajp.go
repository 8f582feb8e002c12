package upstream

import (
	"context"
	"net"

	"github.com/webtier/webtier/proxy/upstream/ajp"
)

// newAJPTransport builds the AJP13 client of an ajp:// endpoint. It shares
// the pool's dial (so connect failures eject as for HTTP), timeouts and
// idle limits. Tomcat refusing a request (wrong secret, packet size) comes
// back as an *ajp.Error naming the setting to fix; the proxy answers 502
// and logs it, and it counts as a gateway failure of the address.
func (p *Pool) newAJPTransport(dial func(context.Context) (net.Conn, error), unsolicited func(head []byte)) *ajp.Transport {
	return ajp.NewTransport(ajp.Options{
		Secret:                p.opts.AJP.Secret,
		PacketSize:            p.opts.AJP.PacketSize,
		CPingIdle:             p.opts.AJP.CPingIdle,
		RequestIDAttribute:    p.opts.AJP.RequestIDAttribute,
		RequestIDHeader:       p.opts.AJP.RequestIDHeader,
		ConnectTimeout:        p.opts.ConnectTimeout,
		ResponseHeaderTimeout: p.opts.ResponseHeaderTimeout,
		RouteTimeouts:         p.opts.MaxRouteTimeout > 0,
		IdleTimeout:           p.opts.IdleConnTimeout,
		MaxIdle:               p.opts.MaxIdlePerAddress,
		IdleLimit:             p.opts.IdleLimit,
		Dial:                  dial,
		OnError: func(kind string) {
			p.m.ajpErrors.WithLabelValues(p.opts.Name, kind).Inc()
		},
		OnUnsolicited: unsolicited,
	})
}
