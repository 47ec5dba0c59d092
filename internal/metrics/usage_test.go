package metrics

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
)

func TestV1UsageWindows(t *testing.T) {
	now := t0
	m := New(Options{Now: fixedClock(&now)})
	served := func(id string, ago time.Duration, path, ua string) {
		event{id: id, version: 1, status: 200, outcome: dataplane.OutcomeServed, path: path, ua: ua, at: now.Add(-ago)}.send(m)
	}
	rejected := func(id string, ago time.Duration) {
		event{id: id, version: 1, status: 401, outcome: dataplane.OutcomeNoTokenRejected, path: "/latest/", at: t0.Add(-ago)}.send(m)
	}
	served("i-recent", 10*time.Second, "/latest/meta-data/", "curl/8")
	served("i-recent", 5*time.Second, "/latest/user-data", "cloud-init/24")
	served("i-hour", 50*time.Minute, "/latest/", "python-requests/2")
	served("i-day", 20*time.Hour, "/latest/", "boto/2")
	served("i-old", 30*time.Hour, "/latest/", "ancient")
	rejected("i-req", 2*time.Minute)
	rejected("i-req", 3*time.Hour)
	// An IMDSv2 call never shows up in usage.
	event{id: "i-v2", version: 2, status: 200, outcome: dataplane.OutcomeServed, path: "/latest/", at: t0}.send(m)

	ids := func(us []Usage) string {
		var s []string
		for _, u := range us {
			s = append(s, u.InstanceID)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct {
		name   string
		window time.Duration
		want   string
	}{
		{"one_minute_sees_only_the_latest_calls", time.Minute, "i-recent"},
		{"five_minutes_adds_the_rejection", 5 * time.Minute, "i-recent,i-req"},
		{"one_hour", time.Hour, "i-hour,i-recent,i-req"},
		{"a_day_sees_everything_but_older_calls", 24 * time.Hour, "i-day,i-hour,i-recent,i-req"},
		{"longer_than_a_day_is_clamped", 72 * time.Hour, "i-day,i-hour,i-recent,i-req"},
		{"zero_window_is_empty", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(m.V1Usage(tt.window)); got != tt.want {
				t.Errorf("V1Usage(%v) = %q, want %q", tt.window, got, tt.want)
			}
		})
	}
	t.Run("usage_reports_counts_and_the_latest_call", func(t *testing.T) {
		u := m.V1Usage(time.Hour)
		got := u[1]
		want := Usage{InstanceID: "i-recent", Calls: 2, LastCall: t0.Add(-5 * time.Second), LastPath: "/latest/user-data", LastUserAgent: "cloud-init/24"}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("rejected_counted_separately_per_window", func(t *testing.T) {
		for _, u := range m.V1Usage(24 * time.Hour) {
			if u.InstanceID == "i-req" && (u.Rejected != 2 || u.Calls != 0) {
				t.Errorf("i-req = %+v, want 2 rejected, 0 calls", u)
			}
		}
	})
	t.Run("buckets_expire_as_time_passes", func(t *testing.T) {
		now = t0.Add(2 * time.Hour)
		defer func() { now = t0 }()
		if got := ids(m.V1Usage(time.Hour)); got != "" {
			t.Errorf("an hour window two hours later = %q, want empty", got)
		}
	})
	t.Run("a_reused_bucket_starts_from_zero", func(t *testing.T) {
		// One ring turn later the minute bucket of i-recent is reused.
		late := t0.Add(minuteBuckets * time.Minute)
		now = late
		defer func() { now = t0 }()
		served("i-recent", 0, "/latest/", "curl/8")
		u := m.V1Usage(time.Minute)
		if len(u) != 1 || u[0].Calls != 1 {
			t.Errorf("V1Usage = %+v, want i-recent with 1 call", u)
		}
	})
}

func TestUsageTruncatesLongText(t *testing.T) {
	now := t0
	m := New(Options{Now: fixedClock(&now)})
	long := strings.Repeat("é", 300) // 600 bytes
	event{id: "i-1", version: 1, status: 200, outcome: dataplane.OutcomeServed, path: "/latest/", ua: long}.send(m)
	u := m.V1Usage(time.Minute)
	if len(u) != 1 {
		t.Fatalf("V1Usage = %+v", u)
	}
	if ua := u[0].LastUserAgent; len(ua) > maxTextLen || !strings.HasPrefix(long, ua) || len(ua) < maxTextLen-4 {
		t.Errorf("user agent kept as %d bytes %q", len(ua), ua)
	}
}

func TestRequestDoesNotAllocate(t *testing.T) {
	m := New(Options{})
	for _, tt := range []struct {
		name string
		ev   dataplane.RequestEvent
	}{
		{"v2_served", dataplane.RequestEvent{InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0}},
		{"v2_token_issued", dataplane.RequestEvent{InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeTokenIssued, Start: t0}},
		{"v1_served_seen_instance", dataplane.RequestEvent{InstanceID: "i-1", IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0}},
		{"unknown_caller", dataplane.RequestEvent{IMDSVersion: 0, Status: 404, Outcome: dataplane.OutcomeUnknownCaller, Start: t0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := request(http.MethodGet, "/latest/meta-data/", "curl/8")
			m.Request(r, &tt.ev) // resolve the series once
			if n := testing.AllocsPerRun(100, func() { m.Request(r, &tt.ev) }); n != 0 {
				t.Errorf("%v allocations per request, want 0", n)
			}
		})
	}
}
