package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeIMDS is a tiny IMDS: PUT /latest/api/token mints "tok-N", GETs under
// /v2/ need a token it minted, /fail answers 401, and it records what it saw.
type fakeIMDS struct {
	url    string
	conns  atomic.Int64
	puts   atomic.Int64
	gets   atomic.Int64
	mu     sync.Mutex
	issued map[string]bool
	used   map[string]int
	remote map[string]bool
}

func newFakeIMDS(t *testing.T) *fakeIMDS {
	t.Helper()
	f := &fakeIMDS{issued: map[string]bool{}, used: map[string]int{}, remote: map[string]bool{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeIMDS) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	f.mu.Lock()
	f.remote[host] = true
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tok := "tok-" + strconv.FormatInt(f.puts.Add(1), 10)
		f.mu.Lock()
		f.issued[tok] = true
		f.mu.Unlock()
		_, _ = w.Write([]byte(tok))
	case r.URL.Path == "/fail":
		w.WriteHeader(http.StatusUnauthorized)
	case strings.HasPrefix(r.URL.Path, "/v2/"):
		tok := r.Header.Get("X-aws-ec2-metadata-token")
		f.mu.Lock()
		ok := f.issued[tok]
		f.used[tok]++
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.gets.Add(1)
		_, _ = w.Write([]byte("i-0123456789abcdef0"))
	default:
		f.gets.Add(1)
		_, _ = w.Write([]byte("i-0123456789abcdef0"))
	}
}

func TestClosedLoopUsesANewConnectionPerRequest(t *testing.T) {
	f := newFakeIMDS(t)
	r, err := Run(context.Background(), Config{Target: f.url, Workload: Workload{Name: "v1", Path: "/latest/meta-data/instance-id"},
		Concurrency: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if r.OK < 10 || r.Concurrency != 4 {
		t.Fatalf("OK=%d concurrency=%d: want a measured run with 4 workers", r.OK, r.Concurrency)
	}
	// Warm-up and the requests finishing outside the window are served but
	// not counted, so the server sees at least as many as were counted.
	if got := f.conns.Load(); got < r.OK || got != f.gets.Load() {
		t.Fatalf("%d connections for %d served and %d counted requests: want one connection per request", got, f.gets.Load(), r.OK)
	}
	if !(r.P50 > 0 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
		t.Fatalf("percentiles out of order: p50 %s p90 %s p99 %s max %s", r.P50, r.P90, r.P99, r.Max)
	}
	if want := float64(r.OK) / 0.3; r.ReqPerSec < want*0.99 || r.ReqPerSec > want*1.01 {
		t.Fatalf("req/s %.0f, want OK/duration %.0f", r.ReqPerSec, want)
	}
}

func TestReusedTokenMintsOncePerWorker(t *testing.T) {
	f := newFakeIMDS(t)
	r, err := Run(context.Background(), Config{Target: f.url, Workload: Workload{Name: "v2", Path: "/v2/instance-id", Token: ReusedToken},
		Concurrency: 3, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if f.puts.Load() != 3 {
		t.Fatalf("%d token PUTs, want one per worker (3)", f.puts.Load())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.used) != 3 {
		t.Fatalf("GETs used %d distinct tokens, want 3", len(f.used))
	}
}

func TestFreshTokenSendsAPUTBeforeEveryGETAndCountsBoth(t *testing.T) {
	f := newFakeIMDS(t)
	r, err := Run(context.Background(), Config{Target: f.url, Workload: Workload{Name: "put+get", Path: "/v2/instance-id", Token: FreshToken},
		Concurrency: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for tok, n := range f.used {
		if n != 1 {
			t.Fatalf("token %s used %d times, want a new token for every GET", tok, n)
		}
	}
	served := f.puts.Load() + f.gets.Load()
	if r.OK > served || r.OK < served-4 {
		t.Fatalf("counted %d requests, server answered %d PUTs + %d GETs: both must be counted", r.OK, f.puts.Load(), f.gets.Load())
	}
}

func TestFailuresAreCountedAndReported(t *testing.T) {
	f := newFakeIMDS(t)
	r, err := Run(context.Background(), Config{Target: f.url, Workload: Workload{Name: "fail", Path: "/fail"}, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 0 || r.Errors == 0 {
		t.Fatalf("OK=%d errors=%d: a 401 must count as an error", r.OK, r.Errors)
	}
	err = r.Check()
	if err == nil || !strings.Contains(err.Error(), "answered 401") {
		t.Fatalf("Check() = %v, want an error naming the status", err)
	}
}

func TestUnreachableTargetIsAnError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r, err := Run(context.Background(), Config{Target: "http://" + addr, Workload: Workload{Name: "down", Path: "/"}, Duration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Check() == nil || r.FirstError == "" {
		t.Fatalf("result %+v: want connection failures reported", r)
	}
}

func TestSourcesSetTheCallersAddress(t *testing.T) {
	f := newFakeIMDS(t)
	src := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	r, err := Run(context.Background(), Config{Target: f.url, Sources: src, Workload: Workload{Name: "v1", Path: "/x"},
		Concurrency: 2, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.remote) != 2 || !f.remote["127.0.0.2"] || !f.remote["127.0.0.3"] {
		t.Fatalf("server saw callers %v, want 127.0.0.2 and 127.0.0.3", f.remote)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	s := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}, {0.01, 1}} {
		if got := percentile(s, c.q); got != time.Duration(c.want) {
			t.Errorf("percentile(%v) = %d, want %d", c.q, got, c.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing must be 0")
	}
}
