package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches and parses the daemon's /metrics.
func (d *daemon) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(d.apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value returns the counter or gauge value of the series with these labels
// (0 when absent).
func value(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// Through the real daemon: IMDSv1 calls count as MetadataNoToken, and once
// IMDSv2 is required (through the EC2 API) as MetadataNoTokenRejected; IMDSv2
// calls count in neither.
func TestMetricsFollowIMDSVersions(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional")
	id := map[string]string{"instance_id": demoInstanceID}

	for range 3 {
		if s, _, _ := d.do(t, "GET", "/latest/meta-data/instance-id", nil); s != 200 {
			t.Fatalf("v1 GET: %d", s)
		}
	}
	tok := d.token(t, "60")
	for range 2 {
		if s, _, _ := d.do(t, "GET", "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": tok}); s != 200 {
			t.Fatalf("v2 GET: %d", s)
		}
	}
	m := d.scrape(t)
	if got := value(m, "frontdesk_metadata_no_token_total", id); got != 3 {
		t.Errorf("no_token_total = %v, want 3", got)
	}
	if got := value(m, "frontdesk_metadata_no_token_rejected_total", id); got != 0 {
		t.Errorf("no_token_rejected_total = %v, want 0", got)
	}
	if got := value(m, "frontdesk_tokens_issued_total", nil); got != 1 {
		t.Errorf("tokens_issued_total = %v, want 1", got)
	}
	if got := value(m, "frontdesk_metadata_requests_total", map[string]string{"status": "200", "imds_version": "2"}); got != 3 {
		t.Errorf("requests_total{200,v2} = %v, want 3 (PUT + 2 GETs)", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := apiFor(t, d.dataDir, d.apiURL).ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(demoInstanceID), HttpTokens: types.HttpTokensStateRequired,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for "applied" through the API, not by probing the data plane
	// (a probe answered before the change would count as a v1 call).
	waitApplied(ctx, t, apiFor(t, d.dataDir, d.apiURL), 2*time.Second, demoInstanceID)
	for range 2 {
		if s, _, _ := d.do(t, "GET", "/latest/meta-data/instance-id", nil); s != 401 {
			t.Fatalf("v1 GET under required: %d", s)
		}
	}
	m = d.scrape(t)
	if got := value(m, "frontdesk_metadata_no_token_rejected_total", id); got != 2 {
		t.Errorf("no_token_rejected_total = %v, want 2", got)
	}
	if got := value(m, "frontdesk_metadata_no_token_total", id); got != 3 {
		t.Errorf("no_token_total = %v after requiring v2, want still 3", got)
	}
	if got := value(m, "frontdesk_instances", nil); got != 1 {
		t.Errorf("frontdesk_instances = %v, want 1", got)
	}
	if got := value(m, "frontdesk_store_reloads_total", nil); got != 1 {
		t.Errorf("store_reloads_total = %v, want 1 (the initial load only)", got)
	}
	// The first fetch runs in the background after start: give it time.
	for deadline := time.Now().Add(10 * time.Second); value(m, "frontdesk_credential_refreshes_total", map[string]string{"outcome": "success"}) < 1; m = d.scrape(t) {
		if time.Now().After(deadline) {
			t.Fatal("no successful credential refresh counted within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
