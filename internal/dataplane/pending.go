package dataplane

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Outcomes of a wait for an unknown caller (PendingOptions.OnWait).
const (
	WaitFound    = "found"    // the caller's instance appeared: served
	WaitTimeout  = "timeout"  // MaxWait passed (or the request ended) first: 404
	WaitGone     = "gone"     // no source expects the address any more: 404
	WaitOverflow = "overflow" // too many requests waiting already: 404 at once
)

// Pending defaults.
const (
	DefaultPendingMaxWait    = time.Second
	DefaultPendingWindow     = 5 * time.Second
	DefaultPendingMaxWaiters = 256
)

// PendingOptions are the optional knobs of Pending.
type PendingOptions struct {
	// MaxWait bounds one request's wait (DefaultPendingMaxWait).
	MaxWait time.Duration
	// Window is how long a source's signal (Expect, Begin) stays valid
	// unless withdrawn first (DefaultPendingWindow).
	Window time.Duration
	// MaxWaiters bounds the requests waiting at once; the rest get their
	// 404 at once (DefaultPendingMaxWaiters).
	MaxWaiters int
	Now        func() time.Time
	// OnWait is told the outcome of every wait and how long it took, for
	// metrics.
	OnWait func(outcome string, waited time.Duration)
}

// Pending closes the start-up race between an instance source and the
// data plane. A workload can call the metadata service the moment it runs,
// before its source has written it to the store and before the snapshot
// holds it. A source tells Pending what it is about to write (Expect an
// address, or Begin a reconcile whose addresses it does not know yet); a
// request from an address the snapshot does not know then waits, bounded
// in time and in number, for the snapshots that follow (Published), instead
// of getting a 404. With no signal, unknown callers get their 404 at once
// without taking a lock.
type Pending struct {
	opts PendingOptions

	armed   atomic.Int64 // unix nanoseconds until which some signal may be valid
	waiters atomic.Int64

	// revoked holds instance id → launch generation of workloads a source
	// has seen end but the snapshot may still serve; nRevoked counts them,
	// so that the common case costs one atomic load.
	revoked  sync.Map
	nRevoked atomic.Int64

	mu      sync.Mutex
	expect  map[netip.Addr]time.Time // address → valid until
	flights map[uint64]time.Time     // in-flight reconciles → valid until
	nextID  uint64
	changed chan struct{} // closed at every Published
}

// NewPending returns a Pending with no signals.
func NewPending(opts PendingOptions) *Pending {
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultPendingMaxWait
	}
	if opts.Window <= 0 {
		opts.Window = DefaultPendingWindow
	}
	if opts.MaxWaiters <= 0 {
		opts.MaxWaiters = DefaultPendingMaxWaiters
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Pending{opts: opts, expect: map[netip.Addr]time.Time{}, flights: map[uint64]time.Time{}, changed: make(chan struct{})}
}

// arm records that some signal may be valid until t.
func (p *Pending) arm(t time.Time) {
	for {
		cur := p.armed.Load()
		if t.UnixNano() <= cur || p.armed.CompareAndSwap(cur, t.UnixNano()) {
			return
		}
	}
}

// Expect says that a workload at these addresses has started and its
// instance is about to be written.
func (p *Pending) Expect(addrs ...netip.Addr) {
	until := p.opts.Now().Add(p.opts.Window)
	p.mu.Lock()
	for _, a := range addrs {
		p.expect[a.Unmap()] = until
	}
	p.mu.Unlock()
	p.arm(until)
}

// Withdraw takes back Expect: no instance will be written for these
// addresses (the workload was refused or its launch failed).
func (p *Pending) Withdraw(addrs ...netip.Addr) {
	p.mu.Lock()
	for _, a := range addrs {
		delete(p.expect, a.Unmap())
	}
	p.mu.Unlock()
	p.wake()
}

// Revoke says that the workload of this instance and launch generation has
// ended: until the snapshot drops (or relaunches) it, a request from its
// addresses is treated as unknown rather than answered as that instance.
// The address may already belong to a new workload that is not written
// yet; it must never be served the old instance's tokens or credentials.
func (p *Pending) Revoke(instanceID string, generation uint64) {
	if _, loaded := p.revoked.Swap(instanceID, generation); !loaded {
		p.nRevoked.Add(1)
	}
	p.arm(p.opts.Now().Add(p.opts.Window))
}

