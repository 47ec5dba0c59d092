package dataplane

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// fakeSource is a snapshot source the test publishes to by hand, as the
// follower does: swap the pointer, then tell Pending.
type fakeSource struct {
	cur atomic.Pointer[Snapshot]
	p   *Pending
	rev int64
}

func newFakeSource(p *Pending, instances ...*imds.Instance) *fakeSource {
	f := &fakeSource{p: p}
	f.cur.Store(buildSnapshot(0, instances, testNow))
	return f
}

func (f *fakeSource) snap() *Snapshot { return f.cur.Load() }

func (f *fakeSource) publish(instances ...*imds.Instance) {
	f.rev++
	s := buildSnapshot(f.rev, instances, testNow)
	f.cur.Store(s)
	f.p.Published(s)
}

type waitLog struct {
	mu       sync.Mutex
	outcomes []string
}

func (l *waitLog) add(o string, _ time.Duration) {
	l.mu.Lock()
	l.outcomes = append(l.outcomes, o)
	l.mu.Unlock()
}

func (l *waitLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.outcomes...)
}

func pendingPlane(t *testing.T, opts PendingOptions, instances ...*imds.Instance) (*Pending, *fakeSource, *Handler, *waitLog) {
	t.Helper()
	log := &waitLog{}
	opts.OnWait = log.add
	p := NewPending(opts)
	src := newFakeSource(p, instances...)
	h := New(src.snap, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{Now: func() time.Time { return testNow }, Pending: p})
	return p, src, h, log
}

// putToken sends the token PUT from addr, as a container's first call.
func putToken(h *Handler, from string) (int, string) {
	r := httptest.NewRequest(http.MethodPut, "/latest/api/token", nil)
	r.RemoteAddr = from + ":40000"
	r.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

// waitForWaiters polls until n requests are waiting (the request under
// test has reached Pending.Wait).
func waitForWaiters(t *testing.T, p *Pending, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests waiting, want %d", p.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPendingUnknownCallerWithoutSignalIs404AtOnce(t *testing.T) {
	_, _, h, log := pendingPlane(t, PendingOptions{MaxWait: 10 * time.Second})
	start := time.Now()
	if code, _ := putToken(h, "198.51.100.7"); code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %s", d)
	}
	if o := log.get(); len(o) != 0 {
		t.Fatalf("outcomes %v: nothing should have waited", o)
	}
}

func TestPendingExpectedCallerGetsItsToken(t *testing.T) {
	p, src, h, log := pendingPlane(t, PendingOptions{MaxWait: time.Hour})
	addr := netip.MustParseAddr("203.0.113.10")
	p.Expect(addr)
	type result struct {
		code int
		body string
	}
	done := make(chan result, 1)
	go func() {
		c, b := putToken(h, addr.String())
		done <- result{c, b}
	}()
	waitForWaiters(t, p, 1)
	// An unrelated snapshot wakes the waiter, which goes on waiting.
	src.publish(testInstance("i-0000000000000000a", "203.0.113.11", imds.Required))
	waitForWaiters(t, p, 1)
	src.publish(testInstance("i-0000000000000000a", "203.0.113.11", imds.Required), testInstance("i-0000000000000000b", addr.String(), imds.Required))
	r := <-done
	if r.code != http.StatusOK || r.body == "" {
		t.Fatalf("token PUT: %d %q", r.code, r.body)
	}
	if err := func() error { _, err := (fakeTokens{}).Verify(r.body, "i-0000000000000000b", 7, testNow); return err }(); err != nil {
		t.Fatalf("token %q is not the new instance's: %v", r.body, err)
	}
	if o := log.get(); len(o) != 1 || o[0] != WaitFound {
		t.Fatalf("outcomes %v", o)
	}
	// Served now: the expectation is gone, a later stranger is 404 at once.
	p.mu.Lock()
	n := len(p.expect)
	p.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d expectations left", n)
	}
}

func TestPendingReconcileInFlightThenGone(t *testing.T) {
	p, _, h, log := pendingPlane(t, PendingOptions{MaxWait: time.Hour})
	done := p.Begin()
	res := make(chan int, 1)
	go func() { c, _ := putToken(h, "198.51.100.9"); res <- c }()
	waitForWaiters(t, p, 1)
	done() // the reconcile found nothing at that address
	if c := <-res; c != http.StatusNotFound {
		t.Fatalf("status %d, want 404", c)
	}
	if o := log.get(); len(o) != 1 || o[0] != WaitGone {
		t.Fatalf("outcomes %v", o)
	}
	// With the flight over, nobody waits.
	if c, _ := putToken(h, "198.51.100.9"); c != http.StatusNotFound || len(log.get()) != 1 {
		t.Fatalf("after the reconcile: %d %v", c, log.get())
	}
}

func TestPendingReconcileHandsOverToExpect(t *testing.T) {
	p, src, h, _ := pendingPlane(t, PendingOptions{MaxWait: time.Hour})
	done := p.Begin()
	res := make(chan int, 1)
	go func() { c, _ := putToken(h, "203.0.113.20"); res <- c }()
	waitForWaiters(t, p, 1)
	p.Expect(netip.MustParseAddr("203.0.113.20"))
	done()
	waitForWaiters(t, p, 1) // still waiting: the address is expected
	src.publish(testInstance("i-0000000000000000c", "203.0.113.20", imds.Required))
	if c := <-res; c != http.StatusOK {
		t.Fatalf("status %d", c)
	}
}

