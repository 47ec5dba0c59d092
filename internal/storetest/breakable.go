package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// ErrBroken is what a broken Breakable answers.
var ErrBroken = errors.New("storetest: store unavailable")

// Breakable wraps a store so that a test can take it away and bring it
// back, as a network partition from etcd would: while broken, View, Update
// and the watches fail with ErrBroken, and Break ends every running watch with
// the error it is given (imds.ErrCompacted to force a full reload).
type Breakable struct {
	imds.Store
	broken atomic.Bool
	// Failures counts the calls refused while broken.
	Failures atomic.Int64

	mu      sync.Mutex
	watches []chan error
}

// NewBreakable wraps s, working.
func NewBreakable(s imds.Store) *Breakable { return &Breakable{Store: s} }

// Break makes every later call fail and ends the running watches with end.
func (b *Breakable) Break(end error) {
	b.broken.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.watches {
		w <- end
	}
	b.watches = nil
}

// Watching is the number of watches Break would end.
func (b *Breakable) Watching() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.watches)
}

// Heal makes the store answer again.
func (b *Breakable) Heal() { b.broken.Store(false) }

func (b *Breakable) refuse() bool {
	if b.broken.Load() {
		b.Failures.Add(1)
		return true
	}
	return false
}

// View implements imds.Store.
func (b *Breakable) View(ctx context.Context, fn func(imds.Tx) error) error {
	if b.refuse() {
		return ErrBroken
	}
	return b.Store.View(ctx, fn)
}

// Update implements imds.Store.
func (b *Breakable) Update(ctx context.Context, fn func(imds.Tx) error) error {
	if b.refuse() {
		return ErrBroken
	}
	return b.Store.Update(ctx, fn)
}

// Watch implements imds.Store: the wrapped store's batches, until Break.
func (b *Breakable) Watch(ctx context.Context, rev int64) (<-chan imds.Batch, error) {
	return b.watch(ctx, func(ctx context.Context) (<-chan imds.Batch, error) { return b.Store.Watch(ctx, rev) })
}

// WatchPrefixes implements imds.Store: the wrapped store's batches, until
// Break.
func (b *Breakable) WatchPrefixes(ctx context.Context, rev int64, prefixes []string) (<-chan imds.Batch, error) {
	return b.watch(ctx, func(ctx context.Context) (<-chan imds.Batch, error) { return b.Store.WatchPrefixes(ctx, rev, prefixes) })
}

func (b *Breakable) watch(ctx context.Context, open func(context.Context) (<-chan imds.Batch, error)) (<-chan imds.Batch, error) {
	if b.refuse() {
		return nil, ErrBroken
	}
	wctx, cancel := context.WithCancel(ctx)
	in, err := open(wctx)
	if err != nil {
		cancel()
		return nil, err
	}
	end := make(chan error, 1)
	b.mu.Lock()
	b.watches = append(b.watches, end)
	b.mu.Unlock()
	out := make(chan imds.Batch)
	go func() {
		defer close(out)
		defer cancel()
		for {
			select {
			case err := <-end:
				select {
				case out <- imds.Batch{Err: err}:
				case <-ctx.Done():
				}
				return
			case batch, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- batch:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
