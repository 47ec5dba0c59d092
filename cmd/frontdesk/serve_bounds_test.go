package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/audit"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

func scrapeMetrics(t *testing.T, mx *metrics.Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	mx.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

// When the last served instance of a role goes, the role's metric series
// go with it; while another instance uses the role they stay. A
// terminated instance's audit state is flushed and dropped.
func TestReleaserForgetsRolesAndAuditStateWithTheirInstances(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	a := storetest.NewInstance(t, 1, "192.0.2.1")
	b := storetest.NewInstance(t, 2, "192.0.2.2")
	for _, in := range []*imds.Instance{a, b} {
		in.IAMInstanceProfile = &imds.IAMInstanceProfile{Arn: "arn:aws:iam::123456789012:instance-profile/app", ID: "AIPAEXAMPLE", Role: "app"}
	}
	put := func(ins ...*imds.Instance) {
		t.Helper()
		if err := st.Update(context.Background(), func(tx imds.Tx) error {
			for _, in := range ins {
				if err := imds.PutInstance(tx, in); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(a, b)
	f := dataplane.NewFollower(st, dataplane.FollowerOptions{})
	if _, err := f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	mx := metrics.New(metrics.Options{})
	var buf bytes.Buffer
	al := audit.New(&buf, audit.Options{Window: time.Hour})
	defer al.Close()
	dp := dataplane.New(f.Snapshot, nil, nil, nil, dataplane.Options{})
	r := newReleaser(dp, al, mx)
	r.afterSnapshot(f.Snapshot(), nil)
	mx.CredentialExpiry("app", 3600)
	al.Request(httptest.NewRequest(http.MethodGet, "/latest/", nil), &dataplane.RequestEvent{InstanceID: a.InstanceID, IMDSVersion: 1, Method: "GET", Status: 200})
	al.Request(httptest.NewRequest(http.MethodGet, "/latest/", nil), &dataplane.RequestEvent{InstanceID: a.InstanceID, IMDSVersion: 1, Method: "GET", Status: 200})

	terminate := func(in *imds.Instance) map[string]struct{} {
		in.State = imds.StateTerminated
		put(in)
		if _, err := f.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		return map[string]struct{}{in.InstanceID: {}}
	}
	changed := terminate(a)
	r.afterSnapshot(f.Snapshot(), changed)
	if !strings.Contains(scrapeMetrics(t, mx), `frontdesk_credential_expiry_seconds{role="app"}`) {
		t.Fatal("the role's series went while another instance still uses it")
	}
	if al.Tracked() != 0 {
		t.Fatalf("audit state kept for %d instances after the termination", al.Tracked())
	}
	changed = terminate(b)
	r.afterSnapshot(f.Snapshot(), changed)
	if strings.Contains(scrapeMetrics(t, mx), `role="app"`) {
		t.Fatal("the role's series outlived its last instance")
	}
}

// The connection defaults come from the open-file limit, and the
// per-instance share follows --max-conns when only that is given.
func TestConnectionBudgetFlags(t *testing.T) {
	parse := func(args ...string) serveConfig {
		t.Helper()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		var c serveConfig
		addBoundsFlags(fs, &c)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		settleBounds(fs, &c)
		return c
	}
	total, per := dataplane.ConnBudget(openFileLimit())
	if c := parse(); c.limits.MaxConns != total || c.limits.MaxConnsPerInstance != per || per >= total {
		t.Fatalf("defaults %d/%d, want %d/%d with the share below the budget", c.limits.MaxConns, c.limits.MaxConnsPerInstance, total, per)
	}
	if c := parse("--max-conns", "1000"); c.limits.MaxConnsPerInstance != 125 {
		t.Fatalf("--max-conns 1000 alone: per instance %d, want 125", c.limits.MaxConnsPerInstance)
	}
	if c := parse("--max-conns", "1000", "--max-conns-per-instance", "0"); c.limits.MaxConnsPerInstance != 0 {
		t.Fatalf("an explicit per-instance value was overridden: %d", c.limits.MaxConnsPerInstance)
	}
}
