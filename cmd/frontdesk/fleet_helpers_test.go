//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
)

// fleetNode is one `frontdesk serve --store etcd` run in-process, as
// startDaemon does, but usable from benchmarks too (testing.TB) and with its
// log kept for assertions.
type fleetNode struct {
	*daemon
	name string
	ec2  *ec2.Client
}

// startFleetNode starts a node named hostID against the etcd endpoints under
// prefix, on kernel-chosen loopback ports, and waits until it prints "ready".
func startFleetNode(tb testing.TB, hostID string, endpoints []string, prefix string, extra ...string) *fleetNode {
	tb.Helper()
	d := startDaemon(tb, tb.TempDir(), append([]string{
		"--store", "etcd", "--etcd-endpoints", strings.Join(endpoints, ","), "--etcd-prefix", prefix,
		"--host-id", hostID, "--rate-limit", "0", "--log-level", "info",
	}, extra...)...)
	return &fleetNode{daemon: d, name: hostID, ec2: apiFor(tb, d.dataDir, d.apiURL, noRetries)}
}

// setHttpTokens changes one instance's HttpTokens through c.
func setHttpTokens(ctx context.Context, c *ec2.Client, id string, v types.HttpTokensState) error {
	_, err := c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpTokens: v})
	return err
}

// retryWrite runs write until it succeeds, retrying only while the control
// plane answers Unavailable (the cluster is electing or coming back).
func retryWrite(ctx context.Context, tb testing.TB, what string, within time.Duration, write func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := write()
		if err == nil {
			return
		}
		if apiclient.ErrorCode(err) != "Unavailable" || time.Now().After(deadline) || ctx.Err() != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fleetGuest is an instance as the data plane sees it: HTTP requests whose
// connections come from the instance's address.
type fleetGuest struct {
	addr string
	c    *http.Client
}

func newFleetGuest(tb testing.TB, addr string) *fleetGuest {
	tb.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 2 * time.Second}
	// The data plane closes every connection (as IMDS does), so there is
	// nothing to keep alive.
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &fleetGuest{addr: addr, c: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// get fetches path from the data plane at base, with token unless empty.
func (g *fleetGuest) get(ctx context.Context, base, path, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("X-aws-ec2-metadata-token", token)
	}
	return g.do(req)
}

// token asks the data plane at base for an IMDSv2 token.
func (g *fleetGuest) token(ctx context.Context, base string, ttl int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/latest/api/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", fmt.Sprint(ttl))
	status, body, err := g.do(req)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || body == "" {
		return "", fmt.Errorf("token PUT from %s: status %d", g.addr, status)
	}
	return body, nil
}

func (g *fleetGuest) do(req *http.Request) (int, string, error) {
	resp, err := g.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, string(b), nil
}

// mustToken is token for the test goroutine.
func (g *fleetGuest) mustToken(ctx context.Context, tb testing.TB, base string, ttl int) string {
	tb.Helper()
	tok, err := g.token(ctx, base, ttl)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// waitToken polls the data plane at base for a token until it serves the
// instance at g (a node follows the store a moment behind the control
// plane), and fails the test after within.
func (g *fleetGuest) waitToken(ctx context.Context, tb testing.TB, base string, ttl int, within time.Duration) string {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		tok, err := g.token(ctx, base, ttl)
		if err == nil {
			return tok
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			tb.Fatalf("token from %s within %s: %v", base, within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus polls path on the data plane at base until it answers want,
// and fails the test with the last answer after within.
func (g *fleetGuest) waitStatus(ctx context.Context, tb testing.TB, base, path, token string, want int, within time.Duration) string {
	tb.Helper()
	deadline := time.Now().Add(within)
	var (
		status int
		body   string
		err    error
	)
	for {
		status, body, err = g.get(ctx, base, path, token)
		if err == nil && status == want {
			return body
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			tb.Fatalf("GET %s%s from %s: want %d within %s, last %d %q (err %v)", base, path, g.addr, want, within, status, body, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// percentile is the q-quantile (0 < q <= 1) of sorted durations, nearest
// rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// measurePropagation flips HttpTokens of the instance at g (served by
// enforcer) n times through writer's control plane, and returns how long
// each change took from the API call to enforcement (a tokenless GET answers
// 200 while optional and 401 while required), how long the API calls
// themselves took (the etcd commit), and the rest (watch to enforcement);
// each sorted.
func measurePropagation(ctx context.Context, tb testing.TB, writer, enforcer *fleetNode, id string, g *fleetGuest, n int) (lat, calls, after []time.Duration) {
	tb.Helper()
	// Start from a known state.
	if err := setHttpTokens(ctx, writer.ec2, id, types.HttpTokensStateOptional); err != nil {
		tb.Fatalf("reset HttpTokens: %v", err)
	}
	g.waitStatus(ctx, tb, enforcer.dataURL, "/latest/meta-data/instance-id", "", http.StatusOK, 10*time.Second)
	lat = make([]time.Duration, 0, n)
	calls = make([]time.Duration, 0, n)
	after = make([]time.Duration, 0, n)
	state := types.HttpTokensStateOptional
	for i := range n {
		want := http.StatusUnauthorized
		state = types.HttpTokensStateRequired
		if i%2 == 1 {
			want, state = http.StatusOK, types.HttpTokensStateOptional
		}
		start := time.Now()
		if err := setHttpTokens(ctx, writer.ec2, id, state); err != nil {
			tb.Fatalf("change %d (HttpTokens=%s): %v", i, state, err)
		}
		calls = append(calls, time.Since(start))
		for {
			status, _, err := g.get(ctx, enforcer.dataURL, "/latest/meta-data/instance-id", "")
			if err == nil && status == want {
				break
			}
			if err != nil && ctx.Err() != nil {
				tb.Fatalf("change %d: %v", i, err)
			}
			if time.Since(start) > 10*time.Second {
				tb.Fatalf("change %d (HttpTokens=%s) not enforced by %s within 10s: last %d %v", i, state, enforcer.name, status, err)
			}
			time.Sleep(time.Millisecond)
		}
		total := time.Since(start)
		lat = append(lat, total)
		after = append(after, total-calls[len(calls)-1])
	}
	slices.Sort(lat)
	slices.Sort(calls)
	slices.Sort(after)
	return lat, calls, after
}

// fleetMembers tracks which etcd members a test has killed, so that a
// failing subtest still hands the next one a whole cluster.
type fleetMembers struct {
	cl   *etcdtest.Cluster
	mu   sync.Mutex
	down map[int]bool
}

func (m *fleetMembers) kill(idx ...int) {
	for _, i := range idx {
		m.cl.Kill(i)
		m.mu.Lock()
		m.down[i] = true
		m.mu.Unlock()
	}
}

// restart starts the given members at once: a member whose peers are all
// down cannot become healthy alone, so they must come back together.
func (m *fleetMembers) restart(idx ...int) {
	m.cl.RestartAll(idx...)
	m.mu.Lock()
	for _, i := range idx {
		delete(m.down, i)
	}
	m.mu.Unlock()
}

// restartDown brings back whatever is still down (a subtest's cleanup).
func (m *fleetMembers) restartDown() {
	m.mu.Lock()
	var idx []int
	for i := range m.down {
		idx = append(idx, i)
	}
	m.mu.Unlock()
	if len(idx) > 0 {
		m.restart(idx...)
	}
}

// fleetProxy is a TCP relay between one node and one etcd member: cutting
// it disconnects the node from etcd without touching the cluster.
type fleetProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startFleetProxy(tb testing.TB, target string) *fleetProxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &fleetProxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	tb.Cleanup(func() {
		l.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// URL is the client URL the node is given instead of the member's.
func (p *fleetProxy) URL() string { return "http://" + p.l.Addr().String() }

func (p *fleetProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(up, c) })
		p.wg.Go(func() { pipe(c, up) })
	}
}

// Cut closes every relayed connection and refuses new ones until Heal.
func (p *fleetProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Heal relays again.
func (p *fleetProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// fleetPrefix is a fresh etcd key prefix, so runs never see each other's
// data.
func fleetPrefix(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return "/fd-" + hex.EncodeToString(b)
}

// fleetLoad is metadata traffic from instances to the nodes that serve
// them: each round mints a token and reads instance-id with it, the IMDSv2
// flow, so it does not depend on the instances' HttpTokens.
type fleetLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	ok     map[string]int
	failed map[string]int
	errs   []string
}

type loadTarget struct {
	node *fleetNode
	g    *fleetGuest
	id   string
}

func startFleetLoad(ctx context.Context, targets ...loadTarget) *fleetLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &fleetLoad{cancel: cancel, ok: map[string]int{}, failed: map[string]int{}}
	for _, tg := range targets {
		for range 2 {
			l.wg.Go(func() {
				for ctx.Err() == nil {
					err := l.round(ctx, tg)
					if ctx.Err() != nil {
						return // the request was cut short by stop, not failed
					}
					l.record(tg.node.name, err)
					time.Sleep(2 * time.Millisecond)
				}
			})
		}
	}
	return l
}

func (l *fleetLoad) round(ctx context.Context, tg loadTarget) error {
	tok, err := tg.g.token(ctx, tg.node.dataURL, 60)
	if err != nil {
		return err
	}
	status, body, err := tg.g.get(ctx, tg.node.dataURL, "/latest/meta-data/instance-id", tok)
	if err != nil {
		return err
	}
	if status != http.StatusOK || body != tg.id {
		return fmt.Errorf("GET instance-id from %s: %d %q", tg.g.addr, status, body)
	}
	return nil
}

func (l *fleetLoad) record(node string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.ok[node]++
		return
	}
	l.failed[node]++
	if len(l.errs) < 10 {
		l.errs = append(l.errs, err.Error())
	}
}

// stop ends the traffic and checks that every request of every node
// succeeded, and that each node answered at least min rounds.
func (l *fleetLoad) stop(tb testing.TB, min int) {
	tb.Helper()
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for node, n := range l.ok {
		tb.Logf("load on %s: %d rounds ok, %d failed", node, n, l.failed[node])
	}
	for node, n := range l.failed {
		if n > 0 {
			tb.Errorf("%d failed metadata rounds on %s; first errors: %v", n, node, l.errs)
		}
	}
	for node, n := range l.ok {
		if n < min {
			tb.Errorf("only %d metadata rounds on %s, want at least %d", n, node, min)
		}
	}
	if len(l.ok) == 0 {
		tb.Error("no metadata rounds at all")
	}
}

// onHost places a launched instance on the fleet node host.
func onHost(host string) func(*ec2.RunInstancesInput) {
	return func(in *ec2.RunInstancesInput) {
		in.Placement = &types.Placement{HostId: aws.String(host)}
	}
}
