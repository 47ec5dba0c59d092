package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// daemon is a frontdesk started in-process through run(), as main would.
type daemon struct {
	dataURL  string
	data6URL string // the --listen-ipv6 data plane, if any
	apiURL   string
	dataDir  string
	logs     *syncBuffer // what the daemon logged (stderr)
	stop     func() error
}

// syncBuffer is a log sink the daemon writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startDaemon runs `frontdesk serve` with the given extra flags (a later
// flag overrides an earlier one) on loopback ports chosen by the kernel, and
// waits until it prints "ready". The log is kept and shown if tb fails.
func startDaemon(tb testing.TB, dataDir string, extra ...string) *daemon {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	args := append([]string{"frontdesk", "serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, extra...)
	d := &daemon{dataDir: dataDir, logs: &syncBuffer{}}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, func(string) string { return "" }, strings.NewReader(""), pw, d.logs)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	var once sync.Once
	d.stop = func() error {
		var err error
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				tb.Error("daemon did not stop within 20s")
			}
		})
		return err
	}
	tb.Cleanup(func() {
		if err := d.stop(); err != nil {
			tb.Errorf("daemon: %v", err)
		}
		if tb.Failed() {
			tb.Logf("daemon log (tail):\n%s", tailString(d.logs.String(), 6000))
		}
	})
	var mu sync.Mutex
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			switch {
			case strings.HasPrefix(line, "data plane: "):
				d.dataURL = strings.TrimPrefix(line, "data plane: ")
			case strings.HasPrefix(line, "data plane (IPv6): "):
				d.data6URL = strings.TrimPrefix(line, "data plane (IPv6): ")
			case strings.HasPrefix(line, "control plane: "):
				d.apiURL = strings.TrimPrefix(line, "control plane: ")
			case line == "ready":
				close(ready)
			}
			mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		tb.Fatalf("daemon exited before ready: %v\n%s", err, tailString(d.logs.String(), 4000))
	case <-time.After(30 * time.Second):
		tb.Fatal("daemon not ready within 30s")
	}
	mu.Lock()
	defer mu.Unlock()
	return d
}

// get does one plain HTTP request against the data plane.
func (d *daemon) do(t *testing.T, method, path string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, d.dataURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (d *daemon) token(t *testing.T, ttl string) string {
	t.Helper()
	status, _, body := d.do(t, http.MethodPut, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl})
	if status != 200 {
		t.Fatalf("token PUT: %d", status)
	}
	return body
}
