package storetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Close, and updates racing each other.

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
