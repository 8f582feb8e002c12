package upstream

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the upstream pools' collectors, shared by every pool of a
// process (and by the pools a reload builds), so they are created once with
// NewMetrics and handed to New. Labels are bounded by configuration: the
// upstream name, a state, a retry reason or an AJP error kind; never an
// address that DNS could multiply, a URL or a client.
type Metrics struct {
	stateChanges *prometheus.CounterVec // upstream, to
	retries      *prometheus.CounterVec // upstream, reason
	ajpErrors    *prometheus.CounterVec // upstream, kind
}

// NewMetrics registers the collectors on reg. A nil reg gives collectors
// that count but are not exported.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		stateChanges: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "upstream", Name: "address_state_changes_total",
			Help: "Backend address state transitions, by upstream and new state (running, suspect, ejected, recovering, draining, standby).",
		}, []string{"upstream", "to"}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "upstream", Name: "retries_total",
			Help: "Requests sent to another address after a failed try, by upstream and reason (connect, rescued, dead_connection, idempotent).",
		}, []string{"upstream", "reason"}),
		ajpErrors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "upstream", Name: "ajp_errors_total",
			Help: "Failed AJP exchanges, by upstream and kind (dial, cping, secret, packet_size, headers_too_large, reset, timeout, protocol, request_body).",
		}, []string{"upstream", "kind"}),
	}
}
