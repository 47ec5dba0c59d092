//go:build integration

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFloodedNeighbourKeepsItsLatency compares a neighbour's p99 latency
// with and without a flooding guest beside it, in the same run. It is a
// timing measurement, so it runs with the integration tag (scripts/test.sh)
// and not in the default go test.
func TestFloodedNeighbourKeepsItsLatency(t *testing.T) {
	bin := buildFrontdesk(t)
	p := startOpsProc(t, bin, "--demo", "--demo-http-tokens", "optional", "--rate-limit", "200", "--rate-burst", "50", "--log-level", "warn")
	second := launchOpsGuest(t, p.apiURL, p.dataDir, p.dataURL)
	neighbour := opsClient("127.0.0.2")
	// sample paces n requests of the neighbour at 100/s, half its
	// rate limit, and returns their latencies.
	sample := func(n int) []time.Duration {
		t.Helper()
		var lat []time.Duration
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range n {
			<-tick.C
			status, body, took, err := opsGet(neighbour, p.dataURL+"/latest/meta-data/instance-id")
			if err != nil || status != 200 || body != second {
				t.Fatalf("the neighbour: %d %q %v", status, body, err)
			}
			lat = append(lat, took)
		}
		return lat
	}

	var served, throttled, other, noRetryAfter int64
	// flood starts the flooding guest: 8 unpaced clients in a separate
	// process at the lowest CPU priority. On EC2 a guest burns its own
	// vCPUs, not the host's; on this shared 2-core machine a flooder
	// in the test process would starve the server and the neighbour of
	// CPU and measure the machine, not frontdesk's fairness.
	flood := func() (stop func()) {
		cmd := exec.Command("nice", "-n", "19", os.Args[0], "-test.run=^TestFloodHelperProcess$")
		cmd.Env = append(os.Environ(), "FRONTDESK_FLOOD_URL="+p.dataURL+"/latest/meta-data/instance-id", "FRONTDESK_FLOOD_FROM=127.0.0.1")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start the flooder: %v", err)
		}
		return func() {
			in.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("flooder: %v\n%s", err, out.String())
			}
			var a, b, c, d int64
			if _, err := fmt.Sscanf(floodLine(out.String()), "flood %d %d %d %d", &a, &b, &c, &d); err != nil {
				t.Fatalf("flooder output %q: %v", out.String(), err)
			}
			served, throttled, other, noRetryAfter = served+a, throttled+b, other+c, noRetryAfter+d
		}
	}
	// Quiet and flooded phases alternate, 100 samples each, four times,
	// so that the other load of this shared machine falls on both. A p99
	// of 400 samples is still the fourth-worst sample: on two shared
	// cores one stray process can move it, so the measurement is
	// repeated (at most three times) and the bound must hold in one of
	// them. What keeps the neighbour's latency is the listener's Guard
	// (tested on its own in internal/dataplane): before it, half the
	// runs here measured 2.2–2.9×.
	const rounds = 4
	var floodFor time.Duration
	var ratios []string
	passed := false
	for attempt := 1; attempt <= 3 && !passed; attempt++ {
		var unloaded, loaded []time.Duration
		for range rounds {
			unloaded = append(unloaded, sample(100)...)
			start := time.Now()
			stop := flood()
			time.Sleep(300 * time.Millisecond) // the flooder runs and its burst is spent
			loaded = append(loaded, sample(100)...)
			stop()
			floodFor += time.Since(start)
		}
		up99, lp99 := opsPercentile(unloaded, 99), opsPercentile(loaded, 99)
		ratio := float64(lp99) / float64(up99)
		t.Logf("attempt %d: neighbour unloaded p50 %v p99 %v; under flood p50 %v p99 %v; p99 ratio %.2f",
			attempt, opsPercentile(unloaded, 50), up99, opsPercentile(loaded, 50), lp99, ratio)
		ratios = append(ratios, fmt.Sprintf("%.2f× (%v → %v)", ratio, up99, lp99))
		passed = ratio <= 2
	}
	t.Logf("flood for %v: %d served, %d throttled (429), %d other", floodFor, served, throttled, other)
	if throttled == 0 {
		t.Error("the flooding guest was never throttled")
	}
	if n := noRetryAfter; n > 0 {
		t.Errorf("%d 429 answers without Retry-After", n)
	}
	if n := other; n > 0 {
		t.Errorf("%d flood requests failed otherwise than with 429", n)
	}
	// 200/s plus a burst of 50 per flood phase (the bucket refills in
	// the quiet phases), with slack for the clock.
	if limit := int64(200*floodFor.Seconds()*1.1) + int64(len(ratios)*rounds*50); served > limit {
		t.Errorf("the flooding guest was served %d times in %v, over the limit %d", served, floodFor, limit)
	}
	if !passed {
		t.Errorf("the neighbour's p99 grew more than 2× under the flood in every measurement: %s", strings.Join(ratios, ", "))
	}
}

// floodLine finds the flooder's report among the test binary's output.
func floodLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "flood ") {
			return l
		}
	}
	return ""
}

// TestFloodHelperProcess is not a test: it is the flooding guest that
// TestFloodedNeighbourKeepsItsLatency starts as a separate, low-priority process. It floods until
// its stdin closes, then prints what it got.
func TestFloodHelperProcess(t *testing.T) {
	url := os.Getenv("FRONTDESK_FLOOD_URL")
	if url == "" {
		return // run normally: nothing to do
	}
	c := opsClient(os.Getenv("FRONTDESK_FLOOD_FROM"))
	var served, throttled, other, noRetryAfter atomic.Int64
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					served.Add(1)
				case 429:
					throttled.Add(1)
					if resp.Header.Get("Retry-After") == "" {
						noRetryAfter.Add(1)
					}
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("flood %d %d %d %d\n", served.Load(), throttled.Load(), other.Load(), noRetryAfter.Load())
}
