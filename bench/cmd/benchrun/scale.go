package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/bench/loadgen"
	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// scaleResult is what one fleet size measured.
type scaleResult struct {
	N    int
	Seed time.Duration
	// ReadyFirst is exec to "ready" on a new store (keys are created);
	// Ready is the same on the restart that is measured.
	ReadyFirst, Ready time.Duration
	// Settle is how long the daemon stayed busy after "ready" (background
	// work such as fetching every instance's credentials).
	Settle         time.Duration
	SettleTimedOut bool
	MemReady       memory
	MemIdle        memory
	MemEnd         memory
	// Active is how many distinct instances called once after the
	// changes, and MemActive the memory after they did: each call renders
	// that instance's tree, so this is the steady state of a busy fleet.
	Active    int
	MemActive memory
	// GET1 is one client calling as one instance; GETMany is many clients,
	// each calling as a different instance.
	GET1, GETMany loadgen.Result
	// Change latencies, sorted: from the API call's start to the data plane
	// answering with the new rule, and the API call alone.
	Change, API []time.Duration
}

// settleLimit bounds the wait for the daemon's background work after ready.
const settleLimit = 120 * time.Second

// runScale seeds n instances into a fresh store, starts the daemon on it and
// measures it.
func runScale(ctx context.Context, o options, bin, tmp string, n int, log func(string, ...any)) (scaleResult, error) {
	r := scaleResult{N: n}
	dir := filepath.Join(tmp, fmt.Sprintf("scale-%d", n))
	t0 := time.Now()
	if err := seed(ctx, dir, n); err != nil {
		return r, err
	}
	r.Seed = time.Since(t0)
	log("  seeded %d instances in %s", n, r.Seed.Round(time.Millisecond))

	args := append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--log-level", "warn"}, noLimits()...)
	// The first start also creates the token and signing keys; the second
	// is the start-up of a daemon that restarts over an existing fleet.
	p, err := start(ctx, bin, args, filepath.Join(tmp, fmt.Sprintf("frontdesk-scale-%d-first.log", n)), 180*time.Second)
	if err != nil {
		return r, err
	}
	r.ReadyFirst = p.ready
	p.stop()
	p, err = start(ctx, bin, args, filepath.Join(tmp, fmt.Sprintf("frontdesk-scale-%d.log", n)), 180*time.Second)
	if err != nil {
		return r, err
	}
	defer p.stop()
	r.Ready = p.ready
	if r.MemReady, err = p.memory(); err != nil {
		return r, err
	}
	dataURL, apiURL := p.urls["data plane"], p.urls["control plane"]
	if dataURL == "" || apiURL == "" {
		return r, fmt.Errorf("daemon did not print its URLs: %v", p.urls)
	}
	if r.Settle, err = p.waitIdle(ctx, settleLimit); errors.Is(err, errBusy) {
		r.SettleTimedOut = true
		log("  the daemon is still busy %s after ready; measuring anyway", settleLimit)
	} else if err != nil {
		return r, fmt.Errorf("waiting for the daemon to settle: %w", err)
	}
	if r.MemIdle, err = p.memory(); err != nil {
		return r, err
	}
	log("  ready in %s, settled %s later, RSS %s", r.Ready.Round(time.Millisecond), r.Settle.Round(time.Millisecond), mib(r.MemIdle.RSS))

	get := loadgen.Workload{Name: "IMDSv1 GET instance-id", Path: "/latest/meta-data/instance-id", Token: loadgen.NoToken}
	one := instanceAddr(n / 2)
	if r.GET1, err = loadgen.Run(ctx, loadgen.Config{Target: dataURL, Sources: []netip.Addr{one}, Workload: get, Concurrency: 1,
		Duration: o.duration, Warmup: o.warmup}); err != nil {
		return r, err
	}
	many := o.concs[len(o.concs)-1]
	srcs := make([]netip.Addr, many)
	for i := range srcs {
		srcs[i] = instanceAddr(i * n / many)
	}
	if r.GETMany, err = loadgen.Run(ctx, loadgen.Config{Target: dataURL, Sources: srcs, Workload: get, Concurrency: many,
		Duration: o.duration, Warmup: o.warmup}); err != nil {
		return r, err
	}
	log("  GET p99 %s (1 client), %.0f req/s (%d clients)", ms(r.GET1.P99), r.GETMany.ReqPerSec, many)

	client, err := ec2Client(filepath.Join(dir, apiclient.AdminCredentialsFile), apiURL)
	if err != nil {
		return r, err
	}
	target := n - 1
	if r.Change, r.API, err = measureChanges(ctx, client, dataURL, instanceAddr(target), instanceID(target), o.changes); err != nil {
		return r, err
	}
	log("  change enforced p50 %s p99 %s", ms(pct(r.Change, 0.5)), ms(pct(r.Change, 0.99)))
	if r.MemEnd, err = p.memory(); err != nil {
		return r, err
	}
	r.Active = min(n, activeInstances)
	if err := touch(ctx, dataURL, n, r.Active); err != nil {
		return r, err
	}
	if r.MemActive, err = p.memory(); err != nil {
		return r, err
	}
	log("  RSS %s after %d instances called", mib(r.MemActive.RSS), r.Active)
	return r, nil
}

