package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
)

// flakyStore is a store whose reads fail while down is set.
type flakyStore struct {
	*memstore.Store
	down   atomic.Bool
	failed atomic.Int32 // reads refused so far
}

func (s *flakyStore) View(ctx context.Context, fn func(imds.Tx) error) error {
	if s.down.Load() {
		s.failed.Add(1)
		return errors.New("connection refused")
	}
	return s.Store.View(ctx, fn)
}

// Losing the store and getting it back are each logged once, the second
// with how long it was gone; the probes in between add nothing.
func TestProbeLogsStoreLossAndReturnOnce(t *testing.T) {
	store := &flakyStore{Store: memstore.New()}
	store.down.Store(true)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	mx := metrics.New(metrics.Options{})
	probe := dataplane.NewProbe(store, dataplane.NewFollower(store, dataplane.FollowerOptions{}), dataplane.ProbeOptions{
		Interval: 50 * time.Millisecond, OnLag: mx.WatchLag, OnError: func(error) { mx.StoreError("probe") }, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = probe.Run(ctx)
	}()
	defer func() { cancel(); <-done }()

	waitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "store unavailable") })
	if probe.StoreErr() == nil {
		t.Error("health reports the store up while it is down")
	}
	waitFor(t, 10*time.Second, func() bool { return store.failed.Load() >= 2 }) // a second failed probe
	store.down.Store(false)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "store available again") })
	out := logs.String()
	if n := strings.Count(out, "store unavailable"); n != 1 {
		t.Errorf("store loss logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "unavailable_for=") {
		t.Errorf("the return does not say how long the store was gone:\n%s", out)
	}
	if probe.StoreErr() != nil {
		t.Error("health still reports the store down")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