func TestPendingWithdrawAndTimeout(t *testing.T) {
	p, _, h, log := pendingPlane(t, PendingOptions{MaxWait: 50 * time.Millisecond})
	a := netip.MustParseAddr("203.0.113.30")
	p.Expect(a)
	if c, _ := putToken(h, a.String()); c != http.StatusNotFound {
		t.Fatalf("status %d", c)
	}
	if o := log.get(); len(o) != 1 || o[0] != WaitTimeout {
		t.Fatalf("outcomes %v", o)
	}
	p.Withdraw(a)
	if c, _ := putToken(h, a.String()); c != http.StatusNotFound || len(log.get()) != 1 {
		t.Fatalf("after Withdraw: %d %v", c, log.get())
	}
}

func TestPendingSignalsExpire(t *testing.T) {
	now := testNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	log := &waitLog{}
	p := NewPending(PendingOptions{MaxWait: time.Hour, Window: 5 * time.Second, Now: clock, OnWait: log.add})
	src := newFakeSource(p)
	p.Expect(netip.MustParseAddr("203.0.113.40"))
	_ = p.Begin() // never finished: a source that died mid-reconcile
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	if g := p.Wait(context.Background(), netip.MustParseAddr("203.0.113.40"), src.snap); g != nil || len(log.get()) != 0 {
		t.Fatalf("an expired signal made a caller wait: %v", log.get())
	}
}

func TestPendingBoundsWaiters(t *testing.T) {
	p, src, h, log := pendingPlane(t, PendingOptions{MaxWait: time.Hour, MaxWaiters: 2})
	a := netip.MustParseAddr("203.0.113.50")
	p.Expect(a)
	res := make(chan int, 2)
	for range 2 {
		go func() { c, _ := putToken(h, a.String()); res <- c }()
	}
	waitForWaiters(t, p, 2)
	if c, _ := putToken(h, a.String()); c != http.StatusNotFound {
		t.Fatalf("third waiter: %d, want 404 at once", c)
	}
	if o := log.get(); len(o) != 1 || o[0] != WaitOverflow {
		t.Fatalf("outcomes %v", o)
	}
	src.publish(testInstance("i-0000000000000000d", a.String(), imds.Required))
	for range 2 {
		if c := <-res; c != http.StatusOK {
			t.Fatalf("waiter: %d", c)
		}
	}
}

func TestPendingRequestCancelled(t *testing.T) {
	p, src, _, log := pendingPlane(t, PendingOptions{MaxWait: time.Hour})
	a := netip.MustParseAddr("203.0.113.60")
	p.Expect(a)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan *Guest, 1)
	go func() { res <- p.Wait(ctx, a, src.snap) }()
	waitForWaiters(t, p, 1)
	cancel()
	if g := <-res; g != nil {
		t.Fatal("a cancelled wait returned a guest")
	}
	if o := log.get(); len(o) != 1 || o[0] != WaitTimeout {
		t.Fatalf("outcomes %v", o)
	}
}

func TestPendingRevokedInstanceIsNeverServedToTheNextWorkload(t *testing.T) {
	old := testInstance("i-0000000000000000e", "203.0.113.70", imds.Required)
	p, src, h, _ := pendingPlane(t, PendingOptions{MaxWait: time.Hour}, old)
	if c, tok := putToken(h, "203.0.113.70"); c != http.StatusOK || tok == "" {
		t.Fatalf("before: %d", c)
	}
	// The workload ended; its instance is still in the snapshot.
	p.Revoke(old.InstanceID, old.Generation)
	if c, _ := putToken(h, "203.0.113.70"); c != http.StatusNotFound {
		t.Fatalf("a revoked instance answered: %d", c)
	}
	// A new workload takes the address: its caller waits for its own
	// instance, not the old one still in the snapshot.
	p.Expect(netip.MustParseAddr("203.0.113.70"))
	res := make(chan string, 1)
	go func() { _, tok := putToken(h, "203.0.113.70"); res <- tok }()
	waitForWaiters(t, p, 1)
	next := testInstance("i-0000000000000000f", "203.0.113.70", imds.Required)
	src.publish(next)
	tok := <-res
	if _, err := (fakeTokens{}).Verify(tok, next.InstanceID, next.Generation, testNow); err != nil {
		t.Fatalf("token %q is not the new instance's: %v", tok, err)
	}
	// The revocation is gone with the instance; a relaunch of the same id
	// under a new generation is served at once.
	if n := p.nRevoked.Load(); n != 0 {
		t.Fatalf("%d revocations left", n)
	}
	p.Revoke(next.InstanceID, next.Generation)
	again := testInstance("i-0000000000000000f", "203.0.113.70", imds.Required)
	again.Generation = 8
	src.publish(again)
	if c, _ := putToken(h, "203.0.113.70"); c != http.StatusOK {
		t.Fatalf("a new generation of a revoked instance: %d", c)
	}
}
