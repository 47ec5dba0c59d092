//go:build integration

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the daemon's RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// unsignedUpload sends 1 MiB to the control plane without credentials, as
// a stranger would: half announce their length, half are chunked.
func unsignedUpload(addr string, chunked bool) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	body := "Action=DescribeInstances&Version=2016-11-15&X=" + strings.Repeat("a", 1<<20)
	go func() {
		w := bufio.NewWriter(c)
		if chunked {
			fmt.Fprint(w, "POST / HTTP/1.1\r\nHost: frontdesk\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < len(body); i += 64 << 10 {
				part := body[i:min(i+64<<10, len(body))]
				if _, err := fmt.Fprintf(w, "%x\r\n%s\r\n", len(part), part); err != nil {
					return
				}
			}
			fmt.Fprint(w, "0\r\n\r\n")
		} else {
			fmt.Fprintf(w, "POST / HTTP/1.1\r\nHost: frontdesk\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
		_ = w.Flush() // fails once the server hangs up
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode < 400 {
		return fmt.Errorf("an unsigned upload got %d", resp.StatusCode)
	}
	return nil
}

// 100 unsigned 1 MiB uploads to the control plane of a real daemon grow its
// RSS by less than 32 MiB: nothing of them is buffered.
func TestUnsignedUploadsDoNotGrowTheDaemon(t *testing.T) {
	bin := buildFrontdesk(t)
	p := startOpsProc(t, bin, "--store", "memory", "--demo")
	addr := strings.TrimPrefix(p.apiURL, "http://")
	// Warm up the paths taken (goroutines, buffers) before the baseline.
	for i := range 4 {
		if err := unsignedUpload(addr, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	before := rssKiB(t, p.cmd.Process.Pid)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	sem := make(chan struct{}, 10)
	for i := range 100 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := unsignedUpload(addr, i%2 == 0); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("upload: %v", err)
	}
	after := rssKiB(t, p.cmd.Process.Pid)
	t.Logf("RSS before %d KiB, after 100 unsigned 1 MiB uploads %d KiB: %+d KiB", before, after, after-before)
	if after-before >= 32<<10 {
		t.Fatalf("RSS grew by %d KiB, want under 32 MiB", after-before)
	}
}

// 400 identical IMDSv1 calls write a few audit lines whose counts add up
// to 400; after the file is moved and the daemon gets SIGHUP, the next
// lines go to a new file at the path.
func TestAuditCollapsesRepeatsAndReopensOnSIGHUP(t *testing.T) {
	bin := buildFrontdesk(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	p := startOpsProc(t, bin, "--store", "memory", "--demo", "--demo-http-tokens", "optional", "--audit-log", path)
	addr := strings.TrimPrefix(p.dataURL, "http://")
	for i := range 400 {
		if status, err := rawGet(addr, "/latest/meta-data/ami-id", ""); err != nil || status != 200 {
			t.Fatalf("call %d: %d %v", i, status, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(path); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no audit line within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "audit log reopened", 1)
	if status, err := rawGet(addr, "/latest/meta-data/instance-id", ""); err != nil || status != 200 {
		t.Fatalf("call after the move: %d %v", status, err)
	}
	// Stopping writes the repeats still being collected.
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	read := func(name string) []map[string]any {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%s: %q is not JSON", name, line)
			}
			out = append(out, m)
		}
		return out
	}
	moved, fresh := read(path+".1"), read(path)
	lines, sum := 0, 0.0
	for _, m := range append(moved, fresh...) {
		if m["path"] == "/latest/meta-data/ami-id" {
			lines++
			sum += m["count"].(float64)
		}
	}
	t.Logf("400 identical calls: %d lines adding up to %v (%d in the moved file, %d in the new one)", lines, sum, len(moved), len(fresh))
	if lines > 50 || sum != 400 {
		t.Fatalf("%d lines adding up to %v, want at most 50 adding up to 400", lines, sum)
	}
	newPath := false
	for _, m := range fresh {
		if m["path"] == "/latest/meta-data/instance-id" {
			newPath = true
		}
	}
	if !newPath {
		t.Fatalf("the call after the move and SIGHUP is not in the new file: %v", fresh)
	}
}
