package dataplane

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

// TestFollowerKeepsTheSnapshotWhileTheStoreFails takes the store away
// under a running follower, both ways an outage shows (the watch ends with an
// error, or with "compacted" so that the follower must reload), and checks
// the data plane while every View and Watch fails: the last snapshot is
// still served (fail-static). Then the store comes back and a change made
// after the outage reaches the data plane.
func TestFollowerKeepsTheSnapshotWhileTheStoreFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  error
		op   string // the store error the follower then reports, over and over
	}{
		{"watch_fails", errors.New("connection reset"), "watch"},
		{"reload_after_compaction_fails", imds.ErrCompacted, "load"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memstore.New()
			t.Cleanup(func() { mem.Close() })
			if err := mem.Update(context.Background(), func(tx imds.Tx) error {
				return imds.PutInstance(tx, testInstance(idA, addrA, imds.Optional))
			}); err != nil {
				t.Fatal(err)
			}
			store := storetest.NewBreakable(mem)
			var mu sync.Mutex
			errs := map[string]int{}
			f := NewFollower(store, FollowerOptions{
				Now: func() time.Time { return testNow },
				OnStoreError: func(op string, _ error) {
					mu.Lock()
					defer mu.Unlock()
					errs[op]++
				},
			})
			if _, err := f.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			p := &plane{t: t, f: f, h: New(f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{Now: func() time.Time { return testNow }})}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = f.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			get := func() (int, string) {
				resp := p.do(req{path: "/latest/meta-data/instance-id", from: addrA})
				return resp.StatusCode, body(t, resp)
			}
			if s, b := get(); s != 200 || b != idA {
				t.Fatalf("before the outage: %d %q", s, b)
			}

			// The outage must end a running watch, as it does in
			// production, not meet the follower between two watches.
			waitFor(t, func() bool { return store.Watching() > 0 })
			store.Break(tc.end)
			// Wait until the follower has failed on the broken store more
			// than once: it has been through its error path and retried.
			waitFor(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return errs[tc.op] >= 3
			})
			if store.Failures.Load() < 2 {
				t.Fatalf("%d calls refused by the broken store", store.Failures.Load())
			}
			if f.StoreErr() == nil {
				t.Error("the follower reports no store error during the outage")
			}
			if s, b := get(); s != 200 || b != idA {
				t.Fatalf("during the outage: %d %q, want the last snapshot served", s, b)
			}
			if n := f.Snapshot().Len(); n != 1 {
				t.Fatalf("snapshot holds %d instances during the outage, want 1", n)
			}
			if f.Ready() != nil {
				t.Errorf("the data plane is not ready during the outage: %v", f.Ready())
			}

			store.Heal()
			if err := store.Update(context.Background(), func(tx imds.Tx) error {
				in, err := imds.GetInstance(tx, idA)
				if err != nil {
					return err
				}
				in.MetadataOptions.HttpTokens = imds.Required
				return imds.PutInstance(tx, in)
			}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { s, _ := get(); return s == 401 })
		})
	}
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
