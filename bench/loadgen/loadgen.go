// Package loadgen is the benchmark harness's load generator. It drives an
// IMDS-shaped HTTP server the way guests do: every request on a new TCP
// connection (IMDS answers with Connection: close), optionally from a chosen
// loopback source address so that the server sees a particular instance.
//
// Two modes: closed loop (N workers, each sending its next request as soon
// as the previous one is answered; this finds the saturation rate) and open
// loop (requests scheduled at a fixed rate whatever the answers do; this
// gives the latency at a given load without coordinated omission hiding
// stalls).
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TokenMode is how a workload authenticates its GETs.
type TokenMode int

// Token modes.
const (
	// NoToken sends plain IMDSv1 GETs.
	NoToken TokenMode = iota
	// ReusedToken mints one token per worker before measuring and sends it
	// with every GET, as the AWS SDK for Go caches its token.
	ReusedToken
	// FreshToken sends a token PUT before every GET, as SDKs without a token
	// cache do. Each iteration is two requests and both are counted.
	FreshToken
)

// Header names as clients send them.
const (
	hdrToken    = "X-Aws-Ec2-Metadata-Token"
	hdrTokenTTL = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	tokenPath   = "/latest/api/token"
)

// Workload is one kind of request sequence.
type Workload struct {
	// Name labels the workload in results.
	Name string
	// Path is what is fetched, e.g. /latest/meta-data/instance-id.
	Path string
	// Token is how the GET authenticates.
	Token TokenMode
}

// RequestsPerIteration is how many requests one iteration sends.
func (w Workload) RequestsPerIteration() int {
	if w.Token == FreshToken {
		return 2
	}
	return 1
}

// Config is one measured cell.
type Config struct {
	// Target is the server's base URL, e.g. http://127.0.0.1:1338.
	Target string
	// Sources are the local addresses to dial from; worker i uses
	// Sources[i%len(Sources)]. Empty lets the kernel choose.
	Sources []netip.Addr
	// Workload is what each iteration sends.
	Workload Workload
	// Concurrency is the number of closed-loop workers, or in open loop the
	// most requests in flight (default 1; open loop default 256).
	Concurrency int
	// Rate switches to open loop: requests per second (an iteration of a
	// FreshToken workload counts as two). 0 is closed loop.
	Rate float64
	// Duration is the measured time (default 5 s).
	Duration time.Duration
	// Warmup runs the same load, unmeasured, before Duration.
	Warmup time.Duration
	// Timeout bounds one request (default 5 s).
	Timeout time.Duration
}

// Result is what one cell measured. Latencies are per request.
type Result struct {
	Workload    string
	Concurrency int
	// Rate is the open-loop target rate; 0 for closed loop.
	Rate float64
	// Duration is the measured wall time.
	Duration time.Duration
	// OK counts requests answered 200 inside the measured window.
	OK int64
	// Errors counts requests that failed or were answered with anything
	// but 200 inside the measured window.
	Errors int64
	// FirstError describes one failure, for the report.
	FirstError string
	// Late counts open-loop iterations that started more than a millisecond
	// after their scheduled time (the generator could not keep the rate).
	Late int64
	// ReqPerSec is OK / Duration.
	ReqPerSec          float64
	P50, P90, P99, Max time.Duration
}

// Run measures one cell.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
		if cfg.Rate > 0 {
			cfg.Concurrency = 256
		}
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	base, err := url.Parse(cfg.Target)
	if err != nil {
		return Result{}, fmt.Errorf("target: %w", err)
	}
	clients := newClients(cfg)
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		w, err := newWorker(ctx, clients[i%len(clients)], base, cfg.Workload)
		if err != nil {
			return Result{}, err
		}
		workers[i] = w
	}
	// Tokens for ReusedToken are minted before the clock starts, as an SDK
	// mints once per process.
	if cfg.Workload.Token == ReusedToken {
		for _, w := range workers {
			if err := w.mint(); err != nil {
				return Result{}, fmt.Errorf("mint the reused token: %w", err)
			}
		}
	}

	start := time.Now()
	win := window{from: start.Add(cfg.Warmup), to: start.Add(cfg.Warmup + cfg.Duration)}
	var late atomic.Int64
	if cfg.Rate > 0 {
		runOpen(ctx, cfg, workers, start, win, &late)
	} else {
		runClosed(ctx, workers, win)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	r := Result{Workload: cfg.Workload.Name, Concurrency: cfg.Concurrency, Rate: cfg.Rate, Duration: cfg.Duration, Late: late.Load()}
	if cfg.Rate == 0 {
		r.Concurrency = len(workers)
	}
	var lat []int64
	for _, w := range workers {
		lat = append(lat, w.lat...)
		r.Errors += w.errs
		if r.FirstError == "" {
			r.FirstError = w.firstErr
		}
	}
	r.OK = int64(len(lat))
	r.ReqPerSec = float64(r.OK) / cfg.Duration.Seconds()
	slices.Sort(lat)
	r.P50, r.P90, r.P99 = percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99)
	if len(lat) > 0 {
		r.Max = time.Duration(lat[len(lat)-1])
	}
	return r, nil
}

