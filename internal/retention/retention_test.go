package retention

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// backends are the stores the purge must work on alike.
var backends = []struct {
	name string
	open func(t *testing.T) imds.Store
}{
	{"memory", func(t *testing.T) imds.Store { return memstore.New() }},
	{"bolt", func(t *testing.T) imds.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "frontdesk.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

// otherRecord is a record of an instance kept under another prefix (as
// IMDSv1 usage records are), which the purge must delete with it.
func otherRecord(id string) string { return "usage-test/" + id }

func seed(t *testing.T, st imds.Store, n int, terminatedAt time.Time) []string {
	t.Helper()
	var ids []string
	err := st.Update(context.Background(), func(tx imds.Tx) error {
		for i := range n {
			in := storetest.NewInstance(t, i+1)
			in.State = imds.StateTerminated
			in.TerminatedAt = terminatedAt
			if err := imds.PutInstance(tx, in); err != nil {
				return err
			}
			if err := tx.Put(otherRecord(in.InstanceID), []byte("x")); err != nil {
				return err
			}
			ids = append(ids, in.InstanceID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func stored(t *testing.T, st imds.Store) (instances, others int) {
	t.Helper()
	err := st.View(context.Background(), func(tx imds.Tx) error {
		if err := imds.ListInstances(tx, func(*imds.Instance) error { instances++; return nil }); err != nil {
			return err
		}
		return tx.Scan("usage-test/", func(string, []byte) error { others++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return instances, others
}

func TestPurgesAfterTheWindowInSmallTransactions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { purgesAfterTheWindow(t, b.open(t)) })
	}
}

func purgesAfterTheWindow(t *testing.T, st imds.Store) {
	defer st.Close()
	seed(t, st, 5, t0)
	// A live instance is never purged.
	live := storetest.NewInstance(t, 100)
	if err := st.Update(context.Background(), func(tx imds.Tx) error { return imds.PutInstance(tx, live) }); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0.Add(59 * time.Minute)}
	var batches []int
	p := New(st, Options{Now: c.Now, BatchSize: 2, OnPurged: func(n int) { batches = append(batches, n) },
		AlsoDelete: func(tx imds.Tx, id string) error { return tx.Delete(otherRecord(id)) }})
	if n, err := p.PurgeOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("within the hour: purged %d, %v; want 0", n, err)
	}
	c.Set(t0.Add(time.Hour))
	if n, err := p.PurgeOnce(context.Background()); err != nil || n != 5 {
		t.Fatalf("after the hour: purged %d, %v; want 5", n, err)
	}
	if len(batches) != 3 || batches[0] != 2 || batches[2] != 1 {
		t.Fatalf("batches %v, want [2 2 1]", batches)
	}
	if in, others := stored(t, st); in != 1 || others != 0 {
		t.Fatalf("left %d instances and %d other records; want the live one and none", in, others)
	}
}

// Only the node holding the lease purges; when it stops renewing, another
// takes over after the lease expires.
func TestOneNodePurgesAtATime(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { oneNodeAtATime(t, b.open(t)) })
	}
}

func oneNodeAtATime(t *testing.T, st imds.Store) {
	defer st.Close()
	seed(t, st, 3, t0)
	c := &clock{now: t0.Add(2 * time.Hour)}
	a := New(st, Options{Now: c.Now, Node: "a", LeaseTTL: time.Minute})
	bn := New(st, Options{Now: c.Now, Node: "b", LeaseTTL: time.Minute})
	if n, err := a.PurgeOnce(context.Background()); err != nil || n != 3 {
		t.Fatalf("first node: %d %v", n, err)
	}
	seed(t, st, 2, t0)
	if n, err := bn.PurgeOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("second node while the first holds the lease: %d %v, want 0", n, err)
	}
	c.Set(c.Now().Add(2 * time.Minute))
	if n, err := bn.PurgeOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("second node after the lease expired: %d %v, want 2", n, err)
	}
	// The first node's purge transactions now fail the lease check.
	err := st.Update(context.Background(), func(tx imds.Tx) error { return a.checkLease(tx) })
	if !errors.Is(err, ErrNotHolder) {
		t.Fatalf("first node's lease check: %v, want ErrNotHolder", err)
	}
}

// Instances terminated before the time was recorded get a full window
// from the first look.
func TestUnstampedInstancesGetAFullWindow(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	seed(t, st, 2, time.Time{})
	c := &clock{now: t0}
	p := New(st, Options{Now: c.Now, Retention: 10 * time.Minute})
	if n, err := p.PurgeOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("first look: %d %v, want 0", n, err)
	}
	c.Set(t0.Add(10 * time.Minute))
	if n, err := p.PurgeOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("a window later: %d %v, want 2", n, err)
	}
}

// A failing AlsoDelete leaves the whole batch in place.
func TestAlsoDeleteFailureWritesNothing(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	seed(t, st, 3, t0)
	p := New(st, Options{Now: func() time.Time { return t0.Add(2 * time.Hour) },
		AlsoDelete: func(tx imds.Tx, id string) error { return errors.New("boom") }})
	if _, err := p.PurgeOnce(context.Background()); err == nil {
		t.Fatal("purge succeeded with a failing AlsoDelete")
	}
	if in, _ := stored(t, st); in != 3 {
		t.Fatalf("%d instances left, want all 3", in)
	}
}
