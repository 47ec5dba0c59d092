package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteReportKeepsTheTextOutsideTheMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	before := "# Benchmarks\n\nintro\n\n" + beginMarker + "\nold figures\n" + endMarker + "\n\n## What limits it\n\nhand-written analysis\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &report{Started: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Command: "go run ./bench/cmd/benchrun", Opts: options{concs: []int{1}}}
	if err := writeReport(path, r); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	if strings.Contains(got, "old figures") {
		t.Error("old figures kept")
	}
	for _, want := range []string{"# Benchmarks\n\nintro\n\n" + beginMarker, "## Results of 2026-11-25 12:00 UTC", endMarker + "\n\n## What limits it\n\nhand-written analysis\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
