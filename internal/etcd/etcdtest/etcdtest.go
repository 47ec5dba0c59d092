// Package etcdtest starts real etcd servers for tests: a single member or a
// three-member cluster on loopback ports, with data in t.TempDir(), and lets
// a test kill and restart members to exercise failure handling. It runs the
// etcd binary from PATH (Debian: package etcd-server); without it the test
// fails with install instructions rather than skipping, so a missing
// dependency never passes silently.
//
// It speaks to etcd only over its HTTP health endpoint, so it does not
// import the etcd client.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options describe the cluster. The zero value is one member.
type Options struct {
	// Members is 1 or 3. Zero means 1.
	Members int
	// Binary is the etcd executable. Empty means "etcd" from PATH.
	Binary string
}

// Cluster is a running set of etcd members, stopped when the test ends.
type Cluster struct {
	t       testing.TB
	binary  string
	dir     string
	initial string // --initial-cluster value
	token   string
	members []*member
}

type member struct {
	name      string
	clientURL string
	peerURL   string
	dataDir   string
	logPath   string
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	started   bool
}

// startTimeout bounds how long a member may take to report healthy.
const startTimeout = 30 * time.Second

// Start launches the cluster and waits until every member is healthy.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	n := opts.Members
	if n == 0 {
		n = 1
	}
	if n != 1 && n != 3 {
		t.Fatalf("etcdtest: %d members; want 1 or 3", n)
	}
	bin := opts.Binary
	if bin == "" {
		bin = "etcd"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("etcdtest: the etcd server binary %q is not installed (%v). "+
			"Install it (Debian/Ubuntu: apt-get install -y etcd-server; or put an etcd v3.4+ release binary in PATH) and run the tests again.", bin, err)
	}
	c := &Cluster{
		t:      t,
		binary: path,
		dir:    t.TempDir(),
		token:  fmt.Sprintf("etcdtest-%d", time.Now().UnixNano()),
	}
	var initial []string
	for i := range n {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			clientURL: "http://" + freeAddr(t),
			peerURL:   "http://" + freeAddr(t),
		}
		m.dataDir = filepath.Join(c.dir, m.name)
		m.logPath = filepath.Join(c.dir, m.name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	c.initial = strings.Join(initial, ",")
	t.Cleanup(c.stopAll)
	for _, m := range c.members {
		c.launch(m)
	}
	for i := range c.members {
		c.WaitHealthy(i)
	}
	return c
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. etcd cannot be handed a listener, so a small race remains.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *Cluster) launch(m *member) {
	c.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		c.t.Fatalf("etcdtest: member %s is already running", m.name)
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatalf("etcdtest: %v", err)
	}
	state := "new"
	if m.started {
		state = "existing" // ignored by etcd once the data dir exists
	}
	cmd := exec.Command(c.binary,
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", c.initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.token,
		"--logger", "zap",
		"--log-outputs", "stderr",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("etcdtest: start %s: %v", m.name, err)
	}
	m.cmd = cmd
	m.started = true
	exited := make(chan struct{})
	m.exited = exited
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
}

// Endpoints returns every member's client URL, for clientv3.Config.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.clientURL
	}
	return out
}

// Endpoint returns member i's client URL.
func (c *Cluster) Endpoint(i int) string { return c.member(i).clientURL }

// Size returns the number of members.
func (c *Cluster) Size() int { return len(c.members) }

func (c *Cluster) member(i int) *member {
	c.t.Helper()
	if i < 0 || i >= len(c.members) {
		c.t.Fatalf("etcdtest: no member %d in a cluster of %d", i, len(c.members))
	}
	return c.members[i]
}

// Kill stops member i with SIGKILL, as a crash would, and waits until the
// process is gone. Its data directory stays for Restart.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	m := c.member(i)
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		c.t.Fatalf("etcdtest: member %s is not running", m.name)
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts a killed member again on the same ports and data and waits
// until it is healthy.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.launch(c.member(i))
	c.WaitHealthy(i)
}

// WaitHealthy waits until member i reports healthy (it has a leader and
// serves requests), failing the test after a while.
func (c *Cluster) WaitHealthy(i int) {
	c.t.Helper()
	m := c.member(i)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		m.mu.Lock()
		exited := m.exited
		m.mu.Unlock()
		select {
		case <-exited:
			c.t.Fatalf("etcdtest: member %s exited during start:\n%s", m.name, tail(m.logPath))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL+"/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"health":"true"`)) {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("etcdtest: member %s not healthy within %s (last: %s):\n%s", m.name, startTimeout, last, tail(m.logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) stopAll() {
	for _, m := range c.members {
		m.mu.Lock()
		cmd, exited := m.cmd, m.exited
		m.cmd = nil
		m.mu.Unlock()
		if cmd != nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if c.t.Failed() {
		for _, m := range c.members {
			c.t.Logf("etcdtest: log of %s:\n%s", m.name, tail(m.logPath))
		}
	}
}

// tail returns the end of a member's log for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
