package proxy

import (
	"testing"
	"time"

	"github.com/webtier/webtier/proxy/upstream/ajp"
	"github.com/webtier/webtier/proxy/upstream/h1"
)

// Issue 15, defaults review: the side that closes an idle keep-alive
// connection must be the one that sends requests on it, or a request
// written as the other side closes fails. In front, the load balancer
// (AWS ALB/CLB idle timeout 60 s) sends; behind, webtier does, to Tomcat
// (stock keepAliveTimeout = connectionTimeout = 20 s).
func TestDefaults_idleTimeoutsCloseOnTheRightSide(t *testing.T) {
	const albIdle, tomcatKeepAlive = 60 * time.Second, 20 * time.Second
	if DefaultClientIdleTimeout <= albIdle {
		t.Errorf("listener idle_timeout default %v; want above the ALB's %v", DefaultClientIdleTimeout, albIdle)
	}
	for name, d := range map[string]time.Duration{
		"upstream idle_timeout": DefaultIdleConnTimeout,
		"h1 client":             h1.DefaultIdleTimeout,
		"AJP client":            ajp.DefaultIdleTimeout,
	} {
		if d >= tomcatKeepAlive {
			t.Errorf("%s default %v; want below Tomcat's stock keep-alive %v", name, d, tomcatKeepAlive)
		}
	}
}
