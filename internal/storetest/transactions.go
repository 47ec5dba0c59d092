package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Transactions: reads-your-writes, read-only views, atomic updates, cancellation and revisions.

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
