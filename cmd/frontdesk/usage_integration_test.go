//go:build integration

package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
)

// metricValue reads one sample of the daemon's /metrics ("name" or
// `name{label="v"}` exactly as exposed); absent is 0.
func metricValue(t *testing.T, apiURL, series string) float64 {
	t.Helper()
	resp, err := http.Get(apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// waitWritten waits until the daemon has written at least n IMDSv1 calls to
// the store.
func waitWritten(t *testing.T, apiURL string, n float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := metricValue(t, apiURL, "frontdesk_usage_calls_written_total")
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon wrote %v IMDSv1 calls to the store within 15s, want %v", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func v1Calls(ctx context.Context, t *testing.T, g *fleetGuest, base, ua string, n int) {
	t.Helper()
	for range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/latest/meta-data/instance-id", nil)
		req.Header.Set("User-Agent", ua)
		if status, body, err := g.do(req); err != nil || status != http.StatusOK {
			t.Fatalf("IMDSv1 GET from %s: %d %q %v", g.addr, status, body, err)
		}
	}
}

// IMDSv1 usage survives SIGKILL of the daemon, minus at most the calls of
// the batch not yet written: after a restart `compliance --json` still
// shows the calls made before it.
func TestUsageSurvivesSIGKILL(t *testing.T) {
	ctx := t.Context()
	bin := buildFrontdesk(t)
	dir := t.TempDir()
	p := startProc(t, bin, procOptions{dataDir: dir}, "--demo", "--demo-http-tokens", "optional", "--usage-flush-interval", "250ms", "--log-level", "warn")
	g := newFleetGuest(t, "127.0.0.1")
	v1Calls(ctx, t, g, p.dataURL, "legacy-app/1.0", 6)
	waitWritten(t, p.apiURL, 6)
	// The last batch: made, then the daemon is killed at once.
	v1Calls(ctx, t, g, p.dataURL, "legacy-app/1.0", 4)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited

	p2 := startProc(t, bin, procOptions{dataDir: dir}, "--log-level", "warn")
	r := cliRun(t, "", "compliance", "--json", "--window", "1h", "--endpoint", p2.apiURL, "--data-dir", dir)
	rows := parseCompliance(t, r.stdout)
	demo := rows[demoInstanceID]
	if demo.ImdsV1Calls == nil || *demo.ImdsV1Calls < 6 || *demo.ImdsV1Calls > 10 || demo.LastV1UserAgent != "legacy-app/1.0" {
		t.Fatalf("after SIGKILL and restart: %+v; want 6 to 10 IMDSv1 calls (at most the last batch of 4 lost)", demo)
	}
	t.Logf("%d of 10 IMDSv1 calls survived SIGKILL (6 were written before the last batch)", *demo.ImdsV1Calls)
}

// Two fleet nodes on a real etcd serve the same instance; each writes only
// its own records, and every node (and a node started later, with nothing
// in memory) reports the merged usage.
func TestUsageMergedAcrossFleetNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cluster := etcdtest.Start(t, etcdtest.Options{Members: 1})
	prefix := fleetPrefix(t)
	a := startFleetNode(t, "node-a", cluster.Endpoints(), prefix, "--serve-all", "--usage-flush-interval", "250ms")
	b := startFleetNode(t, "node-b", cluster.Endpoints(), prefix, "--serve-all", "--usage-flush-interval", "250ms")
	const addr = "127.0.0.31"
	id := launch(ctx, t, a.ec2, addr, httpTokens(types.HttpTokensStateOptional))
	g := newFleetGuest(t, addr)
	// IMDSv2 while waiting for both nodes to serve the instance, so that
	// only the calls below are IMDSv1.
	for _, n := range []*fleetNode{a, b} {
		tok := g.waitToken(ctx, t, n.dataURL, 60, 10*time.Second)
		g.waitStatus(ctx, t, n.dataURL, "/latest/meta-data/instance-id", tok, http.StatusOK, 10*time.Second)
	}
	v1Calls(ctx, t, g, a.dataURL, "from-node-a/1", 2)
	v1Calls(ctx, t, g, b.dataURL, "from-node-b/1", 3)
	waitWritten(t, a.apiURL, 2)
	waitWritten(t, b.apiURL, 3)

	c := startFleetNode(t, "node-c", cluster.Endpoints(), prefix, "--serve-all")
	for _, n := range []*fleetNode{a, b, c} {
		r := n.cliResult(t, "compliance", "--json", "--window", "1h")
		row := parseCompliance(t, r.stdout)[id]
		if row.ImdsV1Calls == nil || *row.ImdsV1Calls != 5 {
			t.Errorf("%s reports %+v; want the 5 IMDSv1 calls of both nodes", n.name, row)
		}
	}
}
