package metrics

import "testing"

func TestStoreScope(t *testing.T) {
	m := New(Options{})
	s := NewStoreScope(m)
	s.KeysLoaded(120)
	s.KeysLoaded(101)
	s.WatchEvents(3)
	s.WatchEvents(2)
	fams := scrape(t, m)
	keys, ok := fams["frontdesk_store_keys_loaded"]
	if !ok {
		t.Fatal("frontdesk_store_keys_loaded is not exposed")
	}
	if got := keys.Metric[0].GetGauge().GetValue(); got != 101 {
		t.Errorf("keys loaded = %v, want the last load's 101", got)
	}
	ev, ok := fams["frontdesk_store_watch_events_total"]
	if !ok {
		t.Fatal("frontdesk_store_watch_events_total is not exposed")
	}
	if got := ev.Metric[0].GetCounter().GetValue(); got != 5 {
		t.Errorf("watch events = %v, want 5", got)
	}
}
