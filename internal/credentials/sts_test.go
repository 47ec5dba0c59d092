package credentials

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
)

// hostCreds stand in for the host's own identity.
var hostCreds = awscreds.NewStaticCredentialsProvider("AKIDHOSTEXAMPLE", "host-secret", "")

func newTestSTS(t testing.TB, f *fakeSTS, cfg STSConfig) *STS {
	t.Helper()
	cfg.Endpoint = f.URL()
	if cfg.Region == "" {
		cfg.Region = "us-west-2"
	}
	if cfg.Credentials == nil {
		cfg.Credentials = hostCreds
	}
	cfg.RetryMaxAttempts = 1
	p, err := NewSTS(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSTSAssumeRoleRequest(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	target := Target{InstanceID: "i-0123456789abcdef0", AccountID: "123456789012", Role: "web", RoleArn: "arn:aws:iam::123456789012:role/web"}
	tests := []struct {
		name string
		cfg  STSConfig
		want map[string]string // form fields; "" means absent
	}{
		{
			name: "configured_role_with_external_id_and_duration",
			cfg:  STSConfig{RoleArn: "arn:aws:iam::210987654321:role/x", ExternalID: "ext-1", Duration: 2 * time.Hour},
			want: map[string]string{"RoleArn": "arn:aws:iam::210987654321:role/x", "ExternalId": "ext-1", "DurationSeconds": "7200", "SourceIdentity": ""},
		},
		{
			name: "no_configured_role_assumes_the_instance_profile_role_for_an_hour",
			cfg:  STSConfig{},
			want: map[string]string{"RoleArn": "arn:aws:iam::123456789012:role/web", "ExternalId": "", "DurationSeconds": "3600", "SourceIdentity": ""},
		},
		{
			name: "source_identity_is_the_instance_id",
			cfg:  STSConfig{RoleArn: "arn:aws:iam::123456789012:role/web", SourceIdentity: true},
			want: map[string]string{"SourceIdentity": "i-0123456789abcdef0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSTS(t, func() time.Time { return now })
			tc.cfg.Now = func() time.Time { return now }
			p := newTestSTS(t, f, tc.cfg)
			c, err := p.Retrieve(context.Background(), target)
			if err != nil {
				t.Fatal(err)
			}
			calls := f.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d AssumeRole calls, want 1", len(calls))
			}
			if got := calls[0].Get("RoleSessionName"); got != target.InstanceID {
				t.Errorf("RoleSessionName = %q, want the instance id", got)
			}
			for k, v := range tc.want {
				if got := calls[0].Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			auth := f.Auth()[0]
			if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDHOSTEXAMPLE/20") || !strings.Contains(auth, "/us-west-2/sts/aws4_request") {
				t.Errorf("Authorization = %q, want SigV4 with the host's key for sts in us-west-2", auth)
			}
			d, _ := time.ParseDuration(calls[0].Get("DurationSeconds") + "s")
			if !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.SecretAccessKey == "" || !strings.HasPrefix(c.SessionToken, "IQoJ") ||
				!c.Expiration.Equal(now.Add(d)) || !c.LastUpdated.Equal(now) {
				t.Errorf("credentials = %#v, expiring %s", c, c.Expiration)
			}
		})
	}
}

func TestSTSErrors(t *testing.T) {
	target := Target{InstanceID: "i-1", Role: "web", RoleArn: "arn:aws:iam::123456789012:role/web"}
	t.Run("access_denied_is_ec2s_assume_role_unauthorized", func(t *testing.T) {
		f := newFakeSTS(t, time.Now)
		f.fault.Store(faultDenied)
		_, err := newTestSTS(t, f, STSConfig{}).Retrieve(context.Background(), target)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("err = %v, want *Error", err)
		}
		want := "EC2 cannot assume the role web.  Please see documentation at http://docs.amazonwebservices.com/IAM/latest/UserGuide/RolesTroubleshooting.html."
		if e.Code != CodeAssumeRoleUnauthorized || e.Message != want {
			t.Errorf("Code, Message = %q, %q", e.Code, e.Message)
		}
		if strings.Contains(e.Message, "123456789012") {
			t.Error("the guest-facing message repeats STS's detail")
		}
	})
	for _, tc := range []struct {
		name  string
		fault int32
	}{{"server_error_is_internal", fault500}, {"throttling_is_internal", faultThrottle}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSTS(t, time.Now)
			f.fault.Store(tc.fault)
			_, err := newTestSTS(t, f, STSConfig{}).Retrieve(context.Background(), target)
			if code, _ := publicError(target, err); err == nil || code != CodeInternalError {
				t.Errorf("err = %v (code %s), want an internal error", err, code)
			}
		})
	}
	t.Run("no_role_arn_anywhere_is_an_error", func(t *testing.T) {
		f := newFakeSTS(t, time.Now)
		if _, err := newTestSTS(t, f, STSConfig{}).Retrieve(context.Background(), Target{InstanceID: "i-1", Role: "web"}); err == nil {
			t.Error("Retrieve without a role ARN succeeded")
		}
		if n := len(f.Calls()); n != 0 {
			t.Errorf("%d calls to STS", n)
		}
	})
}

