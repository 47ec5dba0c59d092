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
type Snapshot struct {
	// Revision is the store revision this snapshot reflects.
	Revision int64
	// ApplyLatency is how long the follower took from receiving the change
	// to publishing this snapshot (zero for a full load).
	ApplyLatency time.Duration
	byAddr       map[netip.Addr]*Guest
	byID         map[string]*Guest
}

// Len is the number of instances served.
func (s *Snapshot) Len() int { return len(s.byID) }

// Guest returns the instance served at addr.
func (s *Snapshot) Guest(addr netip.Addr) *Guest { return s.byAddr[addr.Unmap()] }

// GuestByID returns a served instance by id.
func (s *Snapshot) GuestByID(id string) *Guest { return s.byID[id] }

// Each calls fn for every served instance.
func (s *Snapshot) Each(fn func(*Guest)) {
	for _, g := range s.byID {
		fn(g)
	}
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
	return &Guest{
		Instance:     in,
		lastModified: []string{now.UTC().Format(http.TimeFormat)},
	}
}

func emptySnapshot() *Snapshot {
	return &Snapshot{byAddr: map[netip.Addr]*Guest{}, byID: map[string]*Guest{}}
}

// buildSnapshot makes a snapshot from every stored instance.
func buildSnapshot(rev int64, instances []*imds.Instance, now time.Time) *Snapshot {
	s := &Snapshot{
		Revision: rev,
		byAddr:   make(map[netip.Addr]*Guest, len(instances)*2),
		byID:     make(map[string]*Guest, len(instances)),
	}
	for _, in := range instances {
		s.add(newGuest(in, now))
	}
	return s
}

// with returns a copy of s with the given instances replaced (nil value:
// removed). Only the maps are copied; unchanged guests are shared.
func (s *Snapshot) with(rev int64, changed map[string]*imds.Instance, now time.Time) *Snapshot {
	n := &Snapshot{Revision: rev, byAddr: maps.Clone(s.byAddr), byID: maps.Clone(s.byID)}
	for id, in := range changed {
		if old := n.byID[id]; old != nil {
			n.remove(old)
		}
		if in != nil && served(in) {
			n.add(newGuest(in, now))
		}
	}
	return n
}

func (s *Snapshot) add(g *Guest) {
	if !served(g.Instance) {
		return
	}
	s.byID[g.Instance.InstanceID] = g
	for _, a := range g.Instance.Addresses() {
		if ip, err := netip.ParseAddr(a); err == nil {
			s.byAddr[ip.Unmap()] = g
		}
	}
}

func (s *Snapshot) remove(g *Guest) {
	delete(s.byID, g.Instance.InstanceID)
	for _, a := range g.Instance.Addresses() {
		if ip, err := netip.ParseAddr(a); err == nil && s.byAddr[ip.Unmap()] == g {
			delete(s.byAddr, ip.Unmap())
		}
	}
}
