//go:build integration

package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/frontdesk-imds/frontdesk/internal/etcd"
	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

// open returns a store on the given endpoints under its own prefix, closed
// when the test ends.
func open(t *testing.T, endpoints []string, prefix string) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(t.Context(), etcd.Config{
		Endpoints:      endpoints,
		Prefix:         prefix,
		DialTimeout:    2 * time.Second,
		RequestTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// client is a raw etcd client, for what the Store does not offer (compact,
// inspect keys).
func client(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func compact(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	resp, err := cli.Get(t.Context(), "compact-probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(t.Context(), resp.Header.Revision); err != nil {
		t.Fatalf("compact: %v", err)
	}
}

func TestStore(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	cli := client(t, c.Endpoints())
	n := 0
	storetest.RunWith(t, func(t *testing.T) imds.Store {
		n++
		return open(t, c.Endpoints(), fmt.Sprintf("/storetest/%d", n))
	}, storetest.Options{
		Compact: func(t *testing.T, _ imds.Store) { compact(t, cli) },
		// Every etcd commit is an fsync: a smaller burst keeps the test
		// short while still racing writers against each other.
		Writers:    6,
		Increments: 15,
	})
}

func mustUpdate(t *testing.T, s imds.Store, fn func(imds.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func put(t *testing.T, s imds.Store, k, v string) {
	t.Helper()
	mustUpdate(t, s, func(tx imds.Tx) error { return tx.Put(k, []byte(v)) })
}

func get(t *testing.T, s imds.Store, k string) (string, bool) {
	t.Helper()
	var v []byte
	err := s.View(t.Context(), func(tx imds.Tx) error {
		var err error
		v, err = tx.Get(k)
		return err
	})
	if errors.Is(err, imds.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get(%s): %v", k, err)
	}
	return string(v), true
}

func revision(t *testing.T, s imds.Store) int64 {
	t.Helper()
	var rev int64
	if err := s.View(t.Context(), func(tx imds.Tx) error { rev = tx.Revision(); return nil }); err != nil {
		t.Fatal(err)
	}
	return rev
}

func nextBatch(t *testing.T, ch <-chan imds.Batch) imds.Batch {
	t.Helper()
	select {
	case b, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return b
	case <-time.After(15 * time.Second):
		t.Fatal("no batch")
	}
	return imds.Batch{}
}

// TestOptimisticConcurrency runs a second store's write between an Update's
// read and its commit, and checks the Update notices and runs fn again on
// fresh data instead of committing over it.
func TestOptimisticConcurrency(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	tests := []struct {
		name string
		// setup prepares the keys; read is the Update's read; interfere is
		// the other store's write between read and commit.
		setup     map[string]string
		read      func(tx imds.Tx) (string, error)
		interfere func(tx imds.Tx) error
		want      string
	}{
		{
			name:  "changed_key_reruns_fn",
			setup: map[string]string{"k": "1"},
			read: func(tx imds.Tx) (string, error) {
				v, err := tx.Get("k")
				return string(v), err
			},
			interfere: func(tx imds.Tx) error { return tx.Put("k", []byte("2")) },
			want:      "2",
		},
		{
			name:  "created_key_that_was_absent_reruns_fn",
			setup: map[string]string{},
			read: func(tx imds.Tx) (string, error) {
				v, err := tx.Get("k")
				if errors.Is(err, imds.ErrNotFound) {
					return "absent", nil
				}
				return string(v), err
			},
			interfere: func(tx imds.Tx) error { return tx.Put("k", []byte("created")) },
			want:      "created",
		},
		{
			name:  "deleted_key_reruns_fn",
			setup: map[string]string{"k": "1"},
			read: func(tx imds.Tx) (string, error) {
				v, err := tx.Get("k")
				if errors.Is(err, imds.ErrNotFound) {
					return "absent", nil
				}
				return string(v), err
			},
			interfere: func(tx imds.Tx) error { return tx.Delete("k") },
			want:      "absent",
		},
		{
			name:      "key_added_to_scanned_prefix_reruns_fn",
			setup:     map[string]string{"p/1": "", "p/2": ""},
			read:      countPrefix,
			interfere: func(tx imds.Tx) error { return tx.Put("p/3", nil) },
			want:      "3",
		},
		{
			name:      "key_changed_in_scanned_prefix_reruns_fn",
			setup:     map[string]string{"p/1": "a", "p/2": "b"},
			read:      concatPrefix,
			interfere: func(tx imds.Tx) error { return tx.Put("p/1", []byte("c")) },
			want:      "cb",
		},
		{
			name:      "key_deleted_from_scanned_prefix_reruns_fn",
			setup:     map[string]string{"p/1": "", "p/2": ""},
			read:      countPrefix,
			interfere: func(tx imds.Tx) error { return tx.Delete("p/1") },
			want:      "1",
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("/occ/%d", i)
			a := open(t, c.Endpoints(), prefix)
			b := open(t, c.Endpoints(), prefix)
			for k, v := range tc.setup {
				put(t, a, k, v)
			}
			runs := 0
			mustUpdate(t, a, func(tx imds.Tx) error {
				runs++
				v, err := tc.read(tx)
				if err != nil {
					return err
				}
				if runs == 1 {
					mustUpdate(t, b, tc.interfere)
				}
				return tx.Put("result", []byte(v))
			})
			if runs != 2 {
				t.Errorf("fn ran %d times, want 2 (one conflict, one retry)", runs)
			}
			if got, _ := get(t, a, "result"); got != tc.want {
				t.Errorf("result = %q, want %q computed from the other store's write", got, tc.want)
			}
		})
	}

	t.Run("unrelated_write_does_not_conflict", func(t *testing.T) {
		a := open(t, c.Endpoints(), "/occ/unrelated")
		b := open(t, c.Endpoints(), "/occ/unrelated")
		put(t, a, "k", "1")
		runs := 0
		mustUpdate(t, a, func(tx imds.Tx) error {
			runs++
			if _, err := tx.Get("k"); err != nil {
				return err
			}
			if _, err := countPrefix(tx); err != nil {
				return err
			}
			if runs == 1 {
				put(t, b, "elsewhere", "x")
			}
			return tx.Put("k", []byte("2"))
		})
		if runs != 1 {
			t.Fatalf("fn ran %d times, want 1: a write outside what it read must not conflict", runs)
		}
	})
}

func countPrefix(tx imds.Tx) (string, error) {
	n := 0
	err := tx.Scan("p/", func(string, []byte) error { n++; return nil })
	return strconv.Itoa(n), err
}

func concatPrefix(tx imds.Tx) (string, error) {
	var s string
	err := tx.Scan("p/", func(_ string, v []byte) error { s += string(v); return nil })
	return s, err
}

// TestTwoStoresLoseNoIncrement races two clients (as two hosts would) on
// one counter.
func TestTwoStoresLoseNoIncrement(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	stores := []*etcd.Store{open(t, c.Endpoints(), "/race"), open(t, c.Endpoints(), "/race")}
	const n = 30
	var wg sync.WaitGroup
	var failed atomic.Value
	for _, s := range stores {
		wg.Go(func() {
			for range n {
				err := s.Update(t.Context(), func(tx imds.Tx) error {
					cur := 0
					if v, err := tx.Get("counter"); err == nil {
						cur, _ = strconv.Atoi(string(v))
					} else if !errors.Is(err, imds.ErrNotFound) {
						return err
					}
					return tx.Put("counter", []byte(strconv.Itoa(cur+1)))
				})
				if err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got, _ := get(t, stores[0], "counter"); got != strconv.Itoa(2*n) {
		t.Fatalf("counter = %s, want %d: an update was lost", got, 2*n)
	}
}

func TestKeysLiveUnderPrefix(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	cli := client(t, c.Endpoints())
	s, err := etcd.Open(t.Context(), etcd.Config{Endpoints: c.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	other := open(t, c.Endpoints(), "/other")
	put(t, s, "instances/i-1", "x")
	resp, err := cli.Get(t.Context(), "/frontdesk/instances/i-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "x" {
		t.Fatalf("raw etcd key /frontdesk/instances/i-1 = %v, want x under the default prefix", resp.Kvs)
	}
	if _, ok := get(t, other, "instances/i-1"); ok {
		t.Fatal("a store with another prefix sees the key")
	}
}

// TestUnavailable stops etcd under a store and checks that calls fail
// quickly with ErrUnavailable, that a transaction cut off before its commit
// writes nothing, and that the store (and an open watch) recover when etcd
// is back.
func TestUnavailable(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	s := open(t, c.Endpoints(), "/down")
	put(t, s, "k", "before")
	watch, err := s.Watch(t.Context(), revision(t, s))
	if err != nil {
		t.Fatal(err)
	}

	// A transaction whose commit finds etcd gone: nothing of it lands.
	err = s.Update(t.Context(), func(tx imds.Tx) error {
		if _, err := tx.Get("k"); err != nil {
			return err
		}
		for _, k := range []string{"k", "a", "b"} {
			if err := tx.Put(k, []byte("half")); err != nil {
				return err
			}
		}
		c.Kill(0)
		return nil
	})
	if !errors.Is(err, imds.ErrUnavailable) {
		t.Fatalf("Update whose commit met a dead etcd = %v, want ErrUnavailable", err)
	}

	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"update_fails_fast", func(ctx context.Context) error {
			return s.Update(ctx, func(tx imds.Tx) error { return tx.Put("x", []byte("y")) })
		}},
		{"update_reading_fails_fast", func(ctx context.Context) error {
			return s.Update(ctx, func(tx imds.Tx) error { _, err := tx.Get("k"); return err })
		}},
		{"view_fails_fast", func(ctx context.Context) error {
			return s.View(ctx, func(tx imds.Tx) error { return tx.Scan("", func(string, []byte) error { return nil }) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.call(t.Context())
			if !errors.Is(err, imds.ErrUnavailable) {
				t.Fatalf("= %v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %s, want about the 500ms request timeout", d)
			}
		})
	}
	t.Run("open_fails_fast", func(t *testing.T) {
		start := time.Now()
		_, err := etcd.Open(t.Context(), etcd.Config{Endpoints: c.Endpoints(), DialTimeout: 500 * time.Millisecond})
		if !errors.Is(err, imds.ErrUnavailable) {
			t.Fatalf("Open = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("Open took %s", d)
		}
	})

	c.Restart(0)
	t.Run("store_reconnects_quickly", func(t *testing.T) {
		start := time.Now()
		var err error
		for time.Since(start) < 10*time.Second {
			if err = s.View(t.Context(), func(tx imds.Tx) error { _, err := tx.Get("k"); return err }); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("View after restart: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("store took %s to reconnect", d)
		}
	})
	t.Run("nothing_was_half_written", func(t *testing.T) {
		if v, _ := get(t, s, "k"); v != "before" {
			t.Errorf("k = %q, want before", v)
		}
		for _, k := range []string{"a", "b", "x"} {
			if v, ok := get(t, s, k); ok {
				t.Errorf("%s = %q, want absent", k, v)
			}
		}
	})
	t.Run("store_and_watch_recover", func(t *testing.T) {
		put(t, s, "k", "after")
		b := nextBatch(t, watch)
		if b.Err != nil || len(b.Changes) != 1 || b.Changes[0].Key != "k" || string(b.Changes[0].Value) != "after" {
			t.Fatalf("watch after restart delivered %+v, want k=after", b)
		}
	})
}

func TestOpenRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  etcd.Config
		want string
	}{
		{"no_endpoints", etcd.Config{}, "no endpoints"},
		{"missing_ca_file", etcd.Config{Endpoints: []string{"https://127.0.0.1:1"}, TLS: etcd.TLSFiles{CAFile: filepath.Join(dir, "absent.pem")}}, "CA file"},
		{"ca_file_without_certificate", etcd.Config{Endpoints: []string{"https://127.0.0.1:1"}, TLS: etcd.TLSFiles{CAFile: notPEM}}, "no PEM certificate"},
		{"client_key_without_certificate", etcd.Config{Endpoints: []string{"https://127.0.0.1:1"}, TLS: etcd.TLSFiles{KeyFile: notPEM}}, "client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := etcd.Open(t.Context(), tc.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
