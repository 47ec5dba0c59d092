//go:build integration

package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// opsProc is frontdesk running as a real process, as systemd runs it.
type opsProc struct {
	cmd     *exec.Cmd
	dataURL string
	apiURL  string
	dataDir string
	exited  chan struct{}
	waitErr error

	mu     sync.Mutex
	stderr strings.Builder
}

// buildFrontdesk builds the binary once for the tests that need a process.
func buildFrontdesk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "frontdesk")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startOpsProc starts `frontdesk serve` on loopback ports chosen by the
// kernel and waits for "ready"; t.Cleanup kills it if it still runs.
func startOpsProc(t *testing.T, bin string, extra ...string) *opsProc {
	t.Helper()
	return startProc(t, bin, procOptions{}, extra...)
}

// procOptions set up a daemon process beyond its flags.
type procOptions struct {
	dataDir string   // default: a new temporary directory
	env     []string // added to a minimal PATH-only environment
}

func startProc(t *testing.T, bin string, o procOptions, extra ...string) *opsProc {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	p := &opsProc{dataDir: o.dataDir, exited: make(chan struct{})}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--data-dir", p.dataDir}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, o.env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pipes sync.WaitGroup
	pipes.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	})
	ready := make(chan struct{})
	pipes.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "data plane: "):
				p.dataURL = strings.TrimPrefix(line, "data plane: ")
			case strings.HasPrefix(line, "control plane: "):
				p.apiURL = strings.TrimPrefix(line, "control plane: ")
			case line == "ready":
				close(ready)
			}
		}
	})
	go func() {
		pipes.Wait() // Wait must not close the pipes under the readers
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("frontdesk stderr:\n%s", p.log())
		}
	})
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("frontdesk exited before ready: %v\n%s", p.waitErr, p.log())
	case <-time.After(30 * time.Second):
		t.Fatal("frontdesk not ready within 30s")
	}
	return p
}

func (p *opsProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLog waits until stderr holds want n times.
func (p *opsProc) waitLog(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(p.log(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("frontdesk did not log %q (%d times) within 5s:\n%s", want, n, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *opsProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *opsProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// TestOpsProcess runs the built binary: what a service manager does to it.
func TestOpsProcess(t *testing.T) {
	bin := buildFrontdesk(t)

	t.Run("SIGTERM under load drains and exits 0", func(t *testing.T) {
		p := startOpsProc(t, bin, "--demo", "--demo-http-tokens", "optional", "--rate-limit", "0", "--log-level", "warn")
		c := opsClient("127.0.0.1")
		var complete, refused atomic.Int64
		var bad sync.Map // description -> count, for the report
		var badN atomic.Int64
		stop := make(chan struct{})
		var clients sync.WaitGroup
		for range 8 {
			clients.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := c.Get(p.dataURL + "/latest/user-data")
					if err != nil {
						// No answer at all: the listener is gone or the
						// connection was closed before the request was read.
						refused.Add(1)
						continue
					}
					b, err := opsReadAll(resp)
					switch {
					case err != nil:
						badN.Add(1)
						bad.Store("truncated body: "+err.Error(), true)
					case resp.StatusCode != 200:
						badN.Add(1)
						bad.Store("status "+resp.Status, true)
					case b != demoUserData:
						badN.Add(1)
						bad.Store("wrong body", true)
					default:
						complete.Add(1)
					}
				}
			})
		}
		time.Sleep(300 * time.Millisecond)
		before := complete.Load()
		sent := time.Now()
		p.signal(t, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Fatal("frontdesk did not exit within 10s of SIGTERM")
		}
		took := time.Since(sent)
		time.Sleep(100 * time.Millisecond) // the clients see the closed port
		close(stop)
		clients.Wait()

		t.Logf("%d complete answers (%d before SIGTERM), %d requests without an answer; exit after %v", complete.Load(), before, refused.Load(), took)
		if before == 0 {
			t.Error("no request was served before SIGTERM: the load never ran")
		}
		if badN.Load() > 0 {
			bad.Range(func(k, _ any) bool { t.Errorf("an answer was not complete: %v", k); return true })
		}
		if err := p.waitErr; err != nil {
			t.Errorf("frontdesk exited with %v after SIGTERM, want status 0", err)
		}
		if conn, err := net.DialTimeout("tcp", opsHostOf(t, p.dataURL), time.Second); err == nil {
			conn.Close()
			t.Error("the data plane still accepts connections after exit")
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dialing after exit: %v, want connection refused", err)
		}
	})

	t.Run("SIGHUP with a bad configuration keeps the running one", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "frontdesk.yaml")
		valid := "credentials: {default: {provider: local}}\n"
		if err := os.WriteFile(cfg, []byte(valid), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startOpsProc(t, bin, "--config", cfg, "--demo", "--demo-http-tokens", "optional")
		credsURL := p.dataURL + "/latest/meta-data/iam/security-credentials/frontdesk-demo-role"
		c := opsClient("127.0.0.1")
		creds := func(within time.Duration) string {
			t.Helper()
			deadline := time.Now().Add(within)
			for {
				status, body, _, err := opsGet(c, credsURL)
				if err == nil && status == 200 && strings.Contains(body, `"Code" : "Success"`) && strings.Contains(body, `"AccessKeyId"`) {
					return body
				}
				if time.Now().After(deadline) {
					t.Fatalf("role credentials: %d %q %v", status, body, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		creds(5 * time.Second)

		if err := os.WriteFile(cfg, []byte("credentials: [this is: not, valid\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p.signal(t, syscall.SIGHUP)
		p.waitLog(t, "reloading the configuration failed; keeping the running one", 1)
		if !p.running() {
			t.Fatalf("frontdesk exited on SIGHUP with a bad file: %v", p.waitErr)
		}
		creds(0)

		if err := os.WriteFile(cfg, []byte(valid), 0o600); err != nil {
			t.Fatal(err)
		}
		p.signal(t, syscall.SIGHUP)
		p.waitLog(t, "configuration reloaded", 1)
		creds(0)
		if !p.running() {
			t.Fatal("frontdesk exited after a good reload")
		}
	})

	t.Run("SIGHUP without --config changes nothing", func(t *testing.T) {
		p := startOpsProc(t, bin, "--demo", "--demo-http-tokens", "optional")
		// serve installs its SIGHUP handler in a goroutine started just
		// before "ready": one served request later it is surely running.
		if status, _, _, err := opsGet(opsClient("127.0.0.1"), p.dataURL+"/latest/meta-data/instance-id"); err != nil || status != 200 {
			t.Fatalf("before SIGHUP: %d %v", status, err)
		}
		p.signal(t, syscall.SIGHUP)
		p.waitLog(t, "SIGHUP ignored", 1)
		if !p.running() {
			t.Fatalf("frontdesk exited on SIGHUP: %v", p.waitErr)
		}
		status, body, _, err := opsGet(opsClient("127.0.0.1"), p.dataURL+"/latest/meta-data/instance-id")
		if err != nil || status != 200 || body != demoInstanceID {
			t.Errorf("after SIGHUP: %d %q %v", status, body, err)
		}
	})
}

// opsReadAll reads the whole body and closes it; a body shorter than its
// Content-Length is an error.
func opsReadAll(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
