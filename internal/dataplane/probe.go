package dataplane

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// ProbeOptions are the optional knobs of a Probe; the zero value works.
type ProbeOptions struct {
	// Interval between two reads (default 2 s); Timeout bounds one read
	// (default 1 s).
	Interval, Timeout time.Duration
	// OnLag is told after each answered read how many revisions the
	// served snapshot trails the store (the watch lag).
	OnLag func(revisions int64)
	// OnError is called after each failed read.
	OnError func(err error)
	// Logger hears when the store stops answering and when it answers
	// again (once each, however many reads fail between); nil discards.
	Logger *slog.Logger
	// Now is the clock that measures how long the store was away (default
	// time.Now).
	Now func() time.Time
}

// Probe checks now and then that the store answers a read, for readiness
// reports and metrics. The follower alone cannot tell: a watch on etcd
// waits quietly through an outage. A Probe is what the control plane's
// /readyz asks: ready once the snapshot is loaded (guests are served from it
// whatever the store's state), with the store's health beside it.
type Probe struct {
	store    imds.Store
	follower *Follower
	opts     ProbeOptions
	err      atomic.Pointer[error]
	lostAt   time.Time // when the store stopped answering; zero while it answers (Run's goroutine only)
}

// NewProbe returns a probe of store, comparing its revision with f's.
func NewProbe(store imds.Store, f *Follower, opts ProbeOptions) *Probe {
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Probe{store: store, follower: f, opts: opts}
}

// Run reads the store every Interval until ctx ends.
func (p *Probe) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		p.check(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (p *Probe) check(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	var rev int64
	err := p.store.View(rctx, func(tx imds.Tx) error { rev = tx.Revision(); return nil })
	cancel()
	if err == nil && p.opts.OnLag != nil {
		p.opts.OnLag(rev - p.follower.Applied())
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		if p.opts.OnError != nil {
			p.opts.OnError(err)
		}
		p.err.Store(&err)
		if p.lostAt.IsZero() {
			p.lostAt = p.opts.Now()
			p.opts.Logger.Error("store unavailable; serving the last snapshot until it is back", "err", err)
		}
		return
	}
	p.err.Store(nil)
	if !p.lostAt.IsZero() {
		p.opts.Logger.Info("store available again", "unavailable_for", p.opts.Now().Sub(p.lostAt).Round(time.Millisecond).String())
		p.lostAt = time.Time{}
	}
}

// StoreErr is the last read's error, nil when it answered.
func (p *Probe) StoreErr() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Ready is nil once the data plane serves its first snapshot.
func (p *Probe) Ready() error { return p.follower.Ready() }

// Components reports the data plane's and the store's health.
func (p *Probe) Components() map[string]error {
	return map[string]error{"data_plane": p.follower.Ready(), "store": p.StoreErr()}
}
