package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)

// scrape fetches m's Handler over HTTP and parses the text exposition.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return fams
}

// value returns the value of the series of name whose labels are exactly
// labels (name=value pairs), and whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, s := range f.GetMetric() {
		if len(s.GetLabel()) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range s.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			return s.GetCounter().GetValue(), true
		case s.Gauge != nil:
			return s.GetGauge().GetValue(), true
		case s.Histogram != nil:
			return float64(s.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func seriesCount(fams map[string]*dto.MetricFamily, name string) int {
	if f, ok := fams[name]; ok {
		return len(f.GetMetric())
	}
	return 0
}

func request(method, path, ua string) *http.Request {
	r := httptest.NewRequest(method, "http://169.254.169.254"+path, nil)
	if ua != "" {
		r.Header.Set("User-Agent", ua)
	}
	return r
}

type event struct {
	id      string
	version int
	status  int
	outcome dataplane.Outcome
	path    string
	ua      string
	at      time.Time
}

func (e event) send(m *Metrics) {
	method := http.MethodGet
	if e.outcome == dataplane.OutcomeTokenIssued {
		method = http.MethodPut
	}
	at := e.at
	if at.IsZero() {
		at = t0
	}
	m.Request(request(method, e.path, e.ua), &dataplane.RequestEvent{
		Method: method, InstanceID: e.id, IMDSVersion: e.version, Status: e.status,
		Outcome: e.outcome, Start: at, Duration: 300 * time.Microsecond,
	})
}

func fixedClock(t *time.Time) func() time.Time { return func() time.Time { return *t } }

func TestScrapeAfterSyntheticEvents(t *testing.T) {
	now := t0
	m := New(Options{Now: fixedClock(&now)})
	for _, e := range []event{
		{id: "i-1", version: 1, status: 200, outcome: dataplane.OutcomeServed, path: "/latest/meta-data/"},
		{id: "i-1", version: 1, status: 200, outcome: dataplane.OutcomeServed, path: "/latest/meta-data/ami-id"},
		{id: "i-1", version: 1, status: 404, outcome: dataplane.OutcomeOther, path: "/latest/nope"},
		{id: "i-2", version: 1, status: 401, outcome: dataplane.OutcomeNoTokenRejected, path: "/latest/meta-data/"},
		{id: "i-2", version: 2, status: 200, outcome: dataplane.OutcomeServed, path: "/latest/meta-data/"},
		{id: "i-2", version: 2, status: 200, outcome: dataplane.OutcomeTokenIssued, path: "/latest/api/token"},
		{id: "i-3", version: 2, status: 200, outcome: dataplane.OutcomeServed, path: "/latest/meta-data/"},
		{id: "", version: 0, status: 404, outcome: dataplane.OutcomeUnknownCaller, path: "/latest/meta-data/"},
		{id: "i-3", version: 0, status: 429, outcome: dataplane.OutcomeThrottled, path: "/latest/meta-data/"},
		{id: "i-3", version: 0, status: 0, outcome: dataplane.OutcomeOther, path: "/"},
	} {
		e.send(m)
	}
	m.ConnRejected()
	m.SnapshotApplied(42, 3, 250*time.Millisecond)
	m.StoreError("watch")
	m.CredentialRefresh("app", "success")
	m.CredentialRefresh("app", "boom")
	m.CredentialRefresh("", "success")
	m.CredentialExpiry("app", 3000)
	m.ControlPlaneRequest("RunInstances", "")
	m.ControlPlaneRequest("RunInstances", "InvalidParameterValue")
	fams := scrape(t, m)

	tests := []struct {
		name   string
		metric string
		labels []string
		want   float64
	}{
		{"v1_served_counts_as_no_token", "frontdesk_metadata_no_token_total", []string{"instance_id", "i-1"}, 2},
		{"v1_rejected_counts_as_no_token_rejected", "frontdesk_metadata_no_token_rejected_total", []string{"instance_id", "i-2"}, 1},
		{"rejected_instance_has_zero_no_token", "frontdesk_metadata_no_token_total", []string{"instance_id", "i-2"}, 0},
		{"requests_by_status_and_version_v1_200", "frontdesk_metadata_requests_total", []string{"status", "200", "imds_version", "1"}, 2},
		{"requests_v1_404", "frontdesk_metadata_requests_total", []string{"status", "404", "imds_version", "1"}, 1},
		{"requests_v1_401", "frontdesk_metadata_requests_total", []string{"status", "401", "imds_version", "1"}, 1},
		{"requests_v2_200_includes_token_put", "frontdesk_metadata_requests_total", []string{"status", "200", "imds_version", "2"}, 3},
		{"requests_unknown_version_404", "frontdesk_metadata_requests_total", []string{"status", "404", "imds_version", "none"}, 1},
		{"requests_throttled_429", "frontdesk_metadata_requests_total", []string{"status", "429", "imds_version", "none"}, 1},
		{"requests_dropped_connection", "frontdesk_metadata_requests_total", []string{"status", "none", "imds_version", "none"}, 1},
		{"duration_histogram_v2_samples", "frontdesk_metadata_request_duration_seconds", []string{"imds_version", "2"}, 3},
		{"duration_histogram_v1_samples", "frontdesk_metadata_request_duration_seconds", []string{"imds_version", "1"}, 4},
		{"tokens_issued", "frontdesk_tokens_issued_total", nil, 1},
		{"unknown_callers", "frontdesk_unknown_callers_total", nil, 1},
		{"outcome_throttled", "frontdesk_metadata_outcomes_total", []string{"outcome", "throttled"}, 1},
		{"outcome_served", "frontdesk_metadata_outcomes_total", []string{"outcome", "served"}, 4},
		{"outcome_bad_token_zero", "frontdesk_metadata_outcomes_total", []string{"outcome", "bad_token"}, 0},
		{"connections_rejected", "frontdesk_connections_rejected_total", nil, 1},
		{"snapshot_revision", "frontdesk_snapshot_revision", nil, 42},
		{"instances", "frontdesk_instances", nil, 3},
		{"apply_histogram", "frontdesk_snapshot_apply_seconds", nil, 1},
		{"store_errors", "frontdesk_store_errors_total", []string{"op", "watch"}, 1},
		{"refresh_success", "frontdesk_credential_refreshes_total", []string{"role", "app", "outcome", "success"}, 1},
		{"refresh_unknown_outcome_is_failure", "frontdesk_credential_refreshes_total", []string{"role", "app", "outcome", "failure"}, 1},
		{"identity_role_label", "frontdesk_credential_refreshes_total", []string{"role", "_identity", "outcome", "success"}, 1},
		{"credential_expiry", "frontdesk_credential_expiry_seconds", []string{"role", "app"}, 3000},
		{"controlplane_success_is_ok", "frontdesk_controlplane_requests_total", []string{"action", "RunInstances", "code", "ok"}, 1},
		{"controlplane_error_code", "frontdesk_controlplane_requests_total", []string{"action", "RunInstances", "code", "InvalidParameterValue"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := value(fams, tt.metric, tt.labels...)
			if !ok {
				t.Fatalf("%s%v missing", tt.metric, tt.labels)
			}
			if got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
	t.Run("v2_only_instances_have_no_instance_series", func(t *testing.T) {
		if _, ok := value(fams, "frontdesk_metadata_no_token_total", "instance_id", "i-3"); ok {
			t.Error("i-3 made only IMDSv2 calls but has a no_token series")
		}
	})
	t.Run("runtime_collectors_registered", func(t *testing.T) {
		if _, ok := fams["go_goroutines"]; !ok {
			t.Error("go_goroutines missing")
		}
	})
}

func TestInstanceSeriesCap(t *testing.T) {
	now := t0
	m := New(Options{MaxInstanceSeries: 2, Now: fixedClock(&now)})
	for _, id := range []string{"i-1", "i-2", "i-3", "i-4", "i-1"} {
		event{id: id, version: 1, status: 200, outcome: dataplane.OutcomeServed, path: "/"}.send(m)
	}
	fams := scrape(t, m)
	for _, tt := range []struct {
		name  string
		label string
		want  float64
	}{
		{"first_instance_keeps_its_label", "i-1", 2},
		{"second_instance_keeps_its_label", "i-2", 1},
		{"instances_past_the_cap_share_other", OtherLabel, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := value(fams, "frontdesk_metadata_no_token_total", "instance_id", tt.label)
			if !ok || got != tt.want {
				t.Errorf("no_token{instance_id=%q} = %v (present %v), want %v", tt.label, got, ok, tt.want)
			}
		})
	}
	t.Run("series_count_is_cap_plus_other", func(t *testing.T) {
		if n := seriesCount(fams, "frontdesk_metadata_no_token_total"); n != 3 {
			t.Errorf("%d series, want 3", n)
		}
	})
}

func TestForgetInstance(t *testing.T) {
	now := t0
	m := New(Options{MaxInstanceSeries: 2, Now: fixedClock(&now)})
	for _, id := range []string{"i-1", "i-2", "i-3"} {
		event{id: id, version: 1, status: 200, outcome: dataplane.OutcomeServed, path: "/"}.send(m)
	}
	m.ForgetInstance("i-1")
	fams := scrape(t, m)
	t.Run("series_of_forgotten_instance_are_deleted", func(t *testing.T) {
		for _, name := range []string{"frontdesk_metadata_no_token_total", "frontdesk_metadata_no_token_rejected_total"} {
			if _, ok := value(fams, name, "instance_id", "i-1"); ok {
				t.Errorf("%s{i-1} still exported", name)
			}
		}
		if _, ok := value(fams, "frontdesk_metadata_no_token_total", "instance_id", "i-2"); !ok {
			t.Error("i-2 was deleted too")
		}
	})
	t.Run("freed_slot_goes_to_the_next_new_instance", func(t *testing.T) {
		event{id: "i-4", version: 1, status: 200, outcome: dataplane.OutcomeServed, path: "/"}.send(m)
		fams := scrape(t, m)
		if got, ok := value(fams, "frontdesk_metadata_no_token_total", "instance_id", "i-4"); !ok || got != 1 {
			t.Errorf("i-4 = %v (present %v), want its own series with 1", got, ok)
		}
	})
	t.Run("keep_instances_forgets_the_rest", func(t *testing.T) {
		m.KeepInstances(func(id string) bool { return id == "i-4" })
		fams := scrape(t, m)
		if _, ok := value(fams, "frontdesk_metadata_no_token_total", "instance_id", "i-2"); ok {
			t.Error("i-2 still exported")
		}
	})
}

func TestRoleCapAndForgetRole(t *testing.T) {
	m := New(Options{MaxRoleSeries: 1})
	m.CredentialExpiry("a", 10)
	m.CredentialExpiry("b", 20)
	fams := scrape(t, m)
	if got, ok := value(fams, "frontdesk_credential_expiry_seconds", "role", OtherLabel); !ok || got != 20 {
		t.Errorf("role past the cap: _other = %v (present %v), want 20", got, ok)
	}
	m.CredentialRefresh("a", "success")
	m.ForgetRole("a")
	fams = scrape(t, m)
	if _, ok := value(fams, "frontdesk_credential_expiry_seconds", "role", "a"); ok {
		t.Error("forgotten role still has an expiry series")
	}
	if _, ok := value(fams, "frontdesk_credential_refreshes_total", "role", "a", "outcome", "success"); ok {
		t.Error("forgotten role still has a refresh series")
	}
	m.CredentialExpiry("c", 30)
	if got, ok := value(scrape(t, m), "frontdesk_credential_expiry_seconds", "role", "c"); !ok || got != 30 {
		t.Errorf("freed role slot not reused: c = %v (present %v)", got, ok)
	}
}

func TestControlPlaneActionsAreAFixedSet(t *testing.T) {
	m := New(Options{ControlPlaneActions: []string{"RunInstances"}})
	m.ControlPlaneRequest("RunInstances", "")
	m.ControlPlaneRequest("Bogus", "InvalidAction")
	fams := scrape(t, m)
	if got, ok := value(fams, "frontdesk_controlplane_requests_total", "action", UnknownActionLabel, "code", "InvalidAction"); !ok || got != 1 {
		t.Errorf("unknown action = %v (present %v), want 1 under %s", got, ok, UnknownActionLabel)
	}
	if n := seriesCount(fams, "frontdesk_controlplane_requests_total"); n != 2 {
		t.Errorf("%d series, want 2", n)
	}
}

func TestObservers(t *testing.T) {
	var a, b counting
	o := Observers(&a, nil, &b)
	o.Request(request(http.MethodGet, "/", ""), &dataplane.RequestEvent{})
	if a.n != 1 || b.n != 1 {
		t.Errorf("observers called %d and %d times, want 1 each", a.n, b.n)
	}
	if Observers(&a) != dataplane.Observer(&a) {
		t.Error("a single observer is wrapped")
	}
	Observers().Request(request(http.MethodGet, "/", ""), &dataplane.RequestEvent{}) // must not panic
}

type counting struct{ n int }

func (c *counting) Request(*http.Request, *dataplane.RequestEvent) { c.n++ }

func TestRequestIsSafeForConcurrentUse(t *testing.T) {
	m := New(Options{MaxInstanceSeries: 3})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := []string{"i-1", "i-2", "i-3", "i-4", "i-5"}[(g+i)%5]
				event{id: id, version: 1 + i%2, status: 200, outcome: dataplane.OutcomeServed, path: "/"}.send(m)
				if i%50 == 0 {
					m.ForgetInstance(id)
				}
			}
		})
	}
	wg.Wait()
	fams := scrape(t, m)
	if got, _ := value(fams, "frontdesk_metadata_requests_total", "status", "200", "imds_version", "2"); got != 800 {
		t.Errorf("v2 200 = %v, want 800", got)
	}
	if n := seriesCount(fams, "frontdesk_metadata_no_token_total"); n > 4 {
		t.Errorf("%d instance series, want at most cap+1 = 4", n)
	}
}

