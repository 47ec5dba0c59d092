package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// IMDSv1 usage is kept in the store: after a restart `compliance --json`
// still shows the calls made before it (a clean stop writes the last
// batch; see usage_integration_test.go for SIGKILL).
func TestUsageSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, "--demo", "--demo-http-tokens", "optional")
	for range 3 {
		if s, _, _ := d.do(t, "GET", "/latest/meta-data/instance-id", map[string]string{"User-Agent": "legacy-app/1.0"}); s != 200 {
			t.Fatalf("IMDSv1 GET: %d", s)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, dir)
	r := d2.cliResult(t, "compliance", "--json")
	demo := parseCompliance(t, r.stdout)[demoInstanceID]
	if demo.ImdsV1Calls == nil || *demo.ImdsV1Calls != 3 || demo.LastV1UserAgent != "legacy-app/1.0" || demo.Verdict == "safe to require" {
		t.Fatalf("after a restart: %+v, want the 3 IMDSv1 calls made before it", demo)
	}
}

// `frontdesk console` prints a login URL that the daemon accepts: it sets
// the session and lands on the overview; the instance list then shows the
// demo instance.
func TestConsoleLoginURLFromTheCLI(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional")
	u := strings.TrimSpace(d.cli(t, "console", "--valid-for", "1m"))
	if !strings.HasPrefix(u, d.apiURL+"/console/login?token=") {
		t.Fatalf("console printed %q", u)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/console/" || !strings.Contains(string(body), "IMDSv2 migration") {
		t.Fatalf("login URL: %d at %s\n%.500s", resp.StatusCode, resp.Request.URL, body)
	}
	resp, err = c.Get(d.apiURL + "/console/instances")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), demoInstanceID) {
		t.Fatalf("instance list lacks the demo instance:\n%.1500s", body)
	}
	if r := d.cliResult(t, "console", "--valid-for", "2h"); r.code() != 2 {
		t.Errorf("--valid-for 2h: exit %d, want 2", r.code())
	}
}

// Each node writes its usage under its own name: the host id in a fleet,
// else a name kept in the data directory across restarts.
func TestUsageNodeName(t *testing.T) {
	dir := t.TempDir()
	a, err := usageNode(serveConfig{store: "bolt", dataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := usageNode(serveConfig{store: "bolt", dataDir: dir})
	other, _ := usageNode(serveConfig{store: "bolt", dataDir: t.TempDir()})
	if a == "" || a != b || a == other {
		t.Errorf("names %q, %q (same dir), %q (another dir): want stable per directory, distinct across", a, b, other)
	}
	if h, _ := usageNode(serveConfig{store: "etcd", dataDir: dir, hostID: "node-a"}); h != "node-a" {
		t.Errorf("with --host-id: %q", h)
	}
	m1, _ := usageNode(serveConfig{store: "memory"})
	m2, _ := usageNode(serveConfig{store: "memory"})
	if m1 == m2 {
		t.Errorf("memory stores share the name %q", m1)
	}
}
