package upstream

import "net/http"

// Defaults of the Options and HealthCheck fields that are not durations or
// counts. config fills them in from here, so that `webtier validate`,
// README and the pools agree; applyDefaults uses the same ones for a zero
// field.
const (
	// DefaultBalance is least_conn: the fewest requests in flight relative
	// to weight, as the session load balancer of the field reports does.
	DefaultBalance = BalanceLeastConn
	// DefaultStickyCookie is the session cookie of a Tomcat (and any
	// servlet container): its value ends in ".<jvmRoute>".
	DefaultStickyCookie = "JSESSIONID"

	// DefaultHealthMethod and DefaultHealthPath are the request of an HTTP
	// health check: GET / is what every web application answers.
	DefaultHealthMethod = http.MethodGet
	DefaultHealthPath   = "/"
	// DefaultExpectMin and DefaultExpectMax are the statuses that count
	// as healthy: a success or a redirect (to a login page, say), as
	// HAProxy's httpchk (2xx and 3xx).
	DefaultExpectMin = 200
	DefaultExpectMax = 399
)
