package metrics

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
)

// PurgedCounter registers frontdesk_instances_purged_total and returns the
// function that adds to it: the terminated instances this node purged from
// the store once their retention window had passed. Call it once.
func (m *Metrics) PurgedCounter() func(n int) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "frontdesk_instances_purged_total",
		Help: "Terminated instances purged from the store by this node after their retention window.",
	})
	m.reg.MustRegister(c)
	return func(n int) { c.Add(float64(n)) }
}

// liveHeapMetric selects the runtime metric of the live heap.
var liveHeapMetric = regexp.MustCompile(`^/gc/heap/live:bytes$`)
