package metrics

import "github.com/prometheus/client_golang/prometheus"

// Build identifies the running binary, as Prometheus exporters do with
// their *_build_info series.
type Build struct {
	Version   string
	Revision  string
	GoVersion string
}

// SetBuild publishes frontdesk_build_info{version,revision,goversion} 1.
// Call it once at start.
func (m *Metrics) SetBuild(b Build) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "frontdesk_build_info",
		Help:        "Always 1; the labels say which build of frontdesk is running.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	m.reg.MustRegister(g)
}

// StoreOps pre-creates the store-error series of the given operations at
// zero, so that a dashboard sees frontdesk_store_errors_total before the
// first error instead of no series at all.
func (m *Metrics) StoreOps(ops ...string) {
	for _, op := range ops {
		m.storeErrors.WithLabelValues(m.storeOps.value(op))
	}
}
