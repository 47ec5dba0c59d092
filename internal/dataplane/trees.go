package dataplane

import (
	"sync"
	"sync/atomic"

	"github.com/frontdesk-imds/frontdesk/internal/mdtree"
)

// DefaultMaxTrees bounds how many rendered trees are kept. A tree is about
// 27 KB, so 4,000 trees are about 110 MB; an instance whose tree was
// dropped gets it rebuilt (about 80 µs) on its next request, and its
// answers do not change.
const DefaultMaxTrees = 4000

// TreeCache renders trees on first use and keeps at most max of them,
// dropping with the CLOCK algorithm (a second chance for trees used since
// the hand last passed). Instances that never call cost no tree, so a host
// or fleet with many quiet instances starts fast and stays small.
type TreeCache struct {
	max  int
	mu   sync.Mutex
	ring []*Guest // guests holding a tree, in insertion order
	hand int
}

// NewTreeCache keeps at most max trees (DefaultMaxTrees when max <= 0).
// Handlers that serve the same snapshot (the IPv4 and IPv6 listeners)
// should share one.
func NewTreeCache(max int) *TreeCache {
	if max <= 0 {
		max = DefaultMaxTrees
	}
	return &TreeCache{max: max}
}

// tree returns g's rendered tree, building it if it is not held.
func (c *TreeCache) tree(g *Guest) *mdtree.Tree {
	if t := g.tree.Load(); t != nil {
		if !g.used.Load() {
			g.used.Store(true)
		}
		return t
	}
	g.buildMu.Lock()
	defer g.buildMu.Unlock()
	if t := g.tree.Load(); t != nil {
		return t
	}
	t := mdtree.Build(g.Instance)
	if g.released.Load() {
		// A request that began before its instance left the snapshot:
		// answer it, but keep nothing.
		return t
	}
	g.tree.Store(t)
	c.admit(g)
	return t
}

// Release drops at once the trees of guests that s no longer serves: the
// instances named in changed that were removed or replaced (every held
// guest when changed is nil, after a full load). Without it a terminated
// instance's tree would stay until the clock hand came round to it.
func (c *TreeCache) Release(s *Snapshot, changed map[string]struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.ring)
	kept := c.ring[:0]
	for i, g := range c.ring {
		id := g.Instance.InstanceID
		stale := s.GuestByID(id) != g
		if changed != nil {
			_, named := changed[id]
			stale = stale && named
		}
		if !stale {
			kept = append(kept, g)
			continue
		}
		g.released.Store(true)
		g.tree.Store(nil)
		if i < c.hand {
			c.hand--
		}
	}
	clear(c.ring[len(kept):n]) // the backing array must not keep them alive
	c.ring = kept
	if c.hand >= len(c.ring) {
		c.hand = 0
	}
}

func (c *TreeCache) admit(g *Guest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ring) < c.max {
		c.ring = append(c.ring, g)
		return
	}
	for {
		victim := c.ring[c.hand]
		if victim.used.Load() && victim.tree.Load() != nil {
			victim.used.Store(false) // second chance
			c.hand = (c.hand + 1) % len(c.ring)
			continue
		}
		victim.tree.Store(nil)
		c.ring[c.hand] = g
		c.hand = (c.hand + 1) % len(c.ring)
		return
	}
}

// held reports how many trees are kept (for tests).
func (c *TreeCache) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, g := range c.ring {
		if g.tree.Load() != nil {
			n++
		}
	}
	return n
}

// treeHolder is the part of a Guest the cache manages.
type treeHolder struct {
	tree     atomic.Pointer[mdtree.Tree]
	used     atomic.Bool
	released atomic.Bool // no longer served: never admitted again
	buildMu  sync.Mutex
}
