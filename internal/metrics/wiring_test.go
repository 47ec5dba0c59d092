package metrics_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/audit"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/mdtree"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	secretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sessionToken = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"
	guestToken   = "guest-token-value"
)

type tokens struct{}

func (tokens) Mint(string, uint64, time.Duration, time.Time) (string, time.Time, error) {
	return guestToken, now.Add(time.Hour), nil
}

func (tokens) Verify(tok, _ string, _ uint64, _ time.Time) (time.Duration, error) {
	if tok != guestToken {
		return 0, errors.New("invalid")
	}
	return time.Hour, nil
}

type creds struct{}

func (creds) Credentials(_, role string) (mdtree.Credentials, uint64, bool) {
	return mdtree.Credentials{Code: "Success", LastUpdated: now, Expiration: now.Add(6 * time.Hour),
		AccessKeyID: "ASIAWIRING", SecretAccessKey: secretKey, Token: sessionToken}, 1, true
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func instance(t *testing.T, id, addr, httpTokens string) *imds.Instance {
	t.Helper()
	opts, err := imds.LaunchOptions(imds.OptionsRequest{HttpTokens: &httpTokens}, imds.DefaultAccountDefaults(), false)
	if err != nil {
		t.Fatal(err)
	}
	return &imds.Instance{
		InstanceID: id, ReservationID: "r-0123456789abcdef0", AccountID: "123456789012", Generation: 1,
		State: imds.StateRunning, ImageID: "ami-0123456789abcdef0", InstanceType: "t3.micro", Architecture: "x86_64",
		LaunchTime: now.Add(-time.Hour), InstanceLifecycle: "on-demand",
		Placement: imds.Placement{Region: "us-east-1", AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az4"},
		NetworkInterfaces: []imds.NetworkInterface{{
			MAC: "02:00:00:00:00:01", InterfaceID: "eni-0123456789abcdef0", OwnerID: "123456789012",
			SubnetID: "subnet-01", VPCID: "vpc-01", PrivateIPv4s: []string{addr},
		}},
		IAMInstanceProfile: &imds.IAMInstanceProfile{Arn: "arn:aws:iam::123456789012:instance-profile/p", ID: "AIPAEXAMPLE", Role: "app-role"},
		MetadataOptions:    opts,
	}
}

// TestThroughTheDataPlane wires Metrics and the audit log into the real
// data plane handler and checks what a few guest requests leave behind.
func TestThroughTheDataPlane(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	err := st.Update(t.Context(), func(tx imds.Tx) error {
		if err := imds.PutInstance(tx, instance(t, "i-0aaaaaaaaaaaaaaa1", "192.0.2.10", "optional")); err != nil {
			return err
		}
		return imds.PutInstance(tx, instance(t, "i-0aaaaaaaaaaaaaaa2", "192.0.2.11", "required"))
	})
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	f := dataplane.NewFollower(st, dataplane.FollowerOptions{Now: clock})
	if _, err := f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Options{Now: clock})
	var buf lockedBuffer
	a := audit.New(&buf, audit.Options{Now: clock})
	h := dataplane.New(f.Snapshot, tokens{}, nil, creds{}, dataplane.Options{Now: clock, Observer: metrics.Observers(m, a)})

	do := func(method, path, from string, hdr map[string]string) int {
		r := httptest.NewRequest(method, "http://169.254.169.254"+path, nil)
		r.RequestURI = path // origin form, as a guest sends it
		r.RemoteAddr = from + ":40000"
		r.Header.Set("User-Agent", "wiring-test/1")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, c := range []struct {
		method, path, from string
		hdr                map[string]string
		want               int
	}{
		{"GET", "/latest/meta-data/instance-id", "192.0.2.10", nil, 200},
		{"GET", "/latest/meta-data/iam/security-credentials/app-role", "192.0.2.10", nil, 200},
		{"GET", "/latest/meta-data/instance-id", "192.0.2.11", nil, 401},
		{"PUT", "/latest/api/token", "192.0.2.11", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": "60"}, 200},
		{"GET", "/latest/meta-data/instance-id", "192.0.2.11", map[string]string{"X-Aws-Ec2-Metadata-Token": guestToken}, 200},
		{"GET", "/latest/meta-data/instance-id", "192.0.2.99", nil, 404},
	} {
		if got := do(c.method, c.path, c.from, c.hdr); got != c.want {
			t.Fatalf("%s %s from %s = %d, want %d", c.method, c.path, c.from, got, c.want)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("metrics_scrape_has_the_counts", func(t *testing.T) {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		body := w.Body.String()
		for _, line := range []string{
			`frontdesk_metadata_no_token_total{instance_id="i-0aaaaaaaaaaaaaaa1"} 2`,
			`frontdesk_metadata_no_token_rejected_total{instance_id="i-0aaaaaaaaaaaaaaa2"} 1`,
			`frontdesk_tokens_issued_total 1`,
			`frontdesk_unknown_callers_total 1`,
			`frontdesk_metadata_requests_total{imds_version="2",status="200"} 2`,
		} {
			if !strings.Contains(body, line+"\n") {
				t.Errorf("scrape lacks %q", line)
			}
		}
	})
	t.Run("audit_has_v1_calls_and_the_delivery_but_no_secret", func(t *testing.T) {
		out := buf.b.String()
		var events []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct{ Event string }
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			events = append(events, ev.Event)
		}
		want := "imds_v1_call,imds_v1_call,credential_delivery,imds_v1_call"
		if got := strings.Join(events, ","); got != want {
			t.Errorf("events = %s, want %s", got, want)
		}
		if !strings.Contains(out, `"access_key_id":"ASIAWIRING"`) {
			t.Error("delivery lacks the access key id")
		}
		for _, s := range []string{secretKey, sessionToken, guestToken} {
			if strings.Contains(out, s) {
				t.Errorf("audit output contains %q", s)
			}
		}
	})
}
