package upstream

import (
	"context"
	"net"
	"net/http"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/ajp"
)

// newAJPTransport builds the AJP13 client of an ajp:// endpoint. It shares
// the pool's dial (so connect failures eject as for HTTP), timeouts and
// idle limits; Tomcat refusing a request (wrong secret, packet size) is
// logged with the configuration to fix.
func (p *Pool) newAJPTransport(e *Endpoint, dial func(context.Context) (net.Conn, error)) *ajp.Transport {
	return ajp.NewTransport(ajp.Options{
		Secret:                p.opts.AJP.Secret,
		PacketSize:            p.opts.AJP.PacketSize,
		CPingIdle:             p.opts.AJP.CPingIdle,
		ConnectTimeout:        p.opts.ConnectTimeout,
		ResponseHeaderTimeout: p.opts.ResponseHeaderTimeout,
		IdleTimeout:           p.opts.IdleConnTimeout,
		MaxIdle:               p.opts.MaxIdlePerAddress,
		Dial:                  dial,
		OnRejected: func(req *http.Request, err *ajp.Error) {
			p.log.Error("tomcat rejected the request",
				zap.String("target", e.target.Host), zap.Stringer("address", e.addr),
				zap.String("kind", err.Kind), zap.String("method", req.Method),
				zap.String("path", req.URL.Path), zap.Error(err))
		},
	})
}
