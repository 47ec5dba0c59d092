package dataplane

import (
	"fmt"
	"testing"

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