// activeInstances is how many distinct instances call once at the end of a
// scale run (a fifth of the largest fleet): more than the trees the daemon
// keeps by default (serve --max-trees), so the memory then is that of a
// fleet whose tree cache is full and churning.
const activeInstances = 20000

// touch makes k instances, spread over the fleet of n, each GET instance-id
// once, from 8 workers.
func touch(ctx context.Context, dataURL string, n, k int) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	url := dataURL + "/latest/meta-data/instance-id"
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= k || ctx.Err() != nil {
					return
				}
				if err := getFrom(ctx, url, instanceAddr(i*n/k)); err != nil {
					errOnce.Do(func() { first = fmt.Errorf("instance %d of %d: %w", i*n/k, n, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// getFrom GETs url once from the source address src and wants 200.
func getFrom(ctx context.Context, url string, src netip.Addr) error {
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 5 * time.Second}).DialContext,
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// ec2Client is an AWS SDK EC2 client for the control plane, signed with the
// admin credentials the daemon wrote. Retries are off so that every call is
// measured once.
func ec2Client(credsFile, endpoint string) (*ec2.Client, error) {
	ak, sk, err := readSharedCredentials(credsFile)
	if err != nil {
		return nil, err
	}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:  &http.Client{Transport: &http.Transport{Proxy: nil}},
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(endpoint) }), nil
}

// readSharedCredentials reads the default profile of a shared credentials
// file.
func readSharedCredentials(path string) (string, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("admin credentials: %w", err)
	}
	defer f.Close()
	var ak, sk string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			ak = strings.TrimSpace(v)
		case "aws_secret_access_key":
			sk = strings.TrimSpace(v)
		}
	}
	if ak == "" || sk == "" {
		return "", "", fmt.Errorf("admin credentials: %s has no key pair", path)
	}
	return ak, sk, nil
}

// measureChanges flips HttpTokens between required and optional count
// times and, after each call, polls the instance's tokenless GET until the
// data plane enforces the new value (401 when required, 200 when optional).
func measureChanges(ctx context.Context, c *ec2.Client, dataURL string, src netip.Addr, id string, count int) (change, api []time.Duration, err error) {
	poll := &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 5 * time.Second}).DialContext,
			DisableKeepAlives: true,
		},
		Timeout: 5 * time.Second,
	}
	defer poll.CloseIdleConnections()
	url := dataURL + "/latest/meta-data/instance-id"
	status := func() (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := poll.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if s, err := status(); err != nil || s != http.StatusOK {
		return nil, nil, fmt.Errorf("instance %s before the changes: status %d, %v", id, s, err)
	}
	for i := range count {
		want, wantStatus := types.HttpTokensStateRequired, http.StatusUnauthorized
		if i%2 == 1 {
			want, wantStatus = types.HttpTokensStateOptional, http.StatusOK
		}
		t0 := time.Now()
		if _, err := c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpTokens: want}); err != nil {
			return nil, nil, fmt.Errorf("ModifyInstanceMetadataOptions: %w", err)
		}
		api = append(api, time.Since(t0))
		for {
			s, err := status()
			if err != nil {
				return nil, nil, fmt.Errorf("polling the data plane: %w", err)
			}
			if s == wantStatus {
				break
			}
			if time.Since(t0) > 10*time.Second {
				return nil, nil, fmt.Errorf("HttpTokens=%s not enforced after 10 s (status %d)", want, s)
			}
		}
		change = append(change, time.Since(t0))
	}
	slices.Sort(change)
	slices.Sort(api)
	return change, api, nil
}

// pct is the nearest-rank percentile of sorted durations.
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
