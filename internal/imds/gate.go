package imds

import (
	"context"
	"sync"
)

// Gate is a store's open or closed state. Operations pass through it
// shared, so that Close waits for the ones running; once closed, every
// operation is refused with ErrClosed. The zero value is open.
type Gate struct {
	mu     sync.RWMutex
	closed bool
}

// Enter admits one operation: it fails with ctx's error or ErrClosed, and
// otherwise holds the gate shared until leave is called.
func (g *Gate) Enter(ctx context.Context) (leave func(), err error) {
	return g.enter(ctx, g.mu.RLock, g.mu.RUnlock)
}

// EnterAlone is Enter for an operation that must run alone: it holds the
// gate exclusively until leave is called.
func (g *Gate) EnterAlone(ctx context.Context) (leave func(), err error) {
	return g.enter(ctx, g.mu.Lock, g.mu.Unlock)
}

func (g *Gate) enter(ctx context.Context, lock, unlock func()) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lock()
	if g.closed {
		unlock()
		return nil, ErrClosed
	}
	return unlock, nil
}

// Close waits for the running operations, closes the gate and runs release
// (which frees the store's resources) with the gate held. A second Close
// returns ErrClosed and does not run release.
func (g *Gate) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.closed = true
	return release()
}