// Revoked reports whether g's instance was revoked (see Revoke).
func (p *Pending) Revoked(in *imds.Instance) bool {
	if p.nRevoked.Load() == 0 {
		return false
	}
	gen, ok := p.revoked.Load(in.InstanceID)
	return ok && gen.(uint64) == in.Generation
}

// Begin says that a reconcile (or a workload start whose addresses are not
// known yet) is in flight: until the returned function is called, any
// unknown caller waits. Call Expect for the addresses found before calling
// the returned function, so that their callers go on waiting for the
// snapshot.
func (p *Pending) Begin() (done func()) {
	until := p.opts.Now().Add(p.opts.Window)
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.flights[id] = until
	p.mu.Unlock()
	p.arm(until)
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			delete(p.flights, id)
			p.mu.Unlock()
			p.wake()
		})
	}
}

// Published tells waiting requests that s is now served; expected
// addresses that s holds are forgotten.
func (p *Pending) Published(s *Snapshot) {
	if p.nRevoked.Load() > 0 {
		p.revoked.Range(func(k, v any) bool {
			if g := s.GuestByID(k.(string)); g == nil || g.Instance.Generation != v.(uint64) {
				if p.revoked.CompareAndDelete(k, v) {
					p.nRevoked.Add(-1)
				}
			}
			return true
		})
	}
	if p.armed.Load() < p.opts.Now().UnixNano() {
		return // nobody can be waiting
	}
	p.mu.Lock()
	for a := range p.expect {
		if s.Guest(a) != nil {
			delete(p.expect, a)
		}
	}
	p.mu.Unlock()
	p.wake()
}

// wake releases every waiter to look again.
func (p *Pending) wake() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// signalled reports whether a request from addr should wait, and returns
// the channel that the next change closes. p.mu must be held.
func (p *Pending) signalledLocked(addr netip.Addr, now time.Time) bool {
	if until, ok := p.expect[addr]; ok {
		if now.Before(until) {
			return true
		}
		delete(p.expect, addr)
	}
	valid := false
	for id, until := range p.flights {
		if now.Before(until) {
			valid = true
		} else {
			delete(p.flights, id)
		}
	}
	return valid
}

// Wait returns addr's guest from snap once it is there, or nil: at once when
// no source has signalled anything that could bring it, otherwise after at
// most MaxWait.
func (p *Pending) Wait(ctx context.Context, addr netip.Addr, snap func() *Snapshot) *Guest {
	start := p.opts.Now()
	if p.armed.Load() < start.UnixNano() {
		return nil
	}
	addr = addr.Unmap()
	if p.waiters.Add(1) > int64(p.opts.MaxWaiters) {
		p.waiters.Add(-1)
		p.report(WaitOverflow, start)
		return nil
	}
	defer p.waiters.Add(-1)
	var timer *time.Timer
	for {
		now := p.opts.Now()
		p.mu.Lock()
		ch := p.changed
		sig := p.signalledLocked(addr, now)
		p.mu.Unlock()
		// Look at the snapshot after taking ch: a snapshot published from
		// here on closes ch, so none is missed.
		if g := snap().Guest(addr); g != nil && !p.Revoked(g.Instance) {
			if timer != nil {
				p.report(WaitFound, start)
			}
			return g
		}
		if !sig {
			if timer != nil {
				p.report(WaitGone, start)
			}
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(p.opts.MaxWait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			p.report(WaitTimeout, start)
			return nil
		case <-ctx.Done():
			p.report(WaitTimeout, start)
			return nil
		}
	}
}

// Waiting is the number of requests waiting now.
func (p *Pending) Waiting() int { return int(p.waiters.Load()) }

func (p *Pending) report(outcome string, start time.Time) {
	if p.opts.OnWait != nil {
		p.opts.OnWait(outcome, p.opts.Now().Sub(start))
	}
}
