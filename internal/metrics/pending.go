package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
)

// PendingWaits counts the data plane's waits for callers whose instance a
// source was about to write (dataplane.Pending).
type PendingWaits struct {
	outcomes map[string]prometheus.Counter
	seconds  prometheus.Histogram
}

// NewPendingWaits registers the wait metrics in m's registry.
func NewPendingWaits(m *Metrics) *PendingWaits {
	r := registrar{m.reg}
	vec := r.counterVec("frontdesk_pending_caller_waits_total",
		"Requests from an address no instance held yet that waited for a source's instance, by outcome (found: served; timeout, gone: 404 after waiting; overflow: 404 at once, too many waiting).",
		"outcome")
	p := &PendingWaits{outcomes: map[string]prometheus.Counter{}}
	for _, o := range []string{dataplane.WaitFound, dataplane.WaitTimeout, dataplane.WaitGone, dataplane.WaitOverflow} {
		p.outcomes[o] = vec.WithLabelValues(o)
	}
	p.seconds = r.histogram("frontdesk_pending_caller_wait_seconds",
		"How long requests from a not-yet-known address waited for their instance.",
		[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5})
	return p
}

// Observe records one wait (dataplane.PendingOptions.OnWait).
func (p *PendingWaits) Observe(outcome string, waited time.Duration) {
	if c, ok := p.outcomes[outcome]; ok {
		c.Inc()
	}
	p.seconds.Observe(waited.Seconds())
}
