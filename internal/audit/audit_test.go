package audit

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	secretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sessionToken = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"
	imdsToken    = "AQAEAEXAMPLEIMDSV2TOKENvalue=="
)

// syncBuffer is a bytes.Buffer safe to read while the writer goroutine runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines closes l and decodes every line written to buf.
func lines(t *testing.T, l *Log, buf *syncBuffer) []map[string]any {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func guestRequest(method, path, ua string, token bool) *http.Request {
	r := httptest.NewRequest(method, "http://169.254.169.254"+path, nil)
	r.RemoteAddr = "192.0.2.10:40000"
	r.Header.Set("User-Agent", ua)
	if token {
		r.Header.Set("X-Aws-Ec2-Metadata-Token", imdsToken)
	}
	return r
}

func TestRequestEvents(t *testing.T) {
	for _, tt := range []struct {
		name  string
		r     *http.Request
		ev    dataplane.RequestEvent
		want  []map[string]any
		empty bool
	}{
		{
			name: "v1_served_call_is_logged_with_path_and_user_agent",
			r:    guestRequest(http.MethodGet, "/latest/meta-data/ami-id", "python-requests/2.31", false),
			ev:   dataplane.RequestEvent{Method: "GET", InstanceID: "i-1", IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0},
			want: []map[string]any{{
				"time": "2026-03-01T12:00:00Z", "event": "imds_v1_call", "instance_id": "i-1", "method": "GET",
				"path": "/latest/meta-data/ami-id", "user_agent": "python-requests/2.31", "status": 200.0,
				"outcome": "served", "remote": "192.0.2.10:40000", "count": 1.0,
			}},
		},
		{
			name: "v1_rejected_call_is_logged",
			r:    guestRequest(http.MethodGet, "/latest/meta-data/", "curl/8.5.0", false),
			ev:   dataplane.RequestEvent{Method: "GET", InstanceID: "i-2", IMDSVersion: 1, Status: 401, Outcome: dataplane.OutcomeNoTokenRejected, Start: t0},
			want: []map[string]any{{
				"time": "2026-03-01T12:00:00Z", "event": "imds_v1_call", "instance_id": "i-2", "method": "GET",
				"path": "/latest/meta-data/", "user_agent": "curl/8.5.0", "status": 401.0,
				"outcome": "no_token_rejected", "remote": "192.0.2.10:40000", "count": 1.0,
			}},
		},
		{
			name:  "v2_plain_request_writes_nothing",
			r:     guestRequest(http.MethodGet, "/latest/meta-data/", "aws-sdk-go-v2", true),
			ev:    dataplane.RequestEvent{Method: "GET", InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0},
			empty: true,
		},
		{
			name:  "token_put_writes_nothing",
			r:     guestRequest(http.MethodPut, "/latest/api/token", "aws-sdk-go-v2", false),
			ev:    dataplane.RequestEvent{Method: "PUT", InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeTokenIssued, Start: t0},
			empty: true,
		},
		{
			name:  "unknown_caller_writes_nothing",
			r:     guestRequest(http.MethodGet, "/latest/meta-data/", "curl", false),
			ev:    dataplane.RequestEvent{Method: "GET", Status: 404, Outcome: dataplane.OutcomeUnknownCaller, Start: t0},
			empty: true,
		},
		{
			name: "v2_credential_delivery_has_the_access_key_id",
			r:    guestRequest(http.MethodGet, "/latest/meta-data/iam/security-credentials/app", "aws-sdk-go-v2", true),
			ev: dataplane.RequestEvent{Method: "GET", InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0,
				Delivery: &dataplane.Delivery{Role: "app", AccessKeyID: "ASIAEXAMPLE", Code: "Success"}},
			want: []map[string]any{{
				"time": "2026-03-01T12:00:00Z", "event": "credential_delivery", "instance_id": "i-1", "role": "app",
				"access_key_id": "ASIAEXAMPLE", "imds_version": 2.0, "user_agent": "aws-sdk-go-v2", "remote": "192.0.2.10:40000", "count": 1.0,
			}},
		},
		{
			name: "v1_credential_delivery_writes_both_lines",
			r:    guestRequest(http.MethodGet, "/latest/meta-data/iam/security-credentials/app", "boto/2.49", false),
			ev: dataplane.RequestEvent{Method: "GET", InstanceID: "i-3", IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0,
				Delivery: &dataplane.Delivery{Role: "app", AccessKeyID: "ASIAEXAMPLE", Code: "Success"}},
			want: []map[string]any{{
				"time": "2026-03-01T12:00:00Z", "event": "imds_v1_call", "instance_id": "i-3", "method": "GET",
				"path": "/latest/meta-data/iam/security-credentials/app", "user_agent": "boto/2.49", "status": 200.0,
				"outcome": "served", "remote": "192.0.2.10:40000", "count": 1.0,
			}, {
				"time": "2026-03-01T12:00:00Z", "event": "credential_delivery", "instance_id": "i-3", "role": "app",
				"access_key_id": "ASIAEXAMPLE", "imds_version": 1.0, "user_agent": "boto/2.49", "remote": "192.0.2.10:40000", "count": 1.0,
			}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf syncBuffer
			l := New(&buf, Options{})
			l.Request(tt.r, &tt.ev)
			got := lines(t, l, &buf)
			if tt.empty {
				if len(got) != 0 {
					t.Fatalf("wrote %v, want nothing", got)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d lines %v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if !equal(got[i], tt.want[i]) {
					t.Errorf("line %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func equal(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestSecretsNeverWritten(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, Options{Now: func() time.Time { return t0 }})
	// The data plane hands Delivery only the access key id; the request
	// itself carries an IMDSv2 token header that must not be copied.
	r := guestRequest(http.MethodGet, "/latest/meta-data/iam/security-credentials/app", "aws-cli/2", true)
	l.Request(r, &dataplane.RequestEvent{Method: "GET", InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0,
		Delivery: &dataplane.Delivery{Role: "app", AccessKeyID: "ASIAEXAMPLE", Code: "Success"}})
	l.Change("AKIAADMIN", "PutRoleCredentials", nil, map[string]string{
		"Role": "app", "SecretAccessKey": secretKey, "SessionToken": sessionToken, "HttpTokens": "required",
	})
	got := lines(t, l, &buf)
	out := buf.String()
	for _, s := range []string{secretKey, sessionToken, imdsToken} {
		if strings.Contains(out, s) {
			t.Errorf("audit output contains secret %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "ASIAEXAMPLE") {
		t.Error("delivery lacks the access key id")
	}
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2", len(got))
	}
	detail, _ := got[1]["detail"].(map[string]any)
	if detail["HttpTokens"] != "required" || detail["SecretAccessKey"] != "[redacted]" || detail["Role"] != "app" {
		t.Errorf("detail = %v, want secrets redacted and the rest kept", detail)
	}
}

func TestChangeEvent(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, Options{Now: func() time.Time { return t0.Add(time.Second) }})
	l.Change("AKIAEXAMPLEADMIN", "ModifyInstanceMetadataOptions", []string{"i-1", "i-2"}, map[string]string{"HttpTokens": "required"})
	l.Change("AKIAEXAMPLEADMIN", "ModifyInstanceMetadataDefaults", nil, nil)
	got := lines(t, l, &buf)
	want := []map[string]any{{
		"time": "2026-03-01T12:00:01Z", "event": "control_plane_change", "access_key_id": "AKIAEXAMPLEADMIN",
		"action": "ModifyInstanceMetadataOptions", "instance_ids": []any{"i-1", "i-2"}, "detail": map[string]any{"HttpTokens": "required"},
	}, {
		"time": "2026-03-01T12:00:01Z", "event": "control_plane_change", "access_key_id": "AKIAEXAMPLEADMIN",
		"action": "ModifyInstanceMetadataDefaults",
	}}
	if len(got) != 2 || !equal(got[0], want[0]) || !equal(got[1], want[1]) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.syncBuffer.Write(p)
}

func TestBlockedWriterDropsInsteadOfBlocking(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l := New(w, Options{Buffer: 4})
	// Distinct calls from distinct instances: nothing collapses and no
	// instance reaches its share; only the queue bounds them.
	v1 := func(i int) {
		l.Request(guestRequest(http.MethodGet, "/latest/"+strconv.Itoa(i), "curl", false),
			&dataplane.RequestEvent{Method: "GET", InstanceID: "i-" + strconv.Itoa(i), IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0})
	}
	v1(-1)
	<-w.entered // the writer goroutine is now stuck in Write with one line
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 {
			v1(i)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Request blocked on a stuck writer")
	}
	// 4 lines fit in the queue, the rest are dropped.
	if got := l.Dropped(); got != 96 {
		t.Errorf("Dropped = %d, want 96", got)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(w.String(), "\n"); n != 5 {
		t.Errorf("%d lines written after release, want 5 (1 in flight + 4 queued)", n)
	}
}

func TestEventsAfterCloseAreDropped(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Change("AKIA", "RunInstances", nil, nil)
	if l.Dropped() != 1 || buf.String() != "" {
		t.Errorf("after Close: dropped %d, wrote %q", l.Dropped(), buf.String())
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWriteErrorIsReturnedByClose(t *testing.T) {
	l := New(failingWriter{}, Options{})
	l.Change("AKIA", "RunInstances", nil, nil)
	if err := l.Close(); err == nil {
		t.Error("Close returned nil after a failed write")
	}
	if l.Dropped() == 0 {
		t.Error("the failed line was not counted as dropped")
	}
}

func TestLongUserAgentIsTruncated(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, Options{})
	l.Request(guestRequest(http.MethodGet, "/latest/", strings.Repeat("x", 10000), false),
		&dataplane.RequestEvent{Method: "GET", InstanceID: "i-1", IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0})
	got := lines(t, l, &buf)
	if ua, _ := got[0]["user_agent"].(string); len(ua) != maxUALen+len(TruncatedMarker) || !strings.HasSuffix(ua, TruncatedMarker) {
		t.Errorf("user agent kept as %d bytes (%q...), want %d and the marker", len(ua), ua[:min(len(ua), 20)], maxUALen)
	}
}

func TestOpen(t *testing.T) {
	t.Run("file_is_created_0600_and_appended", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		for _, text := range []string{"one\n", "two\n"} {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte(text)); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "one\ntwo\n" {
			t.Errorf("file = %q, want both writes appended", b)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", st.Mode().Perm())
		}
	})
	t.Run("stdout_is_not_closed", func(t *testing.T) {
		for _, p := range []string{"-", "stdout"} {
			w, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stdout.Stat(); err != nil {
				t.Errorf("stdout closed by Open(%q).Close: %v", p, err)
			}
		}
	})
	t.Run("missing_directory_fails_with_context", func(t *testing.T) {
		_, err := Open(filepath.Join(t.TempDir(), "no", "such", "audit.jsonl"))
		if err == nil || !strings.Contains(err.Error(), "open audit log") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("empty_path_fails", func(t *testing.T) {
		if _, err := Open(""); err == nil {
			t.Error("Open(\"\") succeeded")
		}
	})
}

func BenchmarkRequestV2(b *testing.B) {
	l := New(&syncBuffer{}, Options{})
	b.Cleanup(func() { _ = l.Close() })
	r := guestRequest(http.MethodGet, "/latest/meta-data/", "aws-sdk-go-v2", true)
	ev := &dataplane.RequestEvent{Method: "GET", InstanceID: "i-1", IMDSVersion: 2, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0}
	b.ReportAllocs()
	for b.Loop() {
		l.Request(r, ev)
	}
}

// Repeats of one call collapse: 400 identical IMDSv1 calls write a few
// lines whose counts add up to exactly 400.
func TestRepeatedCallsCollapseIntoCountedLines(t *testing.T) {
	var buf syncBuffer
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := New(&buf, Options{Now: clock, Window: time.Second})
	for i := range 400 {
		at := t0.Add(time.Duration(i) * 2500 * time.Microsecond) // 400 calls in one second, the rate limit's pace
		mu.Lock()
		now = at
		mu.Unlock()
		l.Request(guestRequest(http.MethodGet, "/latest/meta-data/ami-id", "python-requests/2.31", false),
			&dataplane.RequestEvent{Method: "GET", InstanceID: "i-1", IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: at})
	}
	// Another instance's identical call is its own line.
	l.Request(guestRequest(http.MethodGet, "/latest/meta-data/ami-id", "python-requests/2.31", false),
		&dataplane.RequestEvent{Method: "GET", InstanceID: "i-2", IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0})
	got := lines(t, l, &buf)
	var sum float64
	n := 0
	for _, m := range got {
		if m["instance_id"] == "i-1" {
			sum += m["count"].(float64)
			n++
		}
	}
	t.Logf("400 identical calls: %d lines", n)
	if n > 50 || sum != 400 {
		t.Fatalf("%d lines adding up to %v, want at most 50 adding up to 400", n, sum)
	}
	if len(got) != n+1 {
		t.Fatalf("%d lines in all, want %d (the other instance's own line)", len(got), n+1)
	}
}

// One instance can hold only its share of the queue: a guest making many
// distinct calls while the writer is stuck cannot push a neighbour's
// event out.
func TestOneInstanceHoldsOnlyItsShareOfTheQueue(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l := New(w, Options{Buffer: 64, Share: 8})
	call := func(id, path string) {
		l.Request(guestRequest(http.MethodGet, path, "curl", false),
			&dataplane.RequestEvent{Method: "GET", InstanceID: id, IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0})
	}
	call("i-0", "/first")
	<-w.entered
	for i := range 200 {
		call("i-flood", "/latest/"+strconv.Itoa(i))
	}
	call("i-neighbour", "/latest/meta-data/instance-id")
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out := w.String()
	if !strings.Contains(out, "i-neighbour") {
		t.Fatal("the neighbour's event was pushed out")
	}
	if n := strings.Count(out, "i-flood"); n > 8 {
		t.Fatalf("the flooding instance wrote %d lines, want at most its share of 8", n)
	}
}

// Forget writes what is pending for an instance and keeps nothing of it.
func TestForgetFlushesAndDropsAnInstance(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, Options{Now: func() time.Time { return t0 }, Window: time.Hour})
	for range 3 {
		l.Request(guestRequest(http.MethodGet, "/latest/", "curl", false),
			&dataplane.RequestEvent{Method: "GET", InstanceID: "i-1", IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: t0})
	}
	if l.Tracked() != 1 {
		t.Fatalf("tracking %d instances, want 1", l.Tracked())
	}
	l.Forget("i-1")
	if l.Tracked() != 0 {
		t.Fatalf("tracking %d instances after Forget, want 0", l.Tracked())
	}
	var sum float64
	for _, m := range lines(t, l, &buf) {
		sum += m["count"].(float64)
	}
	if sum != 3 {
		t.Fatalf("counts add up to %v, want 3", sum)
	}
}

// After the file is moved away and reopened, the next line goes to a new
// file at the path (what logrotate needs).
func TestReopenAfterMoveWritesANewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	moved, _ := os.ReadFile(path + ".1")
	fresh, _ := os.ReadFile(path)
	if string(moved) != "one\n" || string(fresh) != "two\n" {
		t.Fatalf("moved file %q, new file %q; want \"one\" and \"two\"", moved, fresh)
	}
}
