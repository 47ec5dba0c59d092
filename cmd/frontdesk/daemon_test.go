package main

import (
	"bufio"
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
	stop     func() error
	lines    chan string
}

// startDaemon runs `frontdesk serve` with the given extra flags on
// loopback ports chosen by the kernel, and waits until it prints "ready".
func startDaemon(t *testing.T, dataDir string, extra ...string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	args := append([]string{"frontdesk", "serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, extra...)
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, func(string) string { return "" }, strings.NewReader(""), pw, io.Discard)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	d := &daemon{dataDir: dataDir, lines: make(chan string, 64)}
	var once sync.Once
	d.stop = func() error {
		var err error
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Error("daemon did not stop within 20s")
			}
		})
		return err
	}
	t.Cleanup(func() { d.stop() })
	sc := bufio.NewScanner(pr)
	ready := make(chan struct{})
	go func() {
		for sc.Scan() {
			line := sc.Text()
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
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon exited before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready within 30s")
	}
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