func TestSTSUsesTheHostsDefaultCredentialChain(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_REGION", "eu-west-1")
	f := newFakeSTS(t, time.Now)
	p, err := NewSTS(context.Background(), STSConfig{Endpoint: f.URL(), RoleArn: "arn:aws:iam::123456789012:role/web"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retrieve(context.Background(), Target{InstanceID: "i-1", Role: "web"}); err != nil {
		t.Fatal(err)
	}
	if auth := f.Auth()[0]; !strings.Contains(auth, "Credential=AKIDFROMENVIRONMENT/") || !strings.Contains(auth, "/eu-west-1/sts/") {
		t.Errorf("Authorization = %q, want the environment's key and region", auth)
	}
}

func TestSessionName(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"instance_id_is_kept", "i-0123456789abcdef0", "i-0123456789abcdef0"},
		{"invalid_characters_become_dashes", "i-1/2 3", "i-1-2-3"},
		{"too_long_is_cut_to_64", strings.Repeat("a", 70), strings.Repeat("a", 64)},
		{"too_short_is_padded", "i", "i-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sessionName(tc.in); got != tc.want {
				t.Errorf("sessionName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// stsRefresher wires a Refresher to an STS provider on the fake endpoint.
func stsRefresher(t testing.TB, clk *fakeClock, f *fakeSTS) (*Refresher, *funcProvider) {
	t.Helper()
	p := newFuncProvider(newTestSTS(t, f, STSConfig{Now: clk.Now}).Retrieve)
	r := NewRefresher(localResolver(p), RefresherOptions{
		Now: clk.Now, Until: clk.Until, Logger: discard(), Jitter: -1,
		Backoff: Backoff{Initial: time.Second, Max: time.Minute},
	})
	run(t, r)
	return r, p
}

func roleTarget(id string) Target {
	return Target{InstanceID: id, AccountID: "123456789012", Role: "web", RoleArn: "arn:aws:iam::123456789012:role/web"}
}

func TestSTSRefresherRotatesBeforeExpiry(t *testing.T) {
	clk := newFakeClock()
	f := newFakeSTS(t, clk.Now)
	r, _ := stsRefresher(t, clk, f)
	r.SetTargets([]Target{roleTarget("i-1")})
	first := waitFor(t, r, "i-1", "web")
	if n := f.SessionCalls("i-1"); n != 1 {
		t.Fatalf("%d AssumeRole calls before any Get, want 1", n)
	}

	f.delay.Store(int64(100 * time.Millisecond)) // the new keys take a while
	clk.Advance(45 * time.Minute)                // 15 minutes before expiry
	eventually(t, "the refresh reaches STS", func() bool { return f.SessionCalls("i-1") == 2 })
	if e, _ := r.Get("i-1", "web"); e != first {
		t.Error("old keys not served while the new ones are being fetched")
	}
	var second Entry
	eventually(t, "new keys are served", func() bool {
		second, _ = r.Get("i-1", "web")
		return second.Credentials.AccessKeyID != first.Credentials.AccessKeyID
	})
	if !second.Credentials.Expiration.After(first.Credentials.Expiration) || second.Version == first.Version || second.Code != CodeSuccess {
		t.Errorf("after rotation: %+v (was %+v)", second, first)
	}
}

// TestSTSFaultsAreServedFromCache injects each upstream failure after the
// first credentials arrived: Get keeps answering at once with the valid
// credentials, and recovery brings new ones.
func TestSTSFaultsAreServedFromCache(t *testing.T) {
	tests := []struct {
		name  string
		fault int32 // -1: connection refused
	}{
		{"server_errors", fault500},
		{"throttling", faultThrottle},
		{"three_second_latency", faultSlow},
		{"connection_refused", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			f := newFakeSTS(t, clk.Now)
			r, p := stsRefresher(t, clk, f)
			tg := roleTarget("i-1")
			r.SetTargets([]Target{tg})
			good := waitFor(t, r, "i-1", "web")

			if tc.fault < 0 {
				f.srv.Close()
			} else {
				f.fault.Store(tc.fault)
			}
			clk.Advance(45 * time.Minute)
			eventually(t, "the refresh starts", func() bool { return p.Calls(tg) == 2 })

			// While the refresh is in flight or failing, every Get is
			// answered from the cache at once.
			deadline := time.Now().Add(200 * time.Millisecond)
			var lat []time.Duration
			for time.Now().Before(deadline) {
				start := time.Now()
				e, ok := r.Get("i-1", "web")
				lat = append(lat, time.Since(start))
				if !ok || e != good {
					t.Fatalf("during the fault Get = %+v, %v; want the valid entry", e, ok)
				}
			}
			slices.Sort(lat)
			t.Logf("Get p99 during the fault: %s (BenchmarkGetWhileSTSSlow measures it)", lat[len(lat)*99/100])
			if tc.fault == faultSlow {
				if p.Calls(tg) != 2 {
					t.Errorf("%d fetches while one was in flight, want 2", p.Calls(tg))
				}
				f.fault.Store(faultNone)
				eventually(t, "the slow answer arrives", func() bool {
					e, _ := r.Get("i-1", "web")
					return e.Credentials.AccessKeyID != good.Credentials.AccessKeyID
				})
				return
			}
			scheduled(t, r, "i-1", "web")
			if tc.fault < 0 {
				// Nothing answers any more: the credentials are served
				// until they expire, then the entry says why.
				clk.Advance(good.Credentials.Expiration.Sub(clk.Now()))
				eventually(t, "the expired entry", func() bool { e, _ := r.Get("i-1", "web"); return e.Code != CodeSuccess })
				e, _ := r.Get("i-1", "web")
				if e.Credentials != (Credentials{}) || e.Message == "" {
					t.Errorf("after expiry Get = %+v", e)
				}
				return
			}
			f.fault.Store(faultNone)
			clk.Advance(time.Minute) // past the longest backoff
			eventually(t, "recovery", func() bool {
				e, _ := r.Get("i-1", "web")
				return e.Credentials.AccessKeyID != good.Credentials.AccessKeyID && e.Code == CodeSuccess
			})
		})
	}
}

// TestSTSOneCallPerRefreshUnderLoad hammers Get from 1,000 goroutines while
// targets are first fetched and then refreshed through a slow STS: each
// target's session sees exactly one AssumeRole per fetch.
func TestSTSOneCallPerRefreshUnderLoad(t *testing.T) {
	clk := newFakeClock()
	f := newFakeSTS(t, clk.Now)
	f.delay.Store(int64(50 * time.Millisecond))
	r, _ := stsRefresher(t, clk, f)
	var ts []Target
	for i := range 20 {
		ts = append(ts, roleTarget(fmt.Sprintf("i-%02d", i)))
	}

	stop := make(chan struct{})
	var served atomic.Int64
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			tg := ts[i%len(ts)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, ok := r.Get(tg.InstanceID, tg.Role); ok {
					served.Add(1)
				}
				runtime.Gosched()
			}
		})
	}
	r.SetTargets(ts)
	first := map[string]string{}
	for _, tg := range ts {
		first[tg.InstanceID] = waitFor(t, r, tg.InstanceID, tg.Role).Credentials.AccessKeyID
	}
	clk.Advance(45 * time.Minute)
	eventually(t, "every target rotated", func() bool {
		for _, tg := range ts {
			if e, _ := r.Get(tg.InstanceID, tg.Role); e.Credentials.AccessKeyID == first[tg.InstanceID] {
				return false
			}
		}
		return true
	})
	time.Sleep(50 * time.Millisecond) // the callers keep asking
	close(stop)
	wg.Wait()

	if served.Load() < 1000 {
		t.Errorf("only %d Gets answered", served.Load())
	}
	for _, tg := range ts {
		if n := f.SessionCalls(tg.InstanceID); n != 2 {
			t.Errorf("%s: %d AssumeRole calls for one fetch and one refresh, want 2", tg.InstanceID, n)
		}
	}
}

