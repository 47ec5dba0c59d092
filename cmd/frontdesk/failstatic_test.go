package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

// TestNodeKeepsServingWhenTheReloadAfterCompactionFails builds a whole node
// (every step of serve but opening the store) over a store the test can
// take away. The watch ends with "compacted" and every reload fails, as
// when etcd compacts during a partition: the node must keep answering its
// guests from the last snapshot and stay ready, with the store reported
// unhealthy beside it.
func TestNodeKeepsServingWhenTheReloadAfterCompactionFails(t *testing.T) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &c)
	if err := fs.Parse([]string{"--store", "memory", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
		"--demo", "--demo-http-tokens", "optional"}); err != nil {
		t.Fatal(err)
	}
	n := &node{cfg: c, log: slog.New(slog.DiscardHandler), now: time.Now}
	store := storetest.NewBreakable(memstore.New())
	ctx, cancel := context.WithCancel(context.Background())
	err := n.build(ctx, func(ctx context.Context) error {
		n.store = store
		n.addCloser(store)
		return n.seedDemo(ctx)
	})
	if err != nil {
		cancel()
		n.close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.run(ctx, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		n.close()
	})
	dataURL := "http://" + n.servers[0].l.Addr().String()
	apiURL := "http://" + n.servers[len(n.servers)-1].l.Addr().String()
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if s, b := get(dataURL + "/latest/meta-data/instance-id"); s != 200 || b != demoInstanceID {
		t.Fatalf("before the outage: %d %q", s, b)
	}

	// The compaction must end a running watch, as it does in production.
	waitUntil(t, "the follower watches the store", func() bool { return store.Watching() > 0 })
	store.Break(imds.ErrCompacted)
	waitUntil(t, "the follower retried the reload", func() bool {
		return store.Failures.Load() >= 3 && n.follower.StoreErr() != nil
	})
	if s, b := get(dataURL + "/latest/meta-data/instance-id"); s != 200 || b != demoInstanceID {
		t.Fatalf("during the outage: %d %q, want the last snapshot served", s, b)
	}
	if s, b := get(apiURL + "/readyz?component=data_plane"); s != 200 {
		t.Errorf("readyz data_plane during the outage: %d %q, want 200", s, b)
	}
	if s, b := get(apiURL + "/readyz"); s != 200 {
		t.Errorf("readyz during the outage: %d %q, want 200 (guests are served)", s, b)
	}
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
