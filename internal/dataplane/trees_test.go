package dataplane

import (
	"fmt"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func guests(n int) []*Guest {
	gs := make([]*Guest, n)
	for i := range gs {
		gs[i] = newGuest(testInstance(fmt.Sprintf("i-0%016x", i+1), fmt.Sprintf("192.0.2.%d", i+1), imds.Optional), testNow)
	}
	return gs
}

func TestTreeCacheKeepsAtMostMax(t *testing.T) {
	c := NewTreeCache(3)
	gs := guests(10)
	for _, g := range gs {
		if tr := c.tree(g); tr == nil {
			t.Fatal("no tree")
		}
	}
	if n := c.held(); n != 3 {
		t.Fatalf("%d trees held, want 3", n)
	}
	// A dropped tree is rebuilt on demand and answers the same.
	tr := c.tree(gs[0])
	if node, ok := tr.Lookup("latest", "meta-data/instance-id"); !ok || string(node.Body) != gs[0].Instance.InstanceID {
		t.Fatalf("rebuilt tree answers %q", node.Body)
	}
	if n := c.held(); n != 3 {
		t.Fatalf("%d trees held after a rebuild, want 3", n)
	}
}

func TestTreeCacheGivesUsedTreesASecondChance(t *testing.T) {
	c := NewTreeCache(2)
	gs := guests(3)
	c.tree(gs[0])
	c.tree(gs[1])
	gs[0].used.Store(false)
	c.tree(gs[0]) // a hit marks it used
	c.tree(gs[2]) // must drop gs[1], the one not used since admission... or gs[0]'s second chance
	if gs[0].tree.Load() == nil {
		t.Fatal("the recently used tree was dropped before the unused one")
	}
	if gs[1].tree.Load() != nil {
		t.Fatal("the unused tree was kept")
	}
}

func TestTreeIsBuiltOnFirstRequestOnly(t *testing.T) {
	p := newPlane(t, testInstance(idA, addrA, imds.Optional), testInstance(idB, addrB, imds.Optional))
	gA := p.f.Snapshot().GuestByID(idA)
	gB := p.f.Snapshot().GuestByID(idB)
	if gA.tree.Load() != nil || gB.tree.Load() != nil {
		t.Fatal("trees rendered before any request")
	}
	p.do(req{path: "/latest/meta-data/instance-id", from: addrA})
	if gA.tree.Load() == nil || gB.tree.Load() != nil {
		t.Fatal("want exactly the calling instance's tree rendered")
	}
}

// A terminated (or replaced) instance's tree is dropped as soon as the
// snapshot no longer serves it, not when the clock hand comes round, and
// nothing is kept for it; the others' trees stay.
func TestReleaseDropsTreesOfInstancesNoLongerServed(t *testing.T) {
	p := newPlane(t, testInstance(idA, addrA, imds.Optional), testInstance(idB, addrB, imds.Optional))
	p.h = New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{Now: func() time.Time { return testNow }, Limits: Limits{Rate: 100}})
	p.do(req{path: "/latest/meta-data/instance-id", from: addrA})
	p.do(req{path: "/latest/meta-data/instance-id", from: addrB})
	old := p.f.Snapshot()
	gA := old.GuestByID(idA)
	if p.h.trees.held() != 2 || p.h.limit.held() != 2 {
		t.Fatalf("%d trees and %d buckets before, want 2 and 2", p.h.trees.held(), p.h.limit.held())
	}
	next := old.with(old.Revision+1, map[string]*imds.Instance{idA: nil}, testNow)
	p.h.Release(next, map[string]struct{}{idA: {}})
	if gA.tree.Load() != nil || len(p.h.trees.ring) != 1 || p.h.trees.held() != 1 {
		t.Fatalf("after terminating A: A's tree kept=%v, ring %d, held %d; want dropped, 1, 1",
			gA.tree.Load() != nil, len(p.h.trees.ring), p.h.trees.held())
	}
	if p.h.limit.held() != 1 {
		t.Fatalf("%d rate buckets after terminating A, want 1", p.h.limit.held())
	}
	// A request that was already under way for A is answered, but its tree
	// is not kept.
	if tr := p.h.trees.tree(gA); tr == nil || gA.tree.Load() != nil {
		t.Fatal("a late request for a released guest kept its tree")
	}
	// A full load releases whatever the new snapshot does not hold.
	p.h.Release(emptySnapshot(), nil)
	if len(p.h.trees.ring) != 0 || p.h.limit.held() != 0 {
		t.Fatalf("after a full load without instances: ring %d, buckets %d", len(p.h.trees.ring), p.h.limit.held())
	}
}
