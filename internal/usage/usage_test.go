package usage_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
	"github.com/frontdesk-imds/frontdesk/internal/usage"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 30, 10, 30, 0, 0, time.UTC)} }

// call reports one tokenless request of id to tr.
func call(tr *usage.Tracker, at time.Time, id, path, ua string, outcome dataplane.Outcome) {
	r := httptest.NewRequest(http.MethodGet, "http://169.254.169.254"+path, nil)
	r.Header.Set("User-Agent", ua)
	tr.Request(r, &dataplane.RequestEvent{Method: "GET", InstanceID: id, IMDSVersion: 1, Status: 200, Outcome: outcome, Start: at})
}

func storeWith(t *testing.T, ids ...int) (imds.Store, []string) {
	t.Helper()
	st := memstore.New()
	var out []string
	err := st.Update(t.Context(), func(tx imds.Tx) error {
		for _, n := range ids {
			in := storetest.NewInstance(t, n, "192.0.2."+string(rune('0'+n)))
			out = append(out, in.InstanceID)
			if err := imds.PutInstance(tx, in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, out
}

func report(t *testing.T, tr *usage.Tracker, w time.Duration) *usage.Report {
	t.Helper()
	r, err := tr.Report(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestUnflushedCallsAreReportedAndFlushedCallsSurviveARestart(t *testing.T) {
	st, ids := storeWith(t, 1)
	c := newClock()
	tr := usage.New(st, usage.Options{Node: "n1", Now: c.now})
	for range 3 {
		call(tr, c.now(), ids[0], "/latest/meta-data/", "legacy-app/1.0", dataplane.OutcomeServed)
	}
	call(tr, c.now(), ids[0], "/latest/meta-data/", "v2-sdk/2", dataplane.OutcomeTokenIssued) // not tokenless-served: ignored
	if s, _ := report(t, tr, time.Hour).Get(ids[0]); s.Calls != 3 || s.LastUserAgent != "legacy-app/1.0" {
		t.Fatalf("before the flush: %+v, want 3 calls from legacy-app/1.0", s)
	}
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	call(tr, c.now(), ids[0], "/latest/meta-data/", "legacy-app/1.0", dataplane.OutcomeServed) // lost with the "crash"

	restarted := usage.New(st, usage.Options{Node: "n1", Now: c.now})
	s, ok := report(t, restarted, time.Hour).Get(ids[0])
	if !ok || s.Calls != 3 || s.Agents[0].Value != "legacy-app/1.0" || s.Paths[0].Value != "/latest/meta-data/" {
		t.Fatalf("after a restart: %+v, want the 3 flushed calls", s)
	}
	// The restarted node adds to the same record.
	c.add(time.Second)
	call(restarted, c.now(), ids[0], "/latest/user-data", "legacy-app/1.0", dataplane.OutcomeServed)
	if err := restarted.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s, _ := report(t, usage.New(st, usage.Options{Node: "n9", Now: c.now}), time.Hour).Get(ids[0]); s.Calls != 4 || s.LastPath != "/latest/user-data" {
		t.Fatalf("after the second flush: %+v, want 4 calls, last /latest/user-data", s)
	}
}

func TestNodesAreMergedOnRead(t *testing.T) {
	st, ids := storeWith(t, 1, 2)
	c := newClock()
	a := usage.New(st, usage.Options{Node: "a", Now: c.now})
	b := usage.New(st, usage.Options{Node: "b", Now: c.now})
	call(a, c.now(), ids[0], "/latest/meta-data/", "cron/1", dataplane.OutcomeServed)
	c.add(time.Minute)
	call(b, c.now(), ids[0], "/latest/meta-data/iam/", "agent/7", dataplane.OutcomeServed)
	call(b, c.now(), ids[1], "/latest/meta-data/", "agent/7", dataplane.OutcomeNoTokenRejected)
	for _, tr := range []*usage.Tracker{a, b} {
		if err := tr.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	r := report(t, a, 24*time.Hour)
	s0, _ := r.Get(ids[0])
	s1, _ := r.Get(ids[1])
	if s0.Calls != 2 || len(s0.Agents) != 2 || s0.LastUserAgent != "agent/7" {
		t.Errorf("%s merged = %+v, want 2 calls from two agents, last agent/7", ids[0], s0)
	}
	if s1.Calls != 0 || s1.Rejected != 1 || !s1.LastRejected {
		t.Errorf("%s merged = %+v, want one rejected call", ids[1], s1)
	}
	if got := s0.Hourly[len(s0.Hourly)-1]; got != 2 {
		t.Errorf("current hour of %s = %d, want 2", ids[0], got)
	}
}

func TestRetentionPruneAndDelete(t *testing.T) {
	st, ids := storeWith(t, 1, 2, 3)
	c := newClock()
	tr := usage.New(st, usage.Options{Node: "n1", Now: c.now, Retention: 48 * time.Hour})
	call(tr, c.now(), ids[0], "/old", "old/1", dataplane.OutcomeServed)
	call(tr, c.now(), ids[1], "/x", "x/1", dataplane.OutcomeServed)
	call(tr, c.now(), ids[2], "/y", "y/1", dataplane.OutcomeServed)
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.add(47 * time.Hour)
	call(tr, c.now(), ids[1], "/new", "new/1", dataplane.OutcomeServed)
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	// ids[2] is deleted with its usage, in one transaction, as the purge does.
	if err := st.Update(t.Context(), func(tx imds.Tx) error {
		if err := imds.DeleteInstance(tx, ids[2]); err != nil {
			return err
		}
		return usage.DeleteInstance(tx, ids[2])
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := report(t, tr, 48*time.Hour).Get(ids[2]); ok {
		t.Errorf("%s still has usage after DeleteInstance", ids[2])
	}
	c.add(3 * time.Hour)
	// ids[1] stays; a terminated instance's usage goes with the next prune.
	call(tr, c.now(), ids[1], "/new", "new/1", dataplane.OutcomeServed)
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := report(t, tr, 48*time.Hour)
	if _, ok := r.Get(ids[0]); ok {
		t.Errorf("%s kept past the retention", ids[0])
	}
	if s, ok := r.Get(ids[1]); !ok || s.Calls != 2 || s.LastPath != "/new" {
		t.Errorf("%s after pruning = %+v, want only the 2 recent calls", ids[1], s)
	}
	var keys int
	_ = st.View(t.Context(), func(tx imds.Tx) error {
		return imds.ScanUsage(tx, "", func(*imds.UsageRecord) error { keys++; return nil })
	})
	if keys != 1 {
		t.Errorf("%d usage records left, want 1", keys)
	}
}

func TestObservedSinceIsKeptAcrossRestartsAndOldWindowsAreNotCovered(t *testing.T) {
	st, _ := storeWith(t, 1)
	c := newClock()
	start := c.now()
	tr := usage.New(st, usage.Options{Node: "n1", Now: c.now, FlushInterval: time.Hour})
	if err := tr.Begin(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Hour)
	r := report(t, usage.New(st, usage.Options{Node: "n1", Now: c.now}), 24*time.Hour)
	if !r.ObservedSince.Equal(start) || r.Observed() != 2*time.Hour {
		t.Fatalf("observed since %v for %v, want %v for 2h", r.ObservedSince, r.Observed(), start)
	}
	if r.Covers() {
		t.Errorf("a 24h window after 2h of observation reported as covered")
	}
	if r2 := report(t, tr, time.Hour); !r2.Covers() {
		t.Errorf("a 1h window after 2h of observation reported as not covered")
	}
}

type failing struct {
	imds.Store
	fail bool
}

func (f *failing) Update(ctx context.Context, fn func(imds.Tx) error) error {
	if f.fail {
		return imds.ErrUnavailable
	}
	return f.Store.Update(ctx, fn)
}

func TestFailedFlushKeepsCallsForTheNext(t *testing.T) {
	st, ids := storeWith(t, 1)
	f := &failing{Store: st, fail: true}
	c := newClock()
	var flushed []int
	tr := usage.New(f, usage.Options{Node: "n1", Now: c.now, OnFlush: func(n int, _ int64, _ error) { flushed = append(flushed, n) }})
	call(tr, c.now(), ids[0], "/a", "a/1", dataplane.OutcomeServed)
	if err := tr.Flush(t.Context()); !errors.Is(err, imds.ErrUnavailable) {
		t.Fatalf("flush to a failing store = %v, want ErrUnavailable", err)
	}
	call(tr, c.now(), ids[0], "/a", "a/1", dataplane.OutcomeServed)
	f.fail = false
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s, _ := report(t, usage.New(st, usage.Options{Node: "n2", Now: c.now}), time.Hour).Get(ids[0]); s.Calls != 2 {
		t.Fatalf("after recovery: %d calls stored, want 2", s.Calls)
	}
	if len(flushed) != 2 || flushed[0] != 0 || flushed[1] != 1 {
		t.Errorf("OnFlush saw %v, want [0 1]", flushed)
	}
}

// A flood of calls costs the store one transaction per flush and chunk,
// not one per call.
func TestFlushCostIsBoundedWhateverTheGuestsDo(t *testing.T) {
	st, ids := storeWith(t, 1, 2)
	c := newClock()
	tr := usage.New(st, usage.Options{Node: "n1", Now: c.now, FlushChunk: 1})
	var before int64
	_ = st.View(t.Context(), func(tx imds.Tx) error { before = tx.Revision(); return nil })
	for i := range 5000 {
		call(tr, c.now(), ids[i%2], "/latest/meta-data/", "busy/1", dataplane.OutcomeServed)
	}
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var after int64
	_ = st.View(t.Context(), func(tx imds.Tx) error { after = tx.Revision(); return nil })
	if after-before != 2 {
		t.Errorf("5000 calls of 2 instances cost %d transactions, want 2 (one per chunk)", after-before)
	}
	if s, _ := report(t, tr, time.Hour).Get(ids[0]); s.Calls != 2500 {
		t.Errorf("stored %d calls, want 2500", s.Calls)
	}
}

func TestTerminatedInstanceUsageIsPruned(t *testing.T) {
	st, ids := storeWith(t, 1, 2, 3)
	c := newClock()
	tr := usage.New(st, usage.Options{Node: "n1", Now: c.now})
	for _, id := range ids {
		call(tr, c.now(), id, "/latest/meta-data/", "cron/1", dataplane.OutcomeServed)
	}
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(t.Context(), func(tx imds.Tx) error {
		in, err := imds.GetInstance(tx, ids[0])
		if err != nil {
			return err
		}
		in.State = imds.StateTerminated
		if err := imds.PutInstance(tx, in); err != nil {
			return err
		}
		// Gone from the store altogether, its usage records left behind.
		return imds.DeleteInstance(tx, ids[2])
	}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := report(t, tr, time.Hour)
	if _, ok := r.Get(ids[0]); ok {
		t.Errorf("terminated %s still has usage after a prune", ids[0])
	}
	var left int
	if err := st.View(t.Context(), func(tx imds.Tx) error {
		return imds.ScanUsage(tx, ids[2], func(*imds.UsageRecord) error { left++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("deleted %s still has %d usage records after a prune", ids[2], left)
	}
	if s, ok := r.Get(ids[1]); !ok || s.Calls != 1 {
		t.Errorf("running %s lost its usage: %+v", ids[1], s)
	}
}
