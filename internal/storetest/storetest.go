// Package storetest is the behaviour suite every imds.Store backend must
// pass. It pins down the contract documented on imds.Store and imds.Tx (key
// order, reads-your-writes, atomicity, revisions, the change feed, Close) and
// the typed records built on it, so the in-memory store is a trustworthy
// fake for bolt and etcd and a new backend has one test to satisfy.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Options tune the suite for one backend. The zero value runs everything a
// backend must support.
type Options struct {
	// Compact makes every revision before the store's current one
	// unwatchable: etcd compacts; a store with bounded in-process history
	// writes past it (see WritePast). Nil skips the compaction checks, for
	// a backend that keeps its whole history.
	Compact func(t *testing.T, s imds.Store)
	// Writers and Increments size the concurrent-update check (defaults 8
	// and 25). A backend whose commits are slow may lower them.
	Writers, Increments int
}

// wait bounds every wait for a watch batch: long enough for a loaded CI
// machine and an fsyncing etcd, short enough to fail a broken feed quickly.
const wait = 10 * time.Second

// quiet is how long the suite listens for a batch that must not come.
const quiet = 200 * time.Millisecond

// Run runs the whole suite with default options. open returns a new, empty
// store for one subtest; the suite closes it (a later Close returning
// ErrClosed is expected), so open only needs to clean up what lies beneath
// it (directories, servers) with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) imds.Store) {
	t.Helper()
	RunWith(t, open, Options{})
}

// RunWith runs the whole suite with opts.
func RunWith(t *testing.T, open func(t *testing.T) imds.Store, opts Options) {
	t.Helper()
	if opts.Writers <= 0 {
		opts.Writers = 8
	}
	if opts.Increments <= 0 {
		opts.Increments = 25
	}
	s := suite{open: open, opts: opts}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"get_missing_key_returns_not_found", s.getMissing},
		{"put_is_visible_to_later_views", s.putVisible},
		{"empty_value_is_stored_not_missing", s.emptyValue},
		{"put_copies_the_value", s.putCopies},
		{"delete_removes_key_and_missing_delete_is_no_change", s.deleteKey},
		{"scan_returns_prefix_in_key_order", s.scanOrder},
		{"scan_stops_at_first_error_and_returns_it", s.scanStops},
		{"update_reads_its_own_writes", s.readsYourWrites},
		{"view_rejects_writes", s.viewReadOnly},
		{"failed_update_writes_nothing", s.updateAtomic},
		{"update_with_canceled_context_writes_nothing", s.updateCanceled},
		{"revision_grows_once_per_committed_change", s.revisionGrows},
		{"watch_from_revision_replays_later_batches_in_order", s.watchReplay},
		{"watch_from_current_revision_delivers_new_batches", s.watchCurrent},
		{"watch_reports_deletions", s.watchDeletes},
		{"watch_cancel_closes_channel", s.watchCancel},
		{"watch_compacted_revision_reports_err_compacted", s.watchCompacted},
		{"close_makes_later_calls_return_err_closed", s.closeStore},
		{"concurrent_updates_lose_no_increment", s.concurrentUpdates},
		{"instance_round_trips_with_address_index", s.instanceRoundTrip},
		{"second_live_instance_on_address_is_refused", s.addressInUse},
		{"terminated_instance_releases_addresses", s.terminatedReleases},
		{"delete_instance_releases_addresses", s.deleteReleases},
		{"instance_address_change_moves_index", s.addressChange},
		{"list_instances_in_id_order", s.listInstances},
		{"defaults_start_with_no_preference_and_round_trip", s.defaults},
		{"secrets_round_trip", s.secrets},
		{"key_pairs_round_trip_by_name_and_refuse_duplicates", s.keyPairs}, // keypairs.go
		{"usage_records_per_node_merge_and_delete", s.usageRecords},
		{"change_records_list_in_time_order_and_prune", s.changeRecords},
	}
	tests = append(tests, s.networkTests()...)
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

// WritePast returns a Compact hook for a store that keeps only its last
// history batches: it commits history+1 updates so that every earlier
// revision has left the history.
func WritePast(history int) func(t *testing.T, s imds.Store) {
	return func(t *testing.T, s imds.Store) {
		t.Helper()
		for i := 0; i <= history; i++ {
			mustPut(t, s, "storetest/compact", strconv.Itoa(i))
		}
	}
}

