//go:build integration

package etcd_test

import (
	"errors"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// An Update's commit depends on what it read, key by key: a write to a key
// it did not read, even under a prefix it scanned without guarding, does
// not make it run again; a guarded scan, or a key it read, does.
func TestCommitComparesOnlyWhatWasRead(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	s := open(t, c.Endpoints(), "/percompare")
	other := open(t, c.Endpoints(), "/percompare")
	put(t, s, "p/a", "1")
	put(t, s, "idx/x", "1")

	attempts := func(read func(tx imds.Tx) error, meanwhile string) int {
		t.Helper()
		n := 0
		mustUpdate(t, s, func(tx imds.Tx) error {
			n++
			if err := read(tx); err != nil {
				return err
			}
			if n == 1 {
				put(t, other, meanwhile, "changed")
			}
			return tx.Put("out", []byte("x"))
		})
		return n
	}
	scan := func(guarded bool) func(tx imds.Tx) error {
		return func(tx imds.Tx) error {
			fn := func(string, []byte) error { return nil }
			if guarded {
				return tx.Scan("p/", fn)
			}
			return imds.ScanUnguarded(tx, "p/", fn)
		}
	}
	getIdx := func(tx imds.Tx) error {
		if _, err := tx.Get("idx/y"); err != nil && !errors.Is(err, imds.ErrNotFound) {
			return err
		}
		return nil
	}
	for _, tc := range []struct {
		name      string
		read      func(tx imds.Tx) error
		meanwhile string
		want      int
	}{
		{"unguarded scan, a key under it created", scan(false), "p/new", 1},
		{"guarded scan, a key under it created", scan(true), "p/new2", 2},
		{"absent key read, another key created", getIdx, "idx/z", 1},
		{"absent key read, that key created", getIdx, "idx/y", 2},
	} {
		if got := attempts(tc.read, tc.meanwhile); got != tc.want {
			t.Errorf("%s: fn ran %d times, want %d", tc.name, got, tc.want)
		}
	}
}
