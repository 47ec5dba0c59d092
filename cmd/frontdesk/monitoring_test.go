package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// declaredMetrics are the metric names the metrics package defines: each
// as an option Name or as the first argument of a registrar call
// (r.counter("frontdesk_...", ...)), in any of its source files.
func declaredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../../internal/metrics/*.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := regexp.MustCompile(`(?:Name:\s+|\.(?:counter|counterVec|gauge|gaugeVec|histogram|histogramVec)\(\s*)"(frontdesk_[a-z0-9_]+)"`)
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range declared.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d metric names in internal/metrics", len(names))
	}
	return names
}

var metricRef = regexp.MustCompile(`frontdesk_[a-z0-9_]+`)

// checkExpr fails for every frontdesk metric an expression names that the
// daemon does not export (histogram series by their family name).
func checkExpr(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	for _, m := range metricRef.FindAllString(expr, -1) {
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suf); ok && names[b] {
				base = b
			}
		}
		if !names[base] {
			t.Errorf("%s: %s is not a metric frontdesk exports (in %q)", where, m, expr)
		}
	}
}

// The shipped dashboard and alert rules name only metrics the daemon
// exports, so a renamed metric cannot silently empty a panel or an alert.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	names := declaredMetrics(t)
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "frontdesk.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Type    string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/frontdesk.json: %v", err)
	}
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			checkExpr(t, "dashboard panel "+p.Title, tg.Expr, names)
		}
	}
	if exprs < 10 {
		t.Errorf("the dashboard has %d queries; want the IMDSv1, request, latency, throttling, credential, watch and store panels", exprs)
	}
	files, _ := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no alert rules in deploy/prometheus")
	}
	rules := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Rules []struct {
					Alert string
					Expr  string
				}
			}
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				rules++
				checkExpr(t, filepath.Base(f)+" "+r.Alert, r.Expr, names)
			}
		}
	}
	if rules < 4 {
		t.Errorf("%d alert rules; want at least credentials, store, watch lag and IMDSv1", rules)
	}
}
