package storetest

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// The change feed: replay, the current revision, deletes, cancellation and compaction.

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
