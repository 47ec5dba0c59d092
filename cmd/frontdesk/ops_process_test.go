package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
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

	t.Run("a flooding guest is throttled and its neighbour keeps its latency", func(t *testing.T) {
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
	})

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
// TestOpsProcess starts as a separate, low-priority process. It floods until
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
