package upstream

import (
	"strings"

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
	ejections    *prometheus.CounterVec // upstream, reason
	restores     *prometheus.CounterVec // upstream, reason
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
		ejections: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "upstream", Name: "ejections_total",
			Help: "Backend addresses ejected, by upstream and reason (connect, health_check, probe, cping, timeout, request_failed, status_5xx).",
		}, []string{"upstream", "reason"}),
		restores: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "upstream", Name: "restores_total",
			Help: "Backend addresses taking requests again after being suspect, ejected or in standby, by upstream and reason (probe, operator).",
		}, []string{"upstream", "reason"}),
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

// reasonKind is the bounded label of a state change's reason, which is
// free text with an error in it.
func reasonKind(reason string) string {
	for _, k := range []struct{ prefix, kind string }{
		{"connect failed", "connect"},
		{"health check failed", "health_check"},
		{"probe failed", "probe"},
		{"probe succeeded", "probe"},
		{"no answer to AJP CPING", "cping"},
		{"connection timed out", "timeout"},
		{"request failed", "request_failed"},
		{"answered ", "status_5xx"},
		{"operator", "operator"},
		{"slow start done", "slow_start"},
		{"left dns answer", "dns"},
	} {
		if strings.HasPrefix(reason, k.prefix) {
			return k.kind
		}
	}
	return "other"
}

// countStateChange counts the move of an address of upstream from old to
// s for the given reason.
func (m *Metrics) countStateChange(upstream string, old, s State, reason string) {
	m.stateChanges.WithLabelValues(upstream, s.String()).Inc()
	switch {
	case s == StateEjected:
		m.ejections.WithLabelValues(upstream, reasonKind(reason)).Inc()
	case s.takesRequests() && (old == StateSuspect || old == StateEjected || old == StateStandby):
		m.restores.WithLabelValues(upstream, reasonKind(reason)).Inc()
	}
}

// addressDesc describes webtier_upstream_addresses.
var addressDesc = prometheus.NewDesc("webtier_upstream_addresses",
	"Backend addresses in the current DNS answers, by upstream and state.",
	[]string{"upstream", "state"}, nil)

// AddressCollector reports how many addresses of each upstream are in each
// state, read at scrape time from the pools pools returns (those of the
// running config, which a reload replaces).
func AddressCollector(pools func() []*Pool) prometheus.Collector { return addressCollector(pools) }

type addressCollector func() []*Pool

func (c addressCollector) Describe(ch chan<- *prometheus.Desc) { ch <- addressDesc }

func (c addressCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c() {
		var n [len(stateNames)]int
		for _, e := range p.active.Load().eps {
			if s := e.State(); int(s) < len(n) {
				n[s]++
			}
		}
		for s, count := range n {
			ch <- prometheus.MustNewConstMetric(addressDesc, prometheus.GaugeValue, float64(count), p.opts.Name, stateNames[s])
		}
	}
}
