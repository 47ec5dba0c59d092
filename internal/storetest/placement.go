package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Key ranges and the per-host layout: a node follows only the prefixes it
// serves (Store.WatchPrefixes), instances lie in their host's range, and a
// move between hosts is one transaction.

func (s suite) placementTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"watch_prefixes_of_no_prefix_is_invalid", s.watchPrefixesNone},
		{"watch_prefixes_replays_only_matching_changes_in_order", s.watchPrefixesReplay},
		{"watch_prefixes_delivers_new_batches_whole", s.watchPrefixesLive},
		{"watch_prefixes_reports_progress_past_other_changes", s.watchPrefixesProgress},
		{"host_range_holds_only_its_instances", s.hostRange},
		{"move_between_hosts_is_one_transaction", s.moveBetweenHosts},
		{"previous_layout_is_read_and_migrated", s.migrateLayout},
	}
}

func watchPrefixes(t *testing.T, st imds.Store, rev int64, prefixes ...string) <-chan imds.Batch {
	t.Helper()
	ch, err := st.WatchPrefixes(t.Context(), rev, prefixes)
	if err != nil {
		t.Fatalf("WatchPrefixes(%d, %q): %v", rev, prefixes, err)
	}
	return ch
}

// nextChanges is the next batch with changes (or an error), skipping
// progress batches, whose revisions must grow.
func nextChanges(t *testing.T, ch <-chan imds.Batch) imds.Batch {
	t.Helper()
	var last int64
	for {
		b := nextBatch(t, ch)
		if b.Err != nil || len(b.Changes) > 0 {
			if b.Err == nil && b.Revision <= last {
				t.Fatalf("batch %d after progress to %d", b.Revision, last)
			}
			return b
		}
		if b.Revision < last {
			t.Fatalf("progress went back from %d to %d", last, b.Revision)
		}
		last = b.Revision
	}
}

// expectNoChanges fails on any batch with changes within the quiet period;
// progress batches are allowed.
func expectNoChanges(t *testing.T, ch <-chan imds.Batch) {
	t.Helper()
	deadline := time.After(quiet)
	for {
		select {
		case b, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed unexpectedly")
			}
			if b.Err != nil || len(b.Changes) > 0 {
				t.Fatalf("unexpected batch %+v", b)
			}
		case <-deadline:
			return
		}
	}
}

func (s suite) watchPrefixesNone(t *testing.T) {
	st := s.store(t)
	if _, err := st.WatchPrefixes(t.Context(), 0, nil); !errors.Is(err, imds.ErrInvalid) {
		t.Fatalf("WatchPrefixes of no prefix = %v, want ErrInvalid", err)
	}
}

// writeMixed commits transactions over a/, b/ and c/ and returns the
// batches a watcher of a/ and b/ must get.
func writeMixed(t *testing.T, st imds.Store) []imds.Batch {
	t.Helper()
	var want []imds.Batch
	step := func(keep []imds.Change, fn func(tx imds.Tx) error) {
		mustUpdate(t, st, fn)
		if len(keep) > 0 {
			want = append(want, imds.Batch{Revision: revision(t, st), Changes: keep})
		}
	}
	step([]imds.Change{{Key: "a/1", Value: []byte("x")}}, func(tx imds.Tx) error { return tx.Put("a/1", []byte("x")) })
	step(nil, func(tx imds.Tx) error { return tx.Put("c/1", []byte("y")) })
	// One transaction over both watched prefixes and an unwatched one: one
	// batch, with the watched changes only.
	step([]imds.Change{{Key: "a/2", Value: []byte("z")}, {Key: "b/1", Value: []byte("w")}}, func(tx imds.Tx) error {
		for _, kv := range [][2]string{{"a/2", "z"}, {"b/1", "w"}, {"c/2", "v"}} {
			if err := tx.Put(kv[0], []byte(kv[1])); err != nil {
				return err
			}
		}
		return nil
	})
	step(nil, func(tx imds.Tx) error { return tx.Delete("c/1") })
	step([]imds.Change{{Key: "a/1", Deleted: true}, {Key: "b/2", Value: []byte("u")}}, func(tx imds.Tx) error {
		if err := tx.Delete("a/1"); err != nil {
			return err
		}
		return tx.Put("b/2", []byte("u"))
	})
	step([]imds.Change{{Key: "b/1", Value: []byte("t")}}, func(tx imds.Tx) error { return tx.Put("b/1", []byte("t")) })
	return want
}

func (s suite) watchPrefixesReplay(t *testing.T) {
	st := s.store(t)
	mustPut(t, st, "c/0", "before")
	start := revision(t, st)
	want := writeMixed(t, st)
	ch := watchPrefixes(t, st, start, "a/", "b/")
	for _, w := range want {
		expectBatch(t, nextChanges(t, ch), w)
	}
	expectNoChanges(t, ch)
	// A prefix covered by another is not reported twice.
	ch = watchPrefixes(t, st, start, "b/", "b/1", "b/")
	for _, w := range want {
		var kept []imds.Change
		for _, c := range w.Changes {
			if c.Key[0] == 'b' {
				kept = append(kept, c)
			}
		}
		if kept != nil {
			expectBatch(t, nextChanges(t, ch), imds.Batch{Revision: w.Revision, Changes: kept})
		}
	}
	expectNoChanges(t, ch)
}