// percentile is the nearest-rank percentile of sorted nanoseconds.
func percentile(sorted []int64, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return time.Duration(sorted[min(max(i, 0), len(sorted)-1)])
}

// newClients makes one HTTP client per source address. Keep-alives are off:
// the server closes every connection anyway, and the client must not try to
// reuse one.
func newClients(cfg Config) []*http.Client {
	sources := cfg.Sources
	if len(sources) == 0 {
		sources = []netip.Addr{{}}
	}
	out := make([]*http.Client, len(sources))
	for i, src := range sources {
		d := &net.Dialer{Timeout: cfg.Timeout}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		tr := &http.Transport{
			Proxy:                 nil, // never a proxy from the environment
			DialContext:           d.DialContext,
			DisableKeepAlives:     true,
			DisableCompression:    true,
			ResponseHeaderTimeout: cfg.Timeout,
		}
		out[i] = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	}
	return out
}

// window is the measured interval: a request counts if it completes in it.
type window struct{ from, to time.Time }

func runClosed(ctx context.Context, workers []*worker, win window) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if !time.Now().Before(win.to) {
					return
				}
				w.iterate(win)
			}
		})
	}
	wg.Wait()
}

// runOpen schedules iterations at a fixed rate. Latency is measured from
// the moment a worker starts the request; Late counts iterations that
// started over a millisecond behind schedule, which would make the figure
// optimistic if it were not small.
func runOpen(ctx context.Context, cfg Config, workers []*worker, start time.Time, win window, late *atomic.Int64) {
	iterRate := cfg.Rate / float64(cfg.Workload.RequestsPerIteration())
	interval := time.Duration(float64(time.Second) / iterRate)
	if interval <= 0 {
		interval = 1
	}
	due := make(chan time.Time, 1<<16)
	go func() {
		defer close(due)
		next := start
		for next.Before(win.to) && ctx.Err() == nil {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			now := time.Now()
			for !next.After(now) && next.Before(win.to) {
				select {
				case due <- next:
				default:
					late.Add(1) // every worker busy and the queue full
				}
				next = next.Add(interval)
			}
		}
	}()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for sched := range due {
				if time.Since(sched) > time.Millisecond {
					late.Add(1)
				}
				w.iterate(win)
			}
		})
	}
	wg.Wait()
}

// worker sends one request at a time and keeps its own latencies, so the
// measured path takes no lock.
type worker struct {
	hc       *http.Client
	wl       Workload
	get, put *http.Request
	buf      bytes.Buffer

	lat      []int64
	errs     int64
	firstErr string
}

func newWorker(ctx context.Context, hc *http.Client, base *url.URL, wl Workload) (*worker, error) {
	root := strings.TrimSuffix(base.String(), "/")
	get, err := http.NewRequestWithContext(ctx, http.MethodGet, root+wl.Path, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, root+tokenPath, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	put.Header[hdrTokenTTL] = []string{"21600"}
	return &worker{hc: hc, wl: wl, get: get, put: put, lat: make([]int64, 0, 4096)}, nil
}

// do sends r and leaves the body in w.buf.
func (w *worker) do(r *http.Request) (int, error) {
	resp, err := w.hc.Do(r)
	if err != nil {
		return 0, err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// mint fetches a token for the worker's GETs.
func (w *worker) mint() error {
	status, err := w.do(w.put)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("token PUT answered %d", status)
	}
	w.get.Header[hdrToken] = []string{w.buf.String()}
	return nil
}

// iterate sends one iteration and records each request that completes
// inside the window.
func (w *worker) iterate(win window) {
	if w.wl.Token == FreshToken {
		t0 := time.Now()
		status, err := w.do(w.put)
		ok := w.record(win, w.put, t0, status, err)
		if !ok {
			return
		}
		w.get.Header[hdrToken] = []string{w.buf.String()}
	}
	t0 := time.Now()
	status, err := w.do(w.get)
	w.record(win, w.get, t0, status, err)
}

// record notes one request; it reports whether the request succeeded.
func (w *worker) record(win window, r *http.Request, t0 time.Time, status int, err error) bool {
	t1 := time.Now()
	ok := err == nil && status == http.StatusOK
	if t1.Before(win.from) || !t1.Before(win.to) {
		return ok
	}
	if ok {
		w.lat = append(w.lat, int64(t1.Sub(t0)))
		return true
	}
	w.errs++
	if w.firstErr == "" {
		if err == nil {
			err = fmt.Errorf("%s %s answered %d", r.Method, r.URL.Path, status)
		}
		w.firstErr = err.Error()
	}
	return false
}

// ErrNoRequests is returned by Check when a cell completed no request.
var ErrNoRequests = errors.New("no request completed")

// Check turns a result into an error when any request failed or none
// succeeded: a benchmark with errors measures the wrong thing.
func (r Result) Check() error {
	if r.Errors > 0 {
		return fmt.Errorf("%s: %d of %d requests failed, e.g. %s", r.Workload, r.Errors, r.Errors+r.OK, r.FirstError)
	}
	if r.OK == 0 {
		return fmt.Errorf("%s: %w", r.Workload, ErrNoRequests)
	}
	return nil
}
