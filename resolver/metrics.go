package resolver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// queryResult is the outcome of one query to one nameserver. It is the only
// label of webtier_resolver_queries_total, so the label set stays bounded:
// names are never labels (the set of names is unbounded in principle).
type queryResult uint8

const (
	resultOK queryResult = iota
	resultNXDomain
	resultNoData
	resultServFail
	resultRefused
	resultTimeout
	resultError // any other rcode, network error or mismatched reply
	numResults
)

var resultNames = [numResults]string{
	resultOK:       "ok",
	resultNXDomain: "nxdomain",
	resultNoData:   "nodata",
	resultServFail: "servfail",
	resultRefused:  "refused",
	resultTimeout:  "timeout",
	resultError:    "error",
}

func (q queryResult) String() string { return resultNames[q] }

// metrics are the resolver's collectors. They are registered on
// Options.Registerer; with a nil Registerer they exist but are not exported,
// which keeps the code paths the same. Registering two Resolvers on one
// Registerer panics (promauto): webtier has exactly one shared resolver.
type metrics struct {
	queries           [numResults]prometheus.Counter
	answerChanges     prometheus.Counter
	refreshNowDropped prometheus.Counter
	staleEpisodes     prometheus.Counter
	staleNames        prometheus.Gauge
	names             prometheus.Gauge
	nameserversDown   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	queries := f.NewCounterVec(prometheus.CounterOpts{
		Namespace: "webtier",
		Subsystem: "resolver",
		Name:      "queries_total",
		Help:      "DNS queries sent to a nameserver, by outcome.",
	}, []string{"result"})
	m := &metrics{
		answerChanges: f.NewCounter(prometheus.CounterOpts{
			Namespace: "webtier",
			Subsystem: "resolver",
			Name:      "answer_changes_total",
			Help:      "Times the address set of a name changed.",
		}),
		refreshNowDropped: f.NewCounter(prometheus.CounterOpts{
			Namespace: "webtier",
			Subsystem: "resolver",
			Name:      "refresh_now_dropped_total",
			Help:      "RefreshNow calls dropped because one for the same name came within the minimum gap.",
		}),
		staleEpisodes: f.NewCounter(prometheus.CounterOpts{
			Namespace: "webtier",
			Subsystem: "resolver",
			Name:      "stale_episodes_total",
			Help:      "Times a name began serving its last good answer because refreshes failed.",
		}),
		nameserversDown: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "webtier",
			Subsystem: "resolver",
			Name:      "nameservers_down",
			Help:      "Nameservers asked last because they stopped answering (timeouts), until a probe gets a reply.",
		}),
		staleNames: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "webtier",
			Subsystem: "resolver",
			Name:      "stale_names",
			Help:      "Names currently served from their last good answer because refreshes fail.",
		}),
		names: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "webtier",
			Subsystem: "resolver",
			Name:      "names",
			Help:      "Names currently cached and refreshed.",
		}),
	}
	for i := range m.queries {
		// Resolve the children once, so counting a query is one atomic add.
		m.queries[i] = queries.WithLabelValues(resultNames[i])
	}
	return m
}

// answerAgeDesc describes webtier_resolver_answer_age_seconds. Its name
// label is bounded: the cache holds the names of the configured targets
// (and health checks), and forgets a name unused for IdleTimeout.
var answerAgeDesc = prometheus.NewDesc("webtier_resolver_answer_age_seconds",
	"Seconds since each cached name's current answer came from DNS or the hosts file; names served stale or without addresses are left out (see webtier_resolver_stale_names).",
	[]string{"name"}, nil)

// answerAgeCollector reports each name's answer age at scrape time, read
// from the snapshots Lookup reads, without a lock.
type answerAgeCollector struct{ r *Resolver }

func (c answerAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- answerAgeDesc }

func (c answerAgeCollector) Collect(ch chan<- prometheus.Metric) {
	names := c.r.names.Load()
	if names == nil {
		return
	}
	now := time.Now()
	for name, e := range *names {
		if !e.literal.IsValid() {
			if s := e.snap.Load(); s != nil && !s.at.IsZero() {
				ch <- prometheus.MustNewConstMetric(answerAgeDesc, prometheus.GaugeValue, now.Sub(s.at).Seconds(), name)
			}
		}
	}
}
