package dataplane

import (
	"maps"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Snapshot is an immutable view of every served instance, indexed by the
// addresses callers come from. The data plane swaps whole snapshots behind
// an atomic pointer, so a request never takes a lock or reads the store.
//
// Both indexes are split into shards: a change copies only the shards it
// touches (a few small maps), so applying it costs the same with 100,000
// instances as with ten.
type Snapshot struct {
	// Revision is the store revision this snapshot reflects.
	Revision int64
	// ApplyLatency is how long the follower took from receiving the change
	// to publishing this snapshot (zero for a full load).
	ApplyLatency time.Duration
	// Changed lists the instances this snapshot changed from the one
	// before (added, modified or removed); nil after a full load, when
	// everything may have changed.
	Changed []string
	byAddr  [snapShards]map[netip.Addr]*Guest
	byID    [snapShards]map[string]*Guest
	n       int
}

// snapShards is how many pieces each index is kept in.
const snapShards = 256

func addrShard(a netip.Addr) int {
	b := a.As16()
	return int(b[15] ^ b[14]*31 ^ b[13]*131 ^ b[12]*7)
}

func idShard(id string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % snapShards)
}

// Len is the number of instances served.
func (s *Snapshot) Len() int { return s.n }

// Guest returns the instance served at addr.
func (s *Snapshot) Guest(addr netip.Addr) *Guest {
	addr = addr.Unmap()
	return s.byAddr[addrShard(addr)][addr]
}

// GuestByID returns a served instance by id.
func (s *Snapshot) GuestByID(id string) *Guest { return s.byID[idShard(id)][id] }

// Each calls fn for every served instance.
func (s *Snapshot) Each(fn func(*Guest)) {
	for _, m := range s.byID {
		for _, g := range m {
			fn(g)
		}
	}
}

// InstanceByID returns a served instance by id, or nil.
func (s *Snapshot) InstanceByID(id string) *imds.Instance {
	if g := s.GuestByID(id); g != nil {
		return g.Instance
	}
	return nil
}

// EachInstance calls fn for every served instance.
func (s *Snapshot) EachInstance(fn func(*imds.Instance)) {
	s.Each(func(g *Guest) { fn(g.Instance) })
}

// Guest is one served instance. Its tree is rendered on first use and may be
// dropped again by the tree cache; the instance itself is read-only.
type Guest struct {
	Instance     *imds.Instance
	lastModified []string
	treeHolder   // rendered on first use; see TreeCache

	sigOnce sync.Once
	sigs    signatures
	sigErr  error

	// rendered credential bodies by role ("" = identity credentials).
	credMu    sync.Mutex
	credCache atomic.Pointer[map[string]renderedCreds]
}

type signatures struct {
	signature, pkcs7, rsa2048 []byte
}

type renderedCreds struct {
	version uint64
	body    []byte
}

// served reports whether the data plane answers for an instance in this state.
func served(in *imds.Instance) bool {
	return in.State == imds.StateRunning || in.State == imds.StatePending
}

func newGuest(in *imds.Instance, now time.Time) *Guest {
	intern(in)
	return &Guest{
		Instance:     in,
		lastModified: []string{now.UTC().Format(http.TimeFormat)},
	}
}

func emptySnapshot() *Snapshot {
	s := &Snapshot{}
	for i := range s.byAddr {
		s.byAddr[i] = map[netip.Addr]*Guest{}
		s.byID[i] = map[string]*Guest{}
	}
	return s
}

// buildSnapshot makes a snapshot from every stored instance.
func buildSnapshot(rev int64, instances []*imds.Instance, now time.Time) *Snapshot {
	s := &Snapshot{Revision: rev}
	per := len(instances)/snapShards + 1
	for i := range s.byAddr {
		s.byAddr[i] = make(map[netip.Addr]*Guest, per*2)
		s.byID[i] = make(map[string]*Guest, per)
	}
	for _, in := range instances {
		s.add(newGuest(in, now))
	}
	return s
}

// with returns a copy of s with the given instances replaced (nil value:
// removed). Only the shards they touch are copied; everything else,
// unchanged guests included, is shared.
func (s *Snapshot) with(rev int64, changed map[string]*imds.Instance, now time.Time) *Snapshot {
	n := &Snapshot{Revision: rev, byAddr: s.byAddr, byID: s.byID, n: s.n}
	var addrCopied, idCopied [snapShards]bool
	own := func(ip netip.Addr) map[netip.Addr]*Guest {
		i := addrShard(ip)
		if !addrCopied[i] {
			n.byAddr[i], addrCopied[i] = maps.Clone(n.byAddr[i]), true
		}
		return n.byAddr[i]
	}
	ownID := func(id string) map[string]*Guest {
		i := idShard(id)
		if !idCopied[i] {
			n.byID[i], idCopied[i] = maps.Clone(n.byID[i]), true
		}
		return n.byID[i]
	}
	for id, in := range changed {
		n.Changed = append(n.Changed, id)
		if old := n.byID[idShard(id)][id]; old != nil {
			delete(ownID(id), id)
			n.n--
			for _, ip := range guestAddrs(old) {
				if m := own(ip); m[ip] == old {
					delete(m, ip)
				}
			}
		}
		if in != nil && served(in) {
			g := newGuest(in, now)
			ownID(id)[id] = g
			n.n++
			for _, ip := range guestAddrs(g) {
				own(ip)[ip] = g
			}
		}
	}
	if n.Changed == nil {
		n.Changed = []string{}
	}
	return n
}

func (s *Snapshot) add(g *Guest) {
	if !served(g.Instance) {
		return
	}
	id := g.Instance.InstanceID
	if s.byID[idShard(id)][id] == nil {
		s.n++
	}
	s.byID[idShard(id)][id] = g
	for _, ip := range guestAddrs(g) {
		s.byAddr[addrShard(ip)][ip] = g
	}
}

func guestAddrs(g *Guest) []netip.Addr {
	var out []netip.Addr
	for _, a := range g.Instance.Addresses() {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}
