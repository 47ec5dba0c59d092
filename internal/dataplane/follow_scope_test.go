package dataplane_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

// startFollower runs a follower of host's ranges ("": every instance)
// over st, loaded, and returns it with the number of keys its load read.
func startFollower(t *testing.T, st imds.Store, host string) (*dataplane.Follower, *int) {
	t.Helper()
	keys := new(int)
	opts := dataplane.FollowerOptions{Prefixes: imds.NodePrefixes(host), OnKeysLoaded: func(n int) { *keys = n }}
	if host != "" {
		opts.Include = func(in *imds.Instance) bool { return in.Placement.HostID == host }
	}
	f := dataplane.NewFollower(st, opts)
	if _, err := f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f, keys
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A node loads only its host's range; on a move the source stops serving,
// the target starts, and a node serving everything keeps serving whatever
// the order of the deletion and the write within the batch.
func TestFollowerScopeAndMove(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	put := func(in *imds.Instance) {
		t.Helper()
		if err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutInstance(tx, in) }); err != nil {
			t.Fatal(err)
		}
	}
	var moving *imds.Instance
	for n := range 30 {
		in := storetest.NewInstance(t, n+1, "192.0.2."+strconv.Itoa(n+10))
		in.Placement.HostID = []string{"host-a", "host-b", "host-c"}[n%3]
		put(in)
		if n == 1 {
			moving = in // on host-b
		}
	}
	a, aKeys := startFollower(t, st, "host-a")
	b, bKeys := startFollower(t, st, "host-b")
	all, allKeys := startFollower(t, st, "")
	if a.Snapshot().Len() != 10 || *aKeys != 10 || b.Snapshot().Len() != 10 || *bKeys != 10 {
		t.Fatalf("host nodes hold %d and %d instances after reading %d and %d keys, want 10 each",
			a.Snapshot().Len(), b.Snapshot().Len(), *aKeys, *bKeys)
	}
	if all.Snapshot().Len() != 30 || *allKeys != 30 {
		t.Fatalf("serve-all node holds %d after reading %d keys, want 30", all.Snapshot().Len(), *allKeys)
	}

	// host-b sorts after host-a: the batch holds the write to host-a's
	// range before the deletion in host-b's.
	moving.Placement.HostID = "host-a"
	put(moving)
	id := moving.InstanceID
	waitFor(t, "target serves the moved instance", func() bool { return a.Snapshot().GuestByID(id) != nil })
	waitFor(t, "source stops serving it", func() bool { return b.Snapshot().GuestByID(id) == nil })
	waitFor(t, "serve-all node applied the move", func() bool { return all.Applied() >= revision(t, st) })
	if g := all.Snapshot().GuestByID(id); g == nil || g.Instance.Placement.HostID != "host-a" {
		t.Fatalf("serve-all node after the move: %+v, want the instance on host-a", g)
	}
	if a.Snapshot().Len() != 11 || b.Snapshot().Len() != 9 || all.Snapshot().Len() != 30 {
		t.Fatalf("after the move: %d, %d, %d instances; want 11, 9, 30", a.Snapshot().Len(), b.Snapshot().Len(), all.Snapshot().Len())
	}

	// A change on host-c moves every node's applied revision (progress),
	// though only the serve-all node's snapshot changes.
	other := storetest.NewInstance(t, 3, "192.0.2.12")
	other.Placement.HostID = "host-c"
	other.Generation++
	put(other)
	rev := revision(t, st)
	waitFor(t, "host-a node passes a change elsewhere", func() bool { return a.Applied() >= rev })
	if a.Snapshot().Revision >= rev {
		t.Errorf("host-a node rebuilt its snapshot (revision %d) for a change on host-c", a.Snapshot().Revision)
	}
}

func revision(t *testing.T, st imds.Store) int64 {
	t.Helper()
	var rev int64
	if err := st.View(t.Context(), func(tx imds.Tx) error { rev = tx.Revision(); return nil }); err != nil {
		t.Fatal(err)
	}
	return rev
}