// slowSTS returns a Refresher whose targets all have credentials and are
// all being refreshed through an STS that takes 3 seconds to answer.
func slowSTS(tb testing.TB) (*Refresher, []Target) {
	tb.Helper()
	clk := newFakeClock()
	f := newFakeSTS(tb, clk.Now)
	r, _ := stsRefresher(tb, clk, f)
	var ts []Target
	for i := range 50 {
		ts = append(ts, roleTarget(fmt.Sprintf("i-%02d", i)))
	}
	r.SetTargets(ts)
	for _, tg := range ts {
		waitFor(tb, r, tg.InstanceID, tg.Role)
	}
	f.fault.Store(faultSlow)
	clk.Advance(45 * time.Minute)
	eventually(tb, "every refresh is waiting on STS", func() bool { return len(f.Calls()) == 2*len(ts) })
	return r, ts
}

// BenchmarkGetWhileSTSSlow reports Get's p99 latency (p99-ns) with 1,000
// concurrent callers while every refresh waits on a 3-second STS.
func BenchmarkGetWhileSTSSlow(b *testing.B) {
	r, ts := slowSTS(b)
	b.ResetTimer()
	p99 := getP99(r, ts, 1000, max(1, b.N/1000))
	b.StopTimer()
	b.ReportMetric(float64(p99.Nanoseconds()), "p99-ns")
}

// getP99 runs callers goroutines doing perCaller Gets each over targets and
// returns the 99th percentile latency.
func getP99(r *Refresher, ts []Target, callers, perCaller int) time.Duration {
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for c := range callers {
		wg.Go(func() {
			mine := make([]time.Duration, 0, perCaller)
			<-startGate
			for i := range perCaller {
				tg := ts[(c+i)%len(ts)]
				start := time.Now()
				r.Get(tg.InstanceID, tg.Role)
				mine = append(mine, time.Since(start))
			}
			lat[c] = mine
		})
	}
	close(startGate)
	wg.Wait()
	all := make([]time.Duration, 0, callers*perCaller)
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	return all[len(all)*99/100]
}
