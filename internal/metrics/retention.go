package metrics

import "regexp"

// PurgedCounter registers frontdesk_instances_purged_total and returns the
// function that adds to it: the terminated instances this node purged from
// the store once their retention window had passed. Call it once.
func (m *Metrics) PurgedCounter() func(n int) {
	c := registrar{m.reg}.counter("frontdesk_instances_purged_total",
		"Terminated instances purged from the store by this node after their retention window.")
	return func(n int) { c.Add(float64(n)) }
}

// liveHeapMetric selects the runtime metric of the live heap.
var liveHeapMetric = regexp.MustCompile(`^/gc/heap/live:bytes$`)