func (s suite) watchPrefixesLive(t *testing.T) {
	st := s.store(t)
	ch := watchPrefixes(t, st, revision(t, st), "a/", "b/")
	want := writeMixed(t, st)
	for _, w := range want {
		expectBatch(t, nextChanges(t, ch), w)
	}
	expectNoChanges(t, ch)
}

// A watcher of a/ learns that the store moved on past changes elsewhere,
// without receiving them.
func (s suite) watchPrefixesProgress(t *testing.T) {
	for _, prefixes := range [][]string{{"b/"}, {"a/", "b/"}} {
		st := s.store(t)
		ch := watchPrefixes(t, st, revision(t, st), prefixes...)
		mustPut(t, st, "c/1", "x")
		mustPut(t, st, "c/2", "y")
		want := revision(t, st)
		for {
			b := nextBatch(t, ch)
			if b.Err != nil || len(b.Changes) > 0 {
				t.Fatalf("watch of %q got %+v, want progress only", prefixes, b)
			}
			if b.Revision >= want {
				break
			}
		}
		// Changes still come after progress, at later revisions.
		mustPut(t, st, "b/1", "z")
		expectBatch(t, nextChanges(t, ch), imds.Batch{Revision: revision(t, st), Changes: []imds.Change{{Key: "b/1", Value: []byte("z")}}})
	}
}

func placed(t *testing.T, n int, host string, addrs ...string) *imds.Instance {
	t.Helper()
	in := NewInstance(t, n, addrs...)
	in.Placement.HostID = host
	return in
}

