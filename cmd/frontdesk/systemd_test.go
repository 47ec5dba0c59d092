//go:build integration

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdAnalyzeAcceptsTheUnits runs systemd-analyze verify over the
// unit files in deploy/systemd.
func TestSystemdAnalyzeAcceptsTheUnits(t *testing.T) {
	unit := filepath.Join(deployDir, "systemd", "frontdesk.service")
	netUnit := filepath.Join(deployDir, "systemd", "frontdesk-netsetup.service")
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed (apt-get install systemd; scripts/test.sh does it)")
	}
	// verify checks that ExecStart's binary exists: point the units
	// at a stand-in executable.
	dir := t.TempDir()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, u := range []string{unit, netUnit} {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/frontdesk", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
