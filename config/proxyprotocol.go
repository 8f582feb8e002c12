package config

import "github.com/webtier/webtier/proxy"

// This file checks a listener's proxy_protocol key.

// proxyProtocolExample is quoted by the errors about proxy_protocol.
const proxyProtocolExample = `proxy_protocol: {from: ["10.0.0.0/16"]}`

// proxyProtocol returns a listener's PROXY protocol options, or nil when
// the key is absent. from is required: a header believed from anyone
// would let every client choose its own address.
func (c *checker) proxyProtocol(f field[rawProxyProtocol]) *proxy.ProxyProtocolOptions {
	if !f.Set {
		return nil
	}
	r := &f.V
	if len(r.From.V) == 0 {
		c.errorf(f.loc, "needs from: the addresses (CIDRs or IPs) of the balancer that sends the PROXY header, like %s; a header from any other source is refused",
			proxyProtocolExample)
		return nil
	}
	return &proxy.ProxyProtocolOptions{
		From:    c.prefixes(r.From),
		Timeout: c.duration(r.Timeout, proxy.DefaultProxyHeaderTimeout),
	}
}