func hostIDs(t *testing.T, st imds.Store, host string) []string {
	t.Helper()
	var ids []string
	err := st.View(t.Context(), func(tx imds.Tx) error {
		ids = ids[:0]
		return imds.ListHostInstances(tx, host, func(in *imds.Instance) error {
			ids = append(ids, in.InstanceID)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (s suite) hostRange(t *testing.T) {
	st := s.store(t)
	a := placed(t, 1, "host-a", "192.0.2.1")
	b := placed(t, 2, "host-b", "192.0.2.2")
	// A host id may hold a slash; its range must not take in another's.
	c := placed(t, 3, "host-a/x", "192.0.2.3")
	u := placed(t, 4, "", "192.0.2.4")
	for _, in := range []*imds.Instance{a, b, c, u} {
		mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	}
	var keys []string
	err := st.View(t.Context(), func(tx imds.Tx) error {
		keys = keys[:0]
		return tx.Scan(imds.HostPrefix("host-a"), func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("host-a's range holds %q, want only %s", keys, a.InstanceID)
	}
	if id, ok := imds.IsInstanceKey(keys[0]); !ok || id != a.InstanceID {
		t.Fatalf("IsInstanceKey(%q) = %q, %v, want %s", keys[0], id, ok, a.InstanceID)
	}
	for host, want := range map[string]string{"host-a": a.InstanceID, "host-b": b.InstanceID, "host-a/x": c.InstanceID} {
		if got := hostIDs(t, st, host); len(got) != 1 || got[0] != want {
			t.Errorf("instances on %s = %q, want [%s]", host, got, want)
		}
	}
	var all []string
	mustView(t, st, func(tx imds.Tx) error {
		return imds.ListInstances(tx, func(in *imds.Instance) error { all = append(all, in.InstanceID); return nil })
	})
	if len(all) != 4 {
		t.Fatalf("ListInstances = %q, want 4 instances", all)
	}
	for _, in := range []*imds.Instance{a, b, c, u} {
		mustView(t, st, func(tx imds.Tx) error {
			got, err := imds.GetInstance(tx, in.InstanceID)
			if err != nil {
				return err
			}
			if got.Placement.HostID != in.Placement.HostID {
				t.Errorf("GetInstance(%s) host %q, want %q", in.InstanceID, got.Placement.HostID, in.Placement.HostID)
			}
			return nil
		})
	}
}

func mustView(t *testing.T, st imds.Store, fn func(imds.Tx) error) {
	t.Helper()
	if err := st.View(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

func (s suite) moveBetweenHosts(t *testing.T) {
	st := s.store(t)
	in := placed(t, 1, "host-b", "192.0.2.1")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	rev := revision(t, st)
	src := watchPrefixes(t, st, rev, imds.NodePrefixes("host-b")...)
	dst := watchPrefixes(t, st, rev, imds.NodePrefixes("host-a")...)
	all := watchPrefixes(t, st, rev, imds.NodePrefixes("")...)
	other := watchPrefixes(t, st, rev, imds.NodePrefixes("host-c")...)

	in.Placement.HostID = "host-a"
	in.Generation++
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	moved := revision(t, st)

	b := nextChanges(t, src)
	if b.Revision != moved || len(b.Changes) != 1 || !b.Changes[0].Deleted {
		t.Fatalf("source host saw %+v, want the record's deletion at %d", b, moved)
	}
	b = nextChanges(t, dst)
	if b.Revision != moved || len(b.Changes) != 1 || b.Changes[0].Deleted {
		t.Fatalf("target host saw %+v, want the record at %d", b, moved)
	}
	got, err := imds.DecodeInstance(b.Changes[0].Value)
	if err != nil || got.Placement.HostID != "host-a" {
		t.Fatalf("target host's record %v, %v: want host-a", got, err)
	}
	// A node serving everything sees both halves in one batch.
	b = nextChanges(t, all)
	if b.Revision != moved || len(b.Changes) != 2 {
		t.Fatalf("serve-all watch saw %+v, want delete and put at %d", b, moved)
	}
	expectNoChanges(t, other)

	if ids := hostIDs(t, st, "host-b"); len(ids) != 0 {
		t.Errorf("host-b still lists %q after the move", ids)
	}
	if ids := hostIDs(t, st, "host-a"); len(ids) != 1 {
		t.Errorf("host-a lists %q after the move, want the instance", ids)
	}
	if id := ownerOf(t, st, "192.0.2.1"); id != in.InstanceID {
		t.Errorf("address owner after the move %q, want %s", id, in.InstanceID)
	}
	// A rewrite in place touches only the host's range.
	in.Generation++
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	b = nextChanges(t, dst)
	if len(b.Changes) != 1 {
		t.Fatalf("rewrite in place sent %+v, want the record alone", b)
	}
	expectNoChanges(t, src)
}

func (s suite) migrateLayout(t *testing.T) {
	st := s.store(t)
	const n = 40
	mustUpdate(t, st, func(tx imds.Tx) error {
		for i := range n {
			host := []string{"host-a", "host-b", ""}[i%3]
			in := placed(t, i+1, host)
			if err := imds.PutLegacyInstance(tx, in); err != nil {
				return err
			}
		}
		return nil
	})
	// Before migration the accessors read the previous layout.
	count := func() int {
		c := 0
		mustView(t, st, func(tx imds.Tx) error {
			return imds.ListInstances(tx, func(*imds.Instance) error { c++; return nil })
		})
		return c
	}
	if c := count(); c != n {
		t.Fatalf("ListInstances before migration = %d, want %d", c, n)
	}
	// The raw values read by the console: every instance, in id order, in
	// either layout.
	valuesInIDOrder := func(when string) {
		t.Helper()
		var ids []string
		mustView(t, st, func(tx imds.Tx) error {
			ids = ids[:0]
			return imds.ScanInstanceValues(tx, func(v []byte) error {
				in, err := imds.DecodeInstance(v)
				if err != nil {
					return err
				}
				ids = append(ids, in.InstanceID)
				return nil
			})
		})
		if len(ids) != n || !slices.IsSorted(ids) {
			t.Fatalf("ScanInstanceValues %s: %d ids, sorted %v; want %d in id order", when, len(ids), slices.IsSorted(ids), n)
		}
	}
	valuesInIDOrder("before migration")
	probe := NewInstance(t, 2).InstanceID
	mustView(t, st, func(tx imds.Tx) error {
		in, err := imds.GetInstance(tx, probe)
		if err != nil {
			return err
		}
		if in.Placement.HostID != "host-b" {
			t.Errorf("legacy GetInstance host %q, want host-b", in.Placement.HostID)
		}
		return nil
	})
	moved, err := imds.MigrateLayout(t.Context(), st)
	if err != nil || moved != n {
		t.Fatalf("MigrateLayout = %d, %v; want %d", moved, err, n)
	}
	if c := count(); c != n {
		t.Fatalf("ListInstances after migration = %d, want %d", c, n)
	}
	valuesInIDOrder("after migration")
	if ids := hostIDs(t, st, "host-a"); len(ids) != 14 {
		t.Fatalf("host-a after migration holds %d, want 14", len(ids))
	}
	if _, ok := get(t, st, imds.InstanceKey(probe)); !ok {
		t.Fatal("migrated instance has no index entry")
	}
	before := revision(t, st)
	moved, err = imds.MigrateLayout(t.Context(), st)
	if err != nil || moved != 0 {
		t.Fatalf("second MigrateLayout = %d, %v; want 0", moved, err)
	}
	if r := revision(t, st); r != before {
		t.Fatalf("migrating a migrated store moved the revision %d -> %d", before, r)
	}
	// A migrated instance is updated and deleted through the accessors.
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.DeleteInstance(tx, probe) })
	if c := count(); c != n-1 {
		t.Fatalf("after deleting one: %d instances, want %d", c, n-1)
	}
}
