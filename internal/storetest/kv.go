package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Single-key and scan behaviour: Get, Put, Delete and Scan inside View and Update.

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
