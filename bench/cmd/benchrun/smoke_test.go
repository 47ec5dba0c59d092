//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole harness briefly (what CI runs through
// scripts/test.sh, with the integration tag: it builds and runs the daemon
// for a minute or more)
// and checks its output, not its speed: every workload has its closed-loop
// and open-loop rows with figures and no failed request, every fleet size
// has its rows, and the targets table is there.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"-smoke", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("benchrun -smoke: %v\n%s", err, stderr.String())
	}
	text := stdout.String()

	num := `[0-9][0-9,]*`
	lat := `[0-9]+\.[0-9]{3} ms`
	for _, spec := range workloadSpecs() {
		name := spec.W.Name
		i := strings.Index(text, "### "+name+"\n")
		if i < 0 {
			t.Errorf("no table for %q", name)
			continue
		}
		section := text[i:]
		if j := strings.Index(section[4:], "### "); j >= 0 {
			section = section[:j+4]
		}
		for _, label := range []string{"1 client", "4 clients", `open loop, ` + num + ` req/s \(½ saturation\)`} {
			row := regexp.MustCompile(`(?m)^\| ` + label + ` \| (` + num + `) \| ` + lat + ` \| ` + lat + ` \| (` + num + `) \| ` + lat + ` \| ` + lat + ` \| [0-9.]+× (req/s|p99) \| 0 / 0 \|$`)
			m := row.FindStringSubmatch(section)
			if m == nil {
				t.Errorf("%s: no row %q with figures and zero errors in\n%s", name, label, section)
				continue
			}
			if m[1] == "0" || m[2] == "0" {
				t.Errorf("%s %s: zero requests per second", name, label)
			}
		}
	}
	for _, n := range []string{"1", "1,000"} {
		mem := regexp.MustCompile(`(?m)^\| ` + n + ` \| [0-9.]+m?s \| [0-9.]+m?s \| [0-9.]+m?s \| >? ?[0-9.]+m?s \| [0-9]+ MiB \|`)
		if !mem.MatchString(text) {
			t.Errorf("no start-up and memory row for %s instances", n)
		}
		active := regexp.MustCompile(`(?m)^\| ` + n + ` \| .*\| [0-9]+ MiB \(` + n + ` called\) \|$`)
		if !active.MatchString(text) {
			t.Errorf("no memory after every one of the %s instances called", n)
		}
		latRow := regexp.MustCompile(`(?m)^\| ` + n + ` \| ` + lat + ` \| ` + lat + ` \| [0-9.]+× \| ` + num + ` \| ` + lat + ` \| ` + lat + ` \| ` + lat + ` \| ` + lat + ` \| ` + lat + ` \| ` + lat + ` \| 0 \|$`)
		if !latRow.MatchString(text) {
			t.Errorf("no latency and enforcement row for %s instances", n)
		}
	}
	if !strings.Contains(text, "### Targets") {
		t.Error("no targets table")
	}

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), beginMarker) || !strings.Contains(string(b), "- Command: `go run ./bench/cmd/benchrun -smoke -out ") {
		t.Errorf("report file lacks the generated section or the command:\n%s", b)
	}
	if t.Failed() {
		t.Logf("output:\n%s\nlog:\n%s", text, stderr.String())
	}
}