func BenchmarkRequestV2Served(b *testing.B) {
	m := New(Options{})
	r := request(http.MethodGet, "/latest/meta-data/instance-id", "aws-sdk-go-v2")
	ev := &dataplane.RequestEvent{Method: http.MethodGet, InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0, Duration: time.Millisecond}
	m.Request(r, ev)
	b.ReportAllocs()
	for b.Loop() {
		m.Request(r, ev)
	}
}

func BenchmarkRequestV1Served(b *testing.B) {
	m := New(Options{})
	r := request(http.MethodGet, "/latest/meta-data/instance-id", "curl/8.5.0")
	ev := &dataplane.RequestEvent{Method: http.MethodGet, InstanceID: "i-1", IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0, Duration: time.Millisecond}
	m.Request(r, ev)
	b.ReportAllocs()
	for b.Loop() {
		m.Request(r, ev)
	}
}

func BenchmarkRequestV2ServedParallel(b *testing.B) {
	m := New(Options{})
	r := request(http.MethodGet, "/latest/meta-data/instance-id", "aws-sdk-go-v2")
	ev := &dataplane.RequestEvent{Method: http.MethodGet, InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0, Duration: time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request(r, ev)
		}
	})
}

func TestFleetUsageAndFlushMetrics(t *testing.T) {
	m := New(Options{})
	m.FleetV1Usage(7, 420, 90*time.Minute)
	m.UsageFlush(12, nil)
	m.UsageFlush(3, errors.New("store unavailable"))
	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"frontdesk_imds_v1_instances", nil, 7},
		{"frontdesk_imds_v1_calls_24h", nil, 420},
		{"frontdesk_imds_v1_usage_observed_seconds", nil, 5400},
		{"frontdesk_usage_flushes_total", []string{"outcome", "success"}, 1},
		{"frontdesk_usage_flushes_total", []string{"outcome", "failure"}, 1},
		{"frontdesk_usage_calls_written_total", nil, 15},
	} {
		if got, ok := value(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}
