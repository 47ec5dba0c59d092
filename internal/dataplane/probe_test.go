package dataplane

import (
	"context"
	"errors"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

func TestProbeReportsTheStoreBesideTheDataPlane(t *testing.T) {
	mem := memstore.New()
	t.Cleanup(func() { mem.Close() })
	store := storetest.NewBreakable(mem)
	f := NewFollower(store, FollowerOptions{})
	var lag []int64
	var failed int
	p := NewProbe(store, f, ProbeOptions{OnLag: func(n int64) { lag = append(lag, n) }, OnError: func(error) { failed++ }})
	ctx := context.Background()

	if err := p.Ready(); err == nil {
		t.Fatal("ready before the first snapshot")
	}
	if _, err := f.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mem.Update(ctx, func(tx imds.Tx) error { return tx.Put("k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	p.check(ctx)
	if len(lag) != 1 || lag[0] != 1 {
		t.Fatalf("lag %v, want one report of 1 revision behind", lag)
	}
	if c := p.Components(); p.Ready() != nil || c["data_plane"] != nil || c["store"] != nil {
		t.Fatalf("healthy node: ready %v, components %v", p.Ready(), c)
	}

	store.Break(errors.New("gone"))
	p.check(ctx)
	c := p.Components()
	if !errors.Is(c["store"], storetest.ErrBroken) || failed != 1 {
		t.Fatalf("store unavailable: components %v, %d errors reported", c, failed)
	}
	if p.Ready() != nil || c["data_plane"] != nil {
		t.Fatalf("the data plane must stay ready while the store is away: %v %v", p.Ready(), c["data_plane"])
	}
	store.Heal()
	p.check(ctx)
	if err := p.StoreErr(); err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
}
