//go:build integration

package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// promtool (Debian's prometheus package) accepts the alert rules and their
// unit tests pass.
func TestAlertRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool: %v (scripts/test.sh installs Debian's prometheus)", err)
	}
	rules, _ := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yml"))
	tests, _ := filepath.Glob(filepath.Join(deployDir, "prometheus", "tests", "*.yaml"))
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatalf("rules %v, tests %v: want both", rules, tests)
	}
	for _, args := range [][]string{append([]string{"check", "rules"}, rules...), append([]string{"test", "rules"}, tests...)} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
