//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// churnAddr is the loopback address of the i-th instance of a round.
func churnAddr(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

// guestCall makes one request from a guest's address on a new connection.
func guestCall(addr, dataHost, method, path string, hdr map[string]string) (int, string, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 5 * time.Second}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://"+dataHost+path, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// churnRound launches n instances (one role), has each make an IMDSv2
// call, an IMDSv1 call and a role-credentials call, then terminates them
// all and waits until the data plane no longer serves them.
func churnRound(t *testing.T, d *daemon, c *ec2.Client, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	host := opsHostOf(t, d.dataURL)
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ids[i] = launch(ctx, t, c, churnAddr(i), httpTokens(types.HttpTokensStateOptional), func(in *ec2.RunInstancesInput) {
				in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("churn-role")}
			})
			addr := churnAddr(i)
			// The snapshot follows the store within moments.
			var tok string
			for {
				status, body, err := guestCall(addr, host, http.MethodPut, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
				if err == nil && status == 200 {
					tok = body
					break
				}
				if ctx.Err() != nil {
					errs <- fmt.Errorf("%s never served: %d %v", ids[i], status, err)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			v2 := map[string]string{"X-aws-ec2-metadata-token": tok}
			if status, body, err := guestCall(addr, host, http.MethodGet, "/latest/meta-data/instance-id", v2); err != nil || status != 200 || body != ids[i] {
				errs <- fmt.Errorf("IMDSv2 %s: %d %q %v", ids[i], status, body, err)
				return
			}
			if status, _, err := guestCall(addr, host, http.MethodGet, "/latest/meta-data/ami-id", nil); err != nil || status != 200 {
				errs <- fmt.Errorf("IMDSv1 %s: %d %v", ids[i], status, err)
				return
			}
			for {
				status, body, err := guestCall(addr, host, http.MethodGet, "/latest/meta-data/iam/security-credentials/churn-role", v2)
				if err == nil && status == 200 && strings.Contains(body, "AccessKeyId") {
					break
				}
				if ctx.Err() != nil {
					errs <- fmt.Errorf("credentials %s: %d %v", ids[i], status, err)
					return
				}
				time.Sleep(10 * time.Millisecond) // the first background fetch
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 100 {
		if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[i:min(i+100, n)]}); err != nil {
			t.Fatalf("TerminateInstances: %v", err)
		}
	}
	// Terminated instances leave the data plane.
	for i := range n {
		for {
			status, _, err := guestCall(churnAddr(i), host, http.MethodGet, "/latest/meta-data/instance-id", nil)
			if err == nil && status == http.StatusNotFound {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s still served after termination: %d %v", ids[i], status, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return ids
}

// liveHeap is the live heap after a full collection.
func liveHeap() (heap uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, runtime.NumGoroutine()
}

// settleGoroutines waits (up to 10 s) for the goroutine count to fall to
// want or below and returns the last count.
func settleGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Nothing outlives an instance: after two rounds of 600 instances
// launched, called (IMDSv1, IMDSv2, role credentials) and terminated, the
// live heap has grown by less than 8 KB per instance between the rounds
// (default --max-trees and retention), and the goroutines are back where
// they started. A measurement: it prints the figures.
func TestChurnLeavesNothingBehind(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--rate-limit", "0")
	tr := &http.Transport{}
	c := apiFor(t, d.dataDir, d.apiURL, func(o *apiclient.Options) { o.HTTPClient = &http.Client{Transport: tr, Timeout: 30 * time.Second} })
	idle := func() {
		tr.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
	}
	idle()
	_, g0 := liveHeap()
	const round = 600
	churnRound(t, d, c, round)
	idle()
	h1, _ := liveHeap()
	g1 := settleGoroutines(g0)
	churnRound(t, d, c, round)
	idle()
	h2, _ := liveHeap()
	g2 := settleGoroutines(g0)
	// A third round shows the steady state: by then the store's watch
	// history (the last 1,024 transactions, a fixed-size buffer that the
	// first rounds are still filling) is full.
	churnRound(t, d, c, round)
	idle()
	h3, _ := liveHeap()
	perInstance := (float64(h2) - float64(h1)) / round
	t.Logf("live heap after round 1: %.1f MiB, after round 2: %.1f MiB: %+.0f bytes per instance; after round 3: %.1f MiB (%+.0f bytes per instance); goroutines %d -> %d -> %d",
		float64(h1)/(1<<20), float64(h2)/(1<<20), perInstance, float64(h3)/(1<<20), (float64(h3)-float64(h2))/round, g0, g1, g2)
	if perInstance >= 8000 {
		t.Fatalf("live heap grew by %.0f bytes per instance between the rounds, want < 8 KB", perInstance)
	}
	if g2 > g0 {
		t.Fatalf("goroutines %d after the rounds, %d at the start", g2, g0)
	}
}

// With a short retention window terminated instances disappear from
// DescribeInstances, and the store file stops growing from one round to
// the next.
func TestShortRetentionPurgesTerminatedInstances(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--rate-limit", "0", "--terminated-retention", "1s")
	c := apiFor(t, d.dataDir, d.apiURL)
	const round = 150
	var sizes []int64
	for r := range 3 {
		ids := churnRound(t, d, c, round)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for {
			out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			if err != nil {
				t.Fatal(err)
			}
			left := 0
			for _, res := range out.Reservations {
				left += len(res.Instances)
			}
			if left == 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("round %d: %d instances still described (first of the round: %s)", r, left, ids[0])
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		fi, err := os.Stat(filepath.Join(d.dataDir, "frontdesk.db"))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size())
	}
	t.Logf("store file after each round of %d: %v bytes", round, sizes)
	if sizes[2] > sizes[1] {
		t.Fatalf("the store kept growing: %v", sizes)
	}
	resp, err := http.Get(d.apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := fmt.Sprintf("frontdesk_instances_purged_total %d\n", 3*round); !strings.Contains(string(b), want) {
		t.Fatalf("/metrics lacks %q", strings.TrimSpace(want))
	}
}
