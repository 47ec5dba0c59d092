package dataplane

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestBucketAllowsBurstThenRate(t *testing.T) {
	var b bucket
	now := testNow
	interval := 10 * time.Millisecond // 100/s
	for i := range 5 {
		if ok, _ := b.allow(now, interval, 5); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := b.allow(now, interval, 5)
	if ok || wait <= 0 || wait > interval {
		t.Fatalf("sixth request: ok=%v wait=%v, want refused with a wait within one interval", ok, wait)
	}
	if ok, _ := b.allow(now.Add(interval), interval, 5); !ok {
		t.Fatal("a request one interval later was refused")
	}
}

func TestRateLimitAnswers429PerInstance(t *testing.T) {
	p := newPlane(t, testInstance(idA, addrA, imds.Optional), testInstance(idB, addrB, imds.Optional))
	p.h = New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{
		Now:    func() time.Time { return testNow }, // frozen clock: no refill
		Limits: Limits{Rate: 10, Burst: 3},
	})
	for i := range 3 {
		if s := p.do(req{path: "/latest/meta-data/instance-id", from: addrA}).StatusCode; s != 200 {
			t.Fatalf("request %d: %d", i, s)
		}
	}
	resp := p.do(req{path: "/latest/meta-data/instance-id", from: addrA})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || len(body) != 0 {
		t.Fatalf("over the limit: %d Retry-After=%q body=%q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if s := p.do(req{path: "/latest/meta-data/instance-id", from: addrB}).StatusCode; s != 200 {
		t.Fatalf("the other instance was limited too: %d", s)
	}
}

type countingObserver struct {
	mu     sync.Mutex
	events []RequestEvent
}

func (o *countingObserver) Request(_ *http.Request, ev *RequestEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, *ev)
}

// An instance over its rate is answered at accept, before any HTTP work:
// a complete 429 with Retry-After, counted as throttled; another instance
// is not affected.
func TestGuardShedsInstancesOverTheirRate(t *testing.T) {
	p := newPlane(t, testInstance(idA, "127.0.0.1", imds.Optional), testInstance(idB, "127.0.0.2", imds.Optional))
	obs := &countingObserver{}
	h := New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{
		Now: func() time.Time { return testNow }, Limits: Limits{Rate: 10, Burst: 2}, Observer: obs,
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(l, p.f.Snapshot, GuardOptions{Handler: h})
	srv := NewHTTPServer(h)
	go srv.Serve(g)
	defer srv.Close()
	get := func(from string) *http.Response {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + l.Addr().String() + "/latest/meta-data/instance-id")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp
	}
	// The burst, then the handler's own 429 at the boundary, then the
	// Guard's.
	for i := range 2 {
		if s := get("127.0.0.1").StatusCode; s != 200 {
			t.Fatalf("request %d: %d", i, s)
		}
	}
	for i := range 3 {
		resp := get("127.0.0.1")
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Server") != "EC2ws" {
			t.Fatalf("over the rate, request %d: %d %v", i, resp.StatusCode, resp.Header)
		}
	}
	if g.Shed.Load() == 0 {
		t.Fatal("no request was answered by the Guard")
	}
	if s := get("127.0.0.2").StatusCode; s != 200 {
		t.Fatalf("the other instance: %d", s)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	throttled := 0
	for _, ev := range obs.events {
		if ev.Outcome == OutcomeThrottled && ev.InstanceID == idA {
			throttled++
		}
	}
	if throttled != 3 {
		t.Fatalf("%d throttled events, want 3 (handler and Guard alike)", throttled)
	}
}

// The IPv4 and IPv6 endpoints share one budget per instance.
func TestHandlersSharingARateLimiterShareTheBudget(t *testing.T) {
	in := testInstance(idA, addrA, imds.Optional)
	in.MetadataOptions.HttpProtocolIPv6 = imds.Enabled
	p := newPlane(t, in)
	opts := Options{Now: func() time.Time { return testNow }, RateLimiter: NewRateLimiter(Limits{Rate: 10, Burst: 2})}
	v4 := New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, opts)
	opts.IPv6Endpoint = true
	v6 := New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, opts)
	get := func(h *Handler) int {
		p.h = h
		return p.do(req{path: "/latest/meta-data/instance-id", from: addrA}).StatusCode
	}
	if a, b := get(v4), get(v6); a != 200 || b != 200 {
		t.Fatalf("within the burst of 2: %d %d", a, b)
	}
	if a, b := get(v4), get(v6); a != http.StatusTooManyRequests || b != http.StatusTooManyRequests {
		t.Fatalf("after one request on each endpoint: %d %d, want 429 on both (one budget)", a, b)
	}
}