// NewInstance returns a valid running instance with one interface holding
// addrs (IPv4 and IPv6 mixed); n picks the id (i- and 17 hex digits), the
// MAC and the ENI id, so different n give different instances.
func NewInstance(t testing.TB, n int, addrs ...string) *imds.Instance {
	t.Helper()
	opts, err := imds.LaunchOptions(imds.OptionsRequest{}, imds.DefaultAccountDefaults(), false)
	if err != nil {
		t.Fatalf("launch options: %v", err)
	}
	ni := imds.NetworkInterface{
		MAC:         fmt.Sprintf("0e:00:00:00:%02x:%02x", (n>>8)&0xff, n&0xff),
		InterfaceID: fmt.Sprintf("eni-%017x", n),
		OwnerID:     "123456789012",
		SubnetID:    "subnet-0123456789abcdef0",
		VPCID:       "vpc-0123456789abcdef0",
	}
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("address %q: %v", s, err)
		}
		if a.Is4() {
			ni.PrivateIPv4s = append(ni.PrivateIPv4s, a.String())
		} else {
			ni.IPv6s = append(ni.IPv6s, a.String())
		}
	}
	in := &imds.Instance{
		InstanceID:        fmt.Sprintf("i-%017x", n),
		ReservationID:     fmt.Sprintf("r-%017x", n),
		AccountID:         "123456789012",
		Generation:        1,
		State:             imds.StateRunning,
		ImageID:           "ami-0123456789abcdef0",
		InstanceType:      "t3.micro",
		Architecture:      "x86_64",
		LaunchTime:        time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		InstanceLifecycle: "on-demand",
		Placement: imds.Placement{
			Region:             "us-east-1",
			AvailabilityZone:   "us-east-1a",
			AvailabilityZoneID: "use1-az1",
		},
		NetworkInterfaces: []imds.NetworkInterface{ni},
		MetadataOptions:   opts,
	}
	if err := in.Validate(); err != nil {
		t.Fatalf("NewInstance built an invalid instance: %v", err)
	}
	return in
}

type suite struct {
	open func(t *testing.T) imds.Store
	opts Options
}

