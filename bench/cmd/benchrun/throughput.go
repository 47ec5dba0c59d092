package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/frontdesk-imds/frontdesk/bench/loadgen"
)

// The demo instance's identity and role, as `serve --demo` registers them.
const (
	demoInstanceID = "i-0123456789abcdef0"
	demoRolePath   = "/latest/meta-data/iam/security-credentials/frontdesk-demo-role"
)

// noLimits are serve flags that keep the per-instance rate limit and connection cap in the
// request path (their cost is part of the figures) but far above any load
// the benchmark makes: one benchmark "instance" sends more requests than a
// fleet would, and the production defaults (1,024 req/s, 64 connections)
// would answer 429 or close connections instead of measuring.
func noLimits() []string {
	return []string{"--rate-limit", "1000000000", "--max-conns-per-instance", "1000000"}
}

// workloadSpec is one workload and how the report describes it.
type workloadSpec struct {
	W    loadgen.Workload
	What string
}

// workloadSpecs are the measured workloads, in report order.
func workloadSpecs() []workloadSpec {
	return []workloadSpec{
		{loadgen.Workload{Name: "IMDSv1 GET of a leaf", Path: "/latest/meta-data/instance-id", Token: loadgen.NoToken},
			"`GET /latest/meta-data/instance-id` without a token."},
		{loadgen.Workload{Name: "IMDSv2 GET, reused token", Path: "/latest/meta-data/instance-id", Token: loadgen.ReusedToken},
			"`GET /latest/meta-data/instance-id` with one token per client minted before the clock starts, as the AWS SDK for Go caches it."},
		{loadgen.Workload{Name: "token PUT + GET", Path: "/latest/meta-data/instance-id", Token: loadgen.FreshToken},
			"`PUT /latest/api/token` then `GET /latest/meta-data/instance-id` with that token, a new token every time; both requests are counted."},
		{loadgen.Workload{Name: "role credentials GET", Path: demoRolePath, Token: loadgen.ReusedToken},
			"`GET " + demoRolePath + "` (the credentials JSON) with a reused token."},
		{loadgen.Workload{Name: "listing GET", Path: "/latest/meta-data/", Token: loadgen.ReusedToken},
			"`GET /latest/meta-data/` (the category listing) with a reused token."},
	}
}

// pair is one cell measured against both servers.
type pair struct{ FD, BL loadgen.Result }

// workloadReport is every cell of one workload.
type workloadReport struct {
	Spec   workloadSpec
	Closed []pair
	// Open is the open-loop cell at Rate, half of frontdesk's saturation
	// (closed loop at the highest concurrency).
	Open pair
	Rate float64
}

// throughput starts the demo daemon and the baseline and measures every
// workload against both.
func throughput(ctx context.Context, o options, fdBin, blBin, tmp string, logf func(string, ...any)) ([]workloadReport, error) {
	fd, err := start(ctx, fdBin, append([]string{"serve", "--demo", "--demo-http-tokens", "optional", "--store", "bolt",
		"--data-dir", filepath.Join(tmp, "throughput"), "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--log-level", "warn"}, noLimits()...),
		filepath.Join(tmp, "frontdesk-throughput.log"), 60*time.Second)
	if err != nil {
		return nil, err
	}
	defer fd.stop()
	bl, err := start(ctx, blBin, []string{"-listen", "127.0.0.1:0"}, filepath.Join(tmp, "baseline.log"), 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer bl.stop()
	fdURL, blURL := fd.urls["data plane"], bl.urls["baseline"]
	if fdURL == "" || blURL == "" {
		return nil, fmt.Errorf("servers did not print their URLs: %v %v", fd.urls, bl.urls)
	}
	if err := waitDemo(ctx, fdURL); err != nil {
		return nil, err
	}

	cell := func(url string, wl loadgen.Workload, conc int, rate float64) (loadgen.Result, error) {
		return loadgen.Run(ctx, loadgen.Config{Target: url, Workload: wl, Concurrency: conc, Rate: rate, Duration: o.duration, Warmup: o.warmup})
	}
	var out []workloadReport
	for _, spec := range workloadSpecs() {
		wr := workloadReport{Spec: spec}
		for _, c := range o.concs {
			var p pair
			if p.FD, err = cell(fdURL, spec.W, c, 0); err != nil {
				return nil, err
			}
			if p.BL, err = cell(blURL, spec.W, c, 0); err != nil {
				return nil, err
			}
			logf("%-26s c=%-3d frontdesk %8.0f req/s p99 %s | baseline %8.0f req/s p99 %s", spec.W.Name, c, p.FD.ReqPerSec, ms(p.FD.P99), p.BL.ReqPerSec, ms(p.BL.P99))
			wr.Closed = append(wr.Closed, p)
		}
		wr.Rate = 0.5 * wr.Closed[len(wr.Closed)-1].FD.ReqPerSec
		if wr.Rate > 0 {
			if wr.Open.FD, err = cell(fdURL, spec.W, 0, wr.Rate); err != nil {
				return nil, err
			}
			if wr.Open.BL, err = cell(blURL, spec.W, 0, wr.Rate); err != nil {
				return nil, err
			}
			logf("%-26s open %6.0f req/s: frontdesk p99 %s | baseline p99 %s", spec.W.Name, wr.Rate, ms(wr.Open.FD.P99), ms(wr.Open.BL.P99))
		}
		out = append(out, wr)
	}
	return out, nil
}

// waitDemo checks that the demo instance answers and waits until its role
// credentials have been fetched (the refresher works in the background).
func waitDemo(ctx context.Context, base string) error {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	get := func(path string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	status, body, err := get("/latest/meta-data/instance-id")
	if err != nil || status != http.StatusOK || body != demoInstanceID {
		return fmt.Errorf("the demo instance does not answer as expected (status %d, body %q, %v): is 127.0.0.1 the demo instance with HttpTokens optional?", status, body, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, err := get(demoRolePath)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the demo role's credentials are not served after 30 s (status %d, %v)", status, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
