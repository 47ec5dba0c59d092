package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Helpers of the suite.

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