// store opens a fresh store that is closed when the subtest ends.
func (s suite) store(t *testing.T) imds.Store {
	t.Helper()
	st := s.open(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil && !errors.Is(err, imds.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

var errStop = errors.New("storetest: stop")

func (s suite) getMissing(t *testing.T) {
	st := s.store(t)
	err := st.View(t.Context(), func(tx imds.Tx) error {
		_, err := tx.Get("nope")
		return err
	})
	if !errors.Is(err, imds.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func (s suite) putVisible(t *testing.T) {
	st := s.store(t)
	mustPut(t, st, "a/b", "one")
	mustPut(t, st, "a/b", "two")
	if got := mustGet(t, st, "a/b"); got != "two" {
		t.Fatalf("Get = %q, want %q (last write wins)", got, "two")
	}
}

func (s suite) emptyValue(t *testing.T) {
	st := s.store(t)
	mustUpdate(t, st, func(tx imds.Tx) error { return tx.Put("empty", []byte{}) })
	err := st.View(t.Context(), func(tx imds.Tx) error {
		v, err := tx.Get("empty")
		if err != nil {
			return err
		}
		if len(v) != 0 {
			return fmt.Errorf("value = %q, want empty", v)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Get(empty value): %v", err)
	}
}

func (s suite) putCopies(t *testing.T) {
	st := s.store(t)
	buf := []byte("original")
	mustUpdate(t, st, func(tx imds.Tx) error {
		if err := tx.Put("k", buf); err != nil {
			return err
		}
		copy(buf, "XXXXXXXX") // the caller reuses its buffer before commit
		return nil
	})
	if got := mustGet(t, st, "k"); got != "original" {
		t.Fatalf("Get = %q, want %q: Put must copy the value", got, "original")
	}
}

func (s suite) deleteKey(t *testing.T) {
	st := s.store(t)
	mustPut(t, st, "k", "v")
	mustUpdate(t, st, func(tx imds.Tx) error { return tx.Delete("k") })
	if _, ok := get(t, st, "k"); ok {
		t.Fatal("key still present after Delete")
	}
	before := revision(t, st)
	mustUpdate(t, st, func(tx imds.Tx) error { return tx.Delete("never-there") })
	if after := revision(t, st); after != before {
		t.Fatalf("deleting a missing key moved the revision %d -> %d", before, after)
	}
	// A key put and deleted in one transaction never existed.
	mustUpdate(t, st, func(tx imds.Tx) error {
		if err := tx.Put("transient", []byte("x")); err != nil {
			return err
		}
		return tx.Delete("transient")
	})
	if _, ok := get(t, st, "transient"); ok {
		t.Fatal("key put then deleted in one transaction is present")
	}
	if after := revision(t, st); after != before {
		t.Fatalf("put+delete of a new key moved the revision %d -> %d", before, after)
	}
}

func (s suite) scanOrder(t *testing.T) {
	st := s.store(t)
	// Written out of order, with neighbours that share a textual prefix
	// but not the scanned one.
	for _, k := range []string{"p/c", "p", "p/a/x", "q/a", "p/b", "p0", "o/z", "p/a"} {
		mustPut(t, st, k, "v:"+k)
	}
	want := []string{"p/a", "p/a/x", "p/b", "p/c"}
	check := func(name string, tx imds.Tx) {
		t.Helper()
		var got []string
		err := tx.Scan("p/", func(k string, v []byte) error {
			if string(v) != "v:"+k {
				return fmt.Errorf("value of %s = %q", k, v)
			}
			got = append(got, k)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: Scan: %v", name, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: Scan(p/) = %q, want %q", name, got, want)
		}
	}
	err := st.View(t.Context(), func(tx imds.Tx) error { check("view", tx); return nil })
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, st, func(tx imds.Tx) error { check("update", tx); return nil })

	var all []string
	err = st.View(t.Context(), func(tx imds.Tx) error {
		return tx.Scan("", func(k string, _ []byte) error { all = append(all, k); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	wantAll := []string{"o/z", "p", "p/a", "p/a/x", "p/b", "p/c", "p0", "q/a"}
	if !slices.Equal(all, wantAll) {
		t.Fatalf("Scan(\"\") = %q, want %q", all, wantAll)
	}
}

func (s suite) scanStops(t *testing.T) {
	st := s.store(t)
	for _, k := range []string{"s/1", "s/2", "s/3"} {
		mustPut(t, st, k, "v")
	}
	var seen []string
	err := st.View(t.Context(), func(tx imds.Tx) error {
		return tx.Scan("s/", func(k string, _ []byte) error {
			seen = append(seen, k)
			if k == "s/2" {
				return errStop
			}
			return nil
		})
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("View = %v, want fn's error", err)
	}
	if !slices.Equal(seen, []string{"s/1", "s/2"}) {
		t.Fatalf("Scan visited %q, want it to stop after s/2", seen)
	}
}

func (s suite) readsYourWrites(t *testing.T) {
	st := s.store(t)
	mustPut(t, st, "r/old", "1")
	mustPut(t, st, "r/gone", "1")
	mustUpdate(t, st, func(tx imds.Tx) error {
		if err := tx.Put("r/new", []byte("2")); err != nil {
			return err
		}
		if err := tx.Put("r/old", []byte("3")); err != nil {
			return err
		}
		if err := tx.Delete("r/gone"); err != nil {
			return err
		}
		if v, err := tx.Get("r/new"); err != nil || string(v) != "2" {
			return fmt.Errorf("Get(r/new) = %q, %v; want the pending value", v, err)
		}
		if v, err := tx.Get("r/old"); err != nil || string(v) != "3" {
			return fmt.Errorf("Get(r/old) = %q, %v; want the overwritten value", v, err)
		}
		if _, err := tx.Get("r/gone"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("Get(r/gone) = %v, want ErrNotFound after Delete", err)
		}
		got := map[string]string{}
		var order []string
		err := tx.Scan("r/", func(k string, v []byte) error {
			got[k] = string(v)
			order = append(order, k)
			// Writing while scanning must not disturb the scan.
			return tx.Put("r/written-during-scan/"+k, []byte("x"))
		})
		if err != nil {
			return err
		}
		if !slices.Equal(order, []string{"r/new", "r/old"}) || got["r/new"] != "2" || got["r/old"] != "3" {
			return fmt.Errorf("scan inside update = %v (order %q), want pending writes merged", got, order)
		}
		return nil
	})
	if got := mustGet(t, st, "r/old"); got != "3" {
		t.Fatalf("after commit r/old = %q, want 3", got)
	}
	if _, ok := get(t, st, "r/gone"); ok {
		t.Fatal("after commit r/gone is present")
	}
	if _, ok := get(t, st, "r/written-during-scan/r/old"); !ok {
		t.Fatal("a write made during Scan was lost")
	}
}

func (s suite) viewReadOnly(t *testing.T) {
	st := s.store(t)
	before := revision(t, st)
	var putErr, delErr error
	err := st.View(t.Context(), func(tx imds.Tx) error {
		putErr = tx.Put("k", []byte("v"))
		delErr = tx.Delete("k")
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if putErr == nil || delErr == nil {
		t.Fatalf("Put, Delete in View = %v, %v; want errors", putErr, delErr)
	}
	if _, ok := get(t, st, "k"); ok {
		t.Fatal("a Put in View was written")
	}
	if after := revision(t, st); after != before {
		t.Fatalf("View moved the revision %d -> %d", before, after)
	}
}

func (s suite) updateAtomic(t *testing.T) {
	st := s.store(t)
	mustPut(t, st, "keep", "old")
	before := revision(t, st)
	ch := watch(t, st, before)
	err := st.Update(t.Context(), func(tx imds.Tx) error {
		if err := tx.Put("keep", []byte("new")); err != nil {
			return err
		}
		if err := tx.Put("added", []byte("x")); err != nil {
			return err
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	if got := mustGet(t, st, "keep"); got != "old" {
		t.Fatalf("keep = %q after a failed Update, want old", got)
	}
	if _, ok := get(t, st, "added"); ok {
		t.Fatal("a failed Update wrote a key")
	}
	if after := revision(t, st); after != before {
		t.Fatalf("a failed Update moved the revision %d -> %d", before, after)
	}
	expectNoBatch(t, ch)
}

func (s suite) updateCanceled(t *testing.T) {
	st := s.store(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := st.Update(ctx, func(tx imds.Tx) error { return tx.Put("k", []byte("v")) })
	if err == nil {
		t.Fatal("Update with a canceled context succeeded")
	}
	if _, ok := get(t, st, "k"); ok {
		t.Fatal("Update with a canceled context wrote its key")
	}
}

func (s suite) revisionGrows(t *testing.T) {
	st := s.store(t)
	r0 := revision(t, st)
	ch := watch(t, st, r0)

	mustPut(t, st, "a", "1")
	r1 := revision(t, st)
	if r1 <= r0 {
		t.Fatalf("revision after a write = %d, want > %d", r1, r0)
	}
	if b := nextBatch(t, ch); b.Revision != r1 {
		t.Fatalf("batch revision = %d, want the View revision %d", b.Revision, r1)
	}

	// Reading, and writing nothing, is no change.
	mustUpdate(t, st, func(tx imds.Tx) error { _, _ = tx.Get("a"); return nil })
	if r := revision(t, st); r != r1 {
		t.Fatalf("an Update that wrote nothing moved the revision %d -> %d", r1, r)
	}

	// Several writes in one Update are one change.
	mustUpdate(t, st, func(tx imds.Tx) error {
		for _, k := range []string{"b", "c", "d"} {
			if err := tx.Put(k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	r2 := revision(t, st)
	if r2 <= r1 {
		t.Fatalf("revision after a second write = %d, want > %d", r2, r1)
	}
	b := nextBatch(t, ch)
	if b.Revision != r2 || len(b.Changes) != 3 {
		t.Fatalf("batch = rev %d with %d changes, want rev %d with 3", b.Revision, len(b.Changes), r2)
	}
	expectNoBatch(t, ch)

	// The Update's transaction reads at the revision before its commit.
	var inside int64
	mustUpdate(t, st, func(tx imds.Tx) error { inside = tx.Revision(); return tx.Put("e", nil) })
	if inside != r2 {
		t.Fatalf("Tx.Revision in Update = %d, want %d", inside, r2)
	}
}

// history commits three transactions and returns the batches they should
// produce, with the revision before them.
func history(t *testing.T, st imds.Store) (int64, []imds.Batch) {
	t.Helper()
	start := revision(t, st)
	txs := [][]imds.Change{
		{{Key: "h/a", Value: []byte("1")}, {Key: "h/b", Value: []byte("2")}},
		{{Key: "h/a", Deleted: true}, {Key: "h/c", Value: []byte("3")}},
		{{Key: "h/b", Value: []byte("4")}},
	}
	var want []imds.Batch
	for _, changes := range txs {
		mustUpdate(t, st, func(tx imds.Tx) error {
			for _, c := range changes {
				var err error
				if c.Deleted {
					err = tx.Delete(c.Key)
				} else {
					err = tx.Put(c.Key, c.Value)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		want = append(want, imds.Batch{Revision: revision(t, st), Changes: changes})
	}
	return start, want
}

func (s suite) watchReplay(t *testing.T) {
	st := s.store(t)
	start, want := history(t, st)
	for from := range want {
		rev := start
		if from > 0 {
			rev = want[from-1].Revision
		}
		ch := watch(t, st, rev)
		for _, w := range want[from:] {
			expectBatch(t, nextBatch(t, ch), w)
		}
		expectNoBatch(t, ch)
		// And the watch goes on with new commits.
		mustPut(t, st, "h/later", strconv.Itoa(from))
		later := imds.Batch{
			Revision: revision(t, st),
			Changes:  []imds.Change{{Key: "h/later", Value: []byte(strconv.Itoa(from))}},
		}
		expectBatch(t, nextBatch(t, ch), later)
		// Later iterations replay this batch too.
		want = append(want, later)
	}
}

func (s suite) watchCurrent(t *testing.T) {
	st := s.store(t)
	mustPut(t, st, "before", "x")
	ch := watch(t, st, revision(t, st))
	expectNoBatch(t, ch)
	for i := range 3 {
		mustPut(t, st, "w", strconv.Itoa(i))
		expectBatch(t, nextBatch(t, ch), imds.Batch{
			Revision: revision(t, st),
			Changes:  []imds.Change{{Key: "w", Value: []byte(strconv.Itoa(i))}},
		})
	}
}

func (s suite) watchDeletes(t *testing.T) {
	st := s.store(t)
	mustPut(t, st, "d/1", "x")
	mustPut(t, st, "d/2", "y")
	ch := watch(t, st, revision(t, st))
	mustUpdate(t, st, func(tx imds.Tx) error {
		if err := tx.Delete("d/1"); err != nil {
			return err
		}
		if err := tx.Delete("d/2"); err != nil {
			return err
		}
		return tx.Delete("d/never")
	})
	expectBatch(t, nextBatch(t, ch), imds.Batch{
		Revision: revision(t, st),
		Changes:  []imds.Change{{Key: "d/1", Deleted: true}, {Key: "d/2", Deleted: true}},
	})
}

func (s suite) watchCancel(t *testing.T) {
	st := s.store(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := st.Watch(ctx, revision(t, st))
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	expectClosed(t, ch)
	// The store is unharmed: writes and other watches still work.
	ch2 := watch(t, st, revision(t, st))
	mustPut(t, st, "k", "v")
	expectBatch(t, nextBatch(t, ch2), imds.Batch{
		Revision: revision(t, st),
		Changes:  []imds.Change{{Key: "k", Value: []byte("v")}},
	})
}

func (s suite) watchCompacted(t *testing.T) {
	if s.opts.Compact == nil {
		t.Skip("backend keeps its whole history (Options.Compact is nil)")
	}
	st := s.store(t)
	mustPut(t, st, "c", "1")
	old := revision(t, st)
	mustPut(t, st, "c", "2")
	mustPut(t, st, "c", "3")
	s.opts.Compact(t, st)
	ch := watch(t, st, old)
	b := nextBatch(t, ch)
	if !errors.Is(b.Err, imds.ErrCompacted) {
		t.Fatalf("first batch from a compacted revision = %+v, want Err ErrCompacted", b)
	}
	expectClosed(t, ch)

	// Watching again from the current revision works.
	ch = watch(t, st, revision(t, st))
	mustPut(t, st, "c", "4")
	expectBatch(t, nextBatch(t, ch), imds.Batch{
		Revision: revision(t, st),
		Changes:  []imds.Change{{Key: "c", Value: []byte("4")}},
	})
}

func (s suite) closeStore(t *testing.T) {
	st := s.store(t)
	mustPut(t, st, "k", "v")
	ch := watch(t, st, revision(t, st))
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// An open watch ends; it may say why first.
	expectClosed(t, ch)
	ctx := t.Context()
	if err := st.View(ctx, func(imds.Tx) error { return nil }); !errors.Is(err, imds.ErrClosed) {
		t.Errorf("View after Close = %v, want ErrClosed", err)
	}
	called := false
	if err := st.Update(ctx, func(imds.Tx) error { called = true; return nil }); !errors.Is(err, imds.ErrClosed) {
		t.Errorf("Update after Close = %v, want ErrClosed", err)
	}
	if called {
		t.Error("Update after Close ran fn")
	}
	if _, err := st.Watch(ctx, 0); !errors.Is(err, imds.ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
	if err := st.Close(); !errors.Is(err, imds.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

func (s suite) concurrentUpdates(t *testing.T) {
	st := s.store(t)
	start := revision(t, st)
	ch := watch(t, st, start)
	writers, n := s.opts.Writers, s.opts.Increments
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for range n {
				err := st.Update(t.Context(), func(tx imds.Tx) error {
					cur := 0
					v, err := tx.Get("counter")
					switch {
					case errors.Is(err, imds.ErrNotFound):
					case err != nil:
						return err
					default:
						if cur, err = strconv.Atoi(string(v)); err != nil {
							return err
						}
					}
					if err := tx.Put("counter", []byte(strconv.Itoa(cur+1))); err != nil {
						return err
					}
					// Each writer also keeps its own tally in the same
					// transaction, so atomicity across keys is checked too.
					mine := 0
					if v, err := tx.Get("tally/" + strconv.Itoa(w)); err == nil {
						mine, _ = strconv.Atoi(string(v))
					}
					return tx.Put("tally/"+strconv.Itoa(w), []byte(strconv.Itoa(mine+1)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Update: %v", err)
	}
	total := writers * n
	if got := mustGet(t, st, "counter"); got != strconv.Itoa(total) {
		t.Fatalf("counter = %s after %d increments: updates were lost", got, total)
	}
	for w := range writers {
		if got := mustGet(t, st, "tally/"+strconv.Itoa(w)); got != strconv.Itoa(n) {
			t.Fatalf("tally/%d = %s, want %d", w, got, n)
		}
	}
	// One batch per commit, revisions increasing, each counter value once.
	last := start
	for i := 1; i <= total; i++ {
		b := nextBatch(t, ch)
		if b.Revision <= last {
			t.Fatalf("batch %d revision %d after %d", i, b.Revision, last)
		}
		last = b.Revision
		var counter string
		for _, c := range b.Changes {
			if c.Key == "counter" {
				counter = string(c.Value)
			}
		}
		if counter != strconv.Itoa(i) {
			t.Fatalf("batch %d sets counter to %q, want %d", i, counter, i)
		}
	}
	expectNoBatch(t, ch)
}

func (s suite) instanceRoundTrip(t *testing.T) {
	st := s.store(t)
	in := NewInstance(t, 1, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	err := st.View(t.Context(), func(tx imds.Tx) error {
		got, err := imds.GetInstance(tx, in.InstanceID)
		if err != nil {
			return err
		}
		if got.InstanceID != in.InstanceID || !slices.Equal(got.Addresses(), in.Addresses()) || got.MetadataOptions != in.MetadataOptions || !got.LaunchTime.Equal(in.LaunchTime) {
			return fmt.Errorf("GetInstance = %+v, want %+v", got, in)
		}
		for _, a := range []string{"192.0.2.10", "2001:db8::10", "::ffff:192.0.2.10"} {
			id, err := imds.InstanceIDByAddress(tx, a)
			if err != nil || id != in.InstanceID {
				return fmt.Errorf("InstanceIDByAddress(%s) = %q, %v; want %s", a, id, err, in.InstanceID)
			}
		}
		if _, err := imds.InstanceIDByAddress(tx, "192.0.2.11"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("InstanceIDByAddress(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := imds.GetInstance(tx, "i-00000000000000999"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("GetInstance(unknown) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An invalid instance is refused and writes nothing.
	bad := NewInstance(t, 2, "192.0.2.20")
	bad.AccountID = "12"
	before := revision(t, st)
	err = st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutInstance(tx, bad) })
	if !errors.Is(err, imds.ErrInvalid) {
		t.Fatalf("PutInstance(invalid) = %v, want ErrInvalid", err)
	}
	if r := revision(t, st); r != before {
		t.Fatalf("refused PutInstance moved the revision %d -> %d", before, r)
	}
}

func (s suite) addressInUse(t *testing.T) {
	st := s.store(t)
	a := NewInstance(t, 1, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	before := revision(t, st)
	for _, addr := range []string{"192.0.2.10", "2001:db8::10"} {
		b := NewInstance(t, 2, "192.0.2.99", addr)
		err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutInstance(tx, b) })
		if !errors.Is(err, imds.ErrAddressInUse) {
			t.Fatalf("second live instance on %s: %v, want ErrAddressInUse", addr, err)
		}
		if _, ok := get(t, st, imds.InstanceKey(b.InstanceID)); ok {
			t.Fatalf("refused instance on %s was written", addr)
		}
		if id := ownerOf(t, st, "192.0.2.99"); id != "" {
			t.Fatalf("refused instance claimed 192.0.2.99 (owner %s)", id)
		}
	}
	if r := revision(t, st); r != before {
		t.Fatalf("refused PutInstance moved the revision %d -> %d", before, r)
	}
	// Rewriting the holder itself is fine.
	a.Generation++
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	// A stopped instance is still live and keeps its address.
	a.State = imds.StateStopped
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	b := NewInstance(t, 2, "192.0.2.10")
	err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutInstance(tx, b) })
	if !errors.Is(err, imds.ErrAddressInUse) {
		t.Fatalf("instance on a stopped instance's address: %v, want ErrAddressInUse", err)
	}
}

func (s suite) terminatedReleases(t *testing.T) {
	st := s.store(t)
	a := NewInstance(t, 1, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	a.State = imds.StateTerminated
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	if id := ownerOf(t, st, "192.0.2.10"); id != "" {
		t.Fatalf("terminated instance still holds 192.0.2.10 (owner %s)", id)
	}
	if _, ok := get(t, st, imds.InstanceKey(a.InstanceID)); !ok {
		t.Fatal("terminated instance was removed; it must stay listed")
	}
	b := NewInstance(t, 2, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, b) })
	if id := ownerOf(t, st, "2001:db8::10"); id != b.InstanceID {
		t.Fatalf("owner of 2001:db8::10 = %q, want the new instance %s", id, b.InstanceID)
	}
	// Rewriting the terminated instance does not steal the address back.
	a.Generation++
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	if id := ownerOf(t, st, "192.0.2.10"); id != b.InstanceID {
		t.Fatalf("owner of 192.0.2.10 = %q after rewriting the terminated instance, want %s", id, b.InstanceID)
	}
}

func (s suite) deleteReleases(t *testing.T) {
	st := s.store(t)
	a := NewInstance(t, 1, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.DeleteInstance(tx, a.InstanceID) })
	if id := ownerOf(t, st, "192.0.2.10"); id != "" {
		t.Fatalf("deleted instance still holds 192.0.2.10 (owner %s)", id)
	}
	if _, ok := get(t, st, imds.InstanceKey(a.InstanceID)); ok {
		t.Fatal("deleted instance is still stored")
	}
	err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.DeleteInstance(tx, a.InstanceID) })
	if !errors.Is(err, imds.ErrNotFound) {
		t.Fatalf("deleting a missing instance = %v, want ErrNotFound", err)
	}
	b := NewInstance(t, 2, "192.0.2.10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, b) })
}

func (s suite) addressChange(t *testing.T) {
	st := s.store(t)
	a := NewInstance(t, 1, "192.0.2.10", "192.0.2.11")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	a.NetworkInterfaces[0].PrivateIPv4s = []string{"192.0.2.11", "192.0.2.12"}
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	for addr, want := range map[string]string{"192.0.2.10": "", "192.0.2.11": a.InstanceID, "192.0.2.12": a.InstanceID} {
		if got := ownerOf(t, st, addr); got != want {
			t.Errorf("owner of %s = %q, want %q", addr, got, want)
		}
	}
}

func (s suite) listInstances(t *testing.T) {
	st := s.store(t)
	for _, n := range []int{3, 1, 2} {
		in := NewInstance(t, n, fmt.Sprintf("192.0.2.%d", n))
		if n == 2 {
			in.State = imds.StateTerminated
		}
		mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	}
	mustPut(t, st, "instancesX", "not an instance") // shares a textual prefix
	var ids []string
	err := st.View(t.Context(), func(tx imds.Tx) error {
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			ids = append(ids, in.InstanceID)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("ListInstances: %v", err)
	}
	want := []string{NewInstance(t, 1).InstanceID, NewInstance(t, 2).InstanceID, NewInstance(t, 3).InstanceID}
	if !slices.Equal(ids, want) {
		t.Fatalf("ListInstances = %q, want %q (terminated included, id order)", ids, want)
	}
}

func (s suite) defaults(t *testing.T) {
	st := s.store(t)
	err := st.View(t.Context(), func(tx imds.Tx) error {
		d, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		if d != imds.DefaultAccountDefaults() {
			return fmt.Errorf("GetDefaults on an empty store = %+v, want %+v", d, imds.DefaultAccountDefaults())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := imds.DefaultAccountDefaults()
	want.HttpTokens = imds.Required
	want.HttpPutResponseHopLimit = 2
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutDefaults(tx, want) })
	err = st.View(t.Context(), func(tx imds.Tx) error {
		d, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		if d != want {
			return fmt.Errorf("GetDefaults = %+v, want %+v", d, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := want
	bad.HttpTokens = "sometimes"
	if err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutDefaults(tx, bad) }); !errors.Is(err, imds.ErrInvalid) {
		t.Fatalf("PutDefaults(invalid) = %v, want ErrInvalid", err)
	}
}

func (s suite) secrets(t *testing.T) {
	st := s.store(t)
	secret := []byte{0, 1, 2, 0xff, 'k'}
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutSecret(tx, "keyring", secret) })
	var got []byte
	err := st.View(t.Context(), func(tx imds.Tx) error {
		var err error
		got, err = imds.GetSecret(tx, "keyring")
		if err != nil {
			return err
		}
		if _, err := imds.GetSecret(tx, "other"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("GetSecret(missing) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("GetSecret = %x, want %x", got, secret)
	}
}

// Helpers.

func mustUpdate(t *testing.T, st imds.Store, fn func(imds.Tx) error) {
	t.Helper()
	if err := st.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustPut(t *testing.T, st imds.Store, key, value string) {
	t.Helper()
	mustUpdate(t, st, func(tx imds.Tx) error { return tx.Put(key, []byte(value)) })
}

func get(t *testing.T, st imds.Store, key string) (string, bool) {
	t.Helper()
	var v string
	err := st.View(t.Context(), func(tx imds.Tx) error {
		b, err := tx.Get(key)
		v = string(b)
		return err
	})
	if errors.Is(err, imds.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return v, true
}

func mustGet(t *testing.T, st imds.Store, key string) string {
	t.Helper()
	v, ok := get(t, st, key)
	if !ok {
		t.Fatalf("Get(%s): not found", key)
	}
	return v
}

func ownerOf(t *testing.T, st imds.Store, addr string) string {
	t.Helper()
	var id string
	err := st.View(t.Context(), func(tx imds.Tx) error {
		var err error
		id, err = imds.InstanceIDByAddress(tx, addr)
		return err
	})
	if errors.Is(err, imds.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("InstanceIDByAddress(%s): %v", addr, err)
	}
	return id
}

func revision(t *testing.T, st imds.Store) int64 {
	t.Helper()
	var rev int64
	if err := st.View(t.Context(), func(tx imds.Tx) error { rev = tx.Revision(); return nil }); err != nil {
		t.Fatalf("View: %v", err)
	}
	return rev
}

func watch(t *testing.T, st imds.Store, rev int64) <-chan imds.Batch {
	t.Helper()
	ch, err := st.Watch(t.Context(), rev)
	if err != nil {
		t.Fatalf("Watch(%d): %v", rev, err)
	}
	return ch
}

func nextBatch(t *testing.T, ch <-chan imds.Batch) imds.Batch {
	t.Helper()
	select {
	case b, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want a batch")
		}
		return b
	case <-time.After(wait):
		t.Fatalf("no batch within %s", wait)
	}
	return imds.Batch{}
}

func expectNoBatch(t *testing.T, ch <-chan imds.Batch) {
	t.Helper()
	select {
	case b, ok := <-ch:
		if ok {
			t.Fatalf("unexpected batch %+v", b)
		}
		t.Fatal("watch channel closed unexpectedly")
	case <-time.After(quiet):
	}
}

// expectClosed drains ch until it closes; batches carrying an error are
// allowed on the way (a store may say why it ends a watch), data is not.
func expectClosed(t *testing.T, ch <-chan imds.Batch) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case b, ok := <-ch:
			if !ok {
				return
			}
			if b.Err == nil {
				t.Fatalf("batch %+v on a watch that should end", b)
			}
		case <-timeout:
			t.Fatalf("watch channel not closed within %s", wait)
		}
	}
}

// expectBatch compares a batch with the expected one. The order of changes
// within a batch is not part of the contract, so both are sorted by key.
func expectBatch(t *testing.T, got, want imds.Batch) {
	t.Helper()
	if got.Err != nil {
		t.Fatalf("batch error %v, want rev %d", got.Err, want.Revision)
	}
	if got.Revision != want.Revision {
		t.Fatalf("batch revision %d, want %d (%+v)", got.Revision, want.Revision, got)
	}
	norm := func(cs []imds.Change) []string {
		out := make([]string, 0, len(cs))
		for _, c := range cs {
			if c.Deleted {
				if len(c.Value) != 0 {
					out = append(out, c.Key+" deleted with value "+string(c.Value))
					continue
				}
				out = append(out, c.Key+" deleted")
			} else {
				out = append(out, c.Key+"="+string(c.Value))
			}
		}
		slices.Sort(out)
		return out
	}
	if g, w := norm(got.Changes), norm(want.Changes); !slices.Equal(g, w) {
		t.Fatalf("batch %d changes %q, want %q", got.Revision, g, w)
	}
}
