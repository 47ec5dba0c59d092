package credentials

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual clock: Until's channels fire only when Advance
// passes their deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Until(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !t.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: t, ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// discard is a logger for tests that provoke failures on purpose.
func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// run starts r.Run and stops it when the test ends.
func run(t testing.TB, r *Refresher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// eventually polls cond in real time; the refresher works on goroutines
// even when its clock is fake.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitFor(t testing.TB, r *Refresher, instanceID, role string) Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Wait(ctx, instanceID, role); err != nil {
		t.Fatalf("Wait(%s, %q): %v", instanceID, role, err)
	}
	scheduled(t, r, instanceID, role)
	e, ok := r.Get(instanceID, role)
	if !ok {
		t.Fatalf("Get(%s, %q) after Wait: not found", instanceID, role)
	}
	return e
}

// scheduled waits until the target's fetch has finished and its next one is
// scheduled, so that moving a fake clock afterwards cannot shift it.
func scheduled(t testing.TB, r *Refresher, instanceID, role string) {
	t.Helper()
	eventually(t, instanceID+" "+role+" is scheduled", func() bool {
		s := r.lookup(instanceID, role)
		r.mu.Lock()
		defer r.mu.Unlock()
		return s != nil && s.index >= 0
	})
}

// funcProvider adapts a function, counting calls and the most concurrent.
type funcProvider struct {
	fn       func(ctx context.Context, t Target) (Credentials, error)
	mu       sync.Mutex
	calls    map[Target]int
	inflight map[Target]int
	maxIn    int
}

func newFuncProvider(fn func(ctx context.Context, t Target) (Credentials, error)) *funcProvider {
	return &funcProvider{fn: fn, calls: map[Target]int{}, inflight: map[Target]int{}}
}

func (p *funcProvider) Retrieve(ctx context.Context, t Target) (Credentials, error) {
	p.mu.Lock()
	p.calls[t]++
	p.inflight[t]++
	p.maxIn = max(p.maxIn, p.inflight[t])
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight[t]--
		p.mu.Unlock()
	}()
	return p.fn(ctx, t)
}

func (p *funcProvider) Calls(t Target) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[t]
}

func (p *funcProvider) MaxInflight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxIn
}
