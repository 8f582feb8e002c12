package proxy

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/webtier/webtier/proxy/upstream"
)

// Metrics are the request collectors, shared by every Handler of a
// process (a reload builds a new one counting into the same series), so
// they are made once with NewMetrics. Labels are the listener, route and
// upstream names from the config and the status class: never a URL, a
// client or an address.
type Metrics struct {
	requests       *prometheus.CounterVec   // listener, route, upstream, code
	duration       *prometheus.HistogramVec // listener, route, upstream
	bytes          *prometheus.CounterVec   // listener, route, upstream
	inflight       *prometheus.GaugeVec     // listener
	upstreamHeader *prometheus.HistogramVec // upstream
}

// NewMetrics registers the request collectors on reg. A nil reg gives
// collectors that count but are not exported.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "http", Name: "requests_total",
			Help: "Requests answered, by listener, route, upstream and status class (2xx...). Requests no route matched have route and upstream \"\".",
		}, []string{"listener", "route", "upstream", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "webtier", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time from a request's head to the end of its response, by listener, route and upstream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"listener", "route", "upstream"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "http", Name: "response_body_bytes_total",
			Help: "Response body bytes sent to clients, by listener, route and upstream.",
		}, []string{"listener", "route", "upstream"}),
		inflight: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "webtier", Subsystem: "http", Name: "requests_in_flight",
			Help: "Requests being served, by listener.",
		}, []string{"listener"}),
		upstreamHeader: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "webtier", Subsystem: "upstream", Name: "response_header_seconds",
			Help:    "Time from sending a request to a backend to its response header (the try that answered), by upstream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"upstream"}),
	}
}

// frontMetrics are a listener's children of Metrics, resolved when the
// Handler is built, so that counting a request is a few atomic adds and
// no label lookup.
type frontMetrics struct {
	inflight       prometheus.Gauge
	routes         []routeMetrics // by route index
	unrouted       routeMetrics
	upstreamHeader []prometheus.Observer // by pool index
}

type routeMetrics struct {
	class    [5]prometheus.Counter // 1xx to 5xx
	duration prometheus.Observer
	bytes    prometheus.Counter
}

// statusClass is the index of status's class in routeMetrics.class.
func statusClass(status int) int { return min(max(status/100, 1), 5) - 1 }

func (m *Metrics) forFront(listener string, routes []RouteOptions, pools []*upstream.Pool) *frontMetrics {
	fm := &frontMetrics{inflight: m.inflight.WithLabelValues(listener)}
	resolve := func(route, up string) routeMetrics {
		var rm routeMetrics
		for c := range rm.class {
			rm.class[c] = m.requests.WithLabelValues(listener, route, up, strconv.Itoa(c+1)+"xx")
		}
		rm.duration = m.duration.WithLabelValues(listener, route, up)
		rm.bytes = m.bytes.WithLabelValues(listener, route, up)
		return rm
	}
	for _, ro := range routes {
		prefix := ro.PathPrefix
		if prefix == "" {
			prefix = "/"
		}
		fm.routes = append(fm.routes, resolve(routeLabel(strings.ToLower(ro.Host), prefix), ro.Upstream))
	}
	fm.unrouted = resolve("", "")
	for _, p := range pools {
		fm.upstreamHeader = append(fm.upstreamHeader, m.upstreamHeader.WithLabelValues(p.Name()))
	}
	return fm
}
