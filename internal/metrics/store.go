package metrics

import "github.com/prometheus/client_golang/prometheus"

// StoreScope counts what a node reads from the store, to show that its cost
// follows its own instances: the keys of its last full load and the changes
// its watch delivers.
type StoreScope struct {
	keysLoaded  prometheus.Gauge
	watchEvents prometheus.Counter
}

// NewStoreScope registers the store-scope metrics on m's registry.
func NewStoreScope(m *Metrics) *StoreScope {
	s := &StoreScope{
		keysLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "frontdesk_store_keys_loaded",
			Help: "Keys read from the store at the last full load of this node's key ranges.",
		}),
		watchEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "frontdesk_store_watch_events_total",
			Help: "Changed keys received from the store's watch of this node's key ranges.",
		}),
	}
	m.reg.MustRegister(s.keysLoaded, s.watchEvents)
	return s
}

// KeysLoaded records the size of a full load.
func (s *StoreScope) KeysLoaded(n int) { s.keysLoaded.Set(float64(n)) }

// WatchEvents counts n changes received from the watch.
func (s *StoreScope) WatchEvents(n int) { s.watchEvents.Add(float64(n)) }
