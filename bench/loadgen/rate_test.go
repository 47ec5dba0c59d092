//go:build integration

package loadgen

import (
	"context"
	"testing"
	"time"
)

// TestOpenLoopKeepsTheRate counts requests over half a second of wall
// time: on a loaded machine it measures the machine, so it runs with the
// integration tag (scripts/test.sh), not in the default go test.
func TestOpenLoopKeepsTheRate(t *testing.T) {
	f := newFakeIMDS(t)
	r, err := Run(context.Background(), Config{Target: f.url, Workload: Workload{Name: "v1", Path: "/x"}, Rate: 200,
		Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if r.OK < 70 || r.OK > 130 {
		t.Fatalf("%d requests in 0.5 s at 200 req/s, want about 100", r.OK)
	}
	if r.Rate != 200 {
		t.Fatalf("result rate %v, want 200", r.Rate)
	}
}
