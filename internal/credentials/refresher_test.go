package credentials

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func localResolver(l Provider) Resolver {
	return func(string) Provider { return l }
}

func TestRefresherFetchesOnSetTargetsBeforeAnyRequest(t *testing.T) {
	clk := newFakeClock()
	p := newFuncProvider(NewLocal(LocalOptions{Now: clk.Now}).Retrieve)
	r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard()})
	run(t, r)
	web := Target{InstanceID: "i-1", AccountID: "123456789012", Role: "web", RoleArn: "arn:aws:iam::123456789012:role/web"}
	r.SetTargets([]Target{web})

	eventually(t, "the role was fetched without a Get", func() bool { return p.Calls(web) == 1 })
	e := waitFor(t, r, "i-1", "web")
	if e.Code != CodeSuccess || e.Credentials.AccessKeyID == "" || e.Version == 0 {
		t.Errorf("role entry = %+v, want Success with credentials and a version", e)
	}
	if _, ok := r.Get("i-2", "web"); ok {
		t.Error("Get of an unknown instance reported ok")
	}
	if _, ok := r.Get("i-1", "other"); ok {
		t.Error("Get of a role the instance does not have reported ok")
	}
}

func TestRefresherRotatesBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		local := NewLocal(LocalOptions{Now: clk.Now})
		var gate atomic.Pointer[chan struct{}]
		entered := make(chan struct{}, 10)
		p := newFuncProvider(func(ctx context.Context, tg Target) (Credentials, error) {
			if g := gate.Load(); g != nil {
				entered <- struct{}{}
				<-*g
			}
			return local.Retrieve(ctx, tg)
		})
		r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard(), Jitter: -1})
		run(t, r)
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web"}})
		first := waitFor(t, r, "i-1", "web")

		// Six-hour credentials refresh 90 minutes before expiry (a quarter
		// of their life), not 15: time to ride out an upstream outage.
		clk.Advance(4*time.Hour + 29*time.Minute)
		synctest.Wait() // the refresher did all it will do at this time
		if e, _ := r.Get("i-1", "web"); e.Credentials.AccessKeyID != first.Credentials.AccessKeyID {
			t.Fatal("credentials rotated more than 90 minutes before expiry")
		}

		g := make(chan struct{})
		gate.Store(&g)
		clk.Advance(time.Minute)
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("no refresh started 90 minutes before expiry")
		}
		if e, _ := r.Get("i-1", "web"); e != first {
			t.Errorf("while the refresh is in flight Get = %v, want the old entry unchanged", e.Credentials)
		}
		gate.Store(nil)
		close(g)

		var second Entry
		eventually(t, "new credentials are served", func() bool {
			second, _ = r.Get("i-1", "web")
			return second.Credentials.AccessKeyID != first.Credentials.AccessKeyID
		})
		if second.Version == first.Version {
			t.Error("Version did not change with the credentials")
		}
		if want := first.Credentials.Expiration.Add(4*time.Hour + 30*time.Minute); !second.Credentials.Expiration.Equal(want) {
			t.Errorf("new Expiration = %s, want %s", second.Credentials.Expiration, want)
		}
		if left := first.Credentials.Expiration.Sub(clk.Now()); left < 15*time.Minute {
			t.Errorf("old credentials had only %s left at rotation, want at least 15m", left)
		}
		if second.Code != CodeSuccess {
			t.Errorf("Code = %q", second.Code)
		}
	})
}

func TestRefresherMarginFollowsLifetime(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		wantLeft time.Duration // time left on the old credentials at refresh
	}{
		{"one_hour_refreshes_15m_before", time.Hour, 15 * time.Minute},
		{"six_hours_refresh_90m_before", 6 * time.Hour, 90 * time.Minute},
		{"fifteen_minutes_refresh_at_half_life", 15 * time.Minute, 7*time.Minute + 30*time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := newFakeClock()
				p := newFuncProvider(NewLocal(LocalOptions{Now: clk.Now, Lifetime: tc.lifetime}).Retrieve)
				r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard(), Jitter: -1})
				run(t, r)
				tg := Target{InstanceID: "i-1", Role: "web"}
				r.SetTargets([]Target{tg})
				waitFor(t, r, "i-1", "web")
				clk.Advance(tc.lifetime - tc.wantLeft - time.Second)
				synctest.Wait() // the refresher did all it will do at this time
				if n := p.Calls(tg); n != 1 {
					t.Fatalf("refreshed with more than %s left", tc.wantLeft)
				}
				clk.Advance(time.Second)
				eventually(t, "the refresh", func() bool { return p.Calls(tg) == 2 })
			})
		})
	}
}

func TestRefresherJitterOnlyRefreshesEarlier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		p := newFuncProvider(NewLocal(LocalOptions{Now: clk.Now, Lifetime: time.Hour}).Retrieve)
		r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard(), Jitter: 5 * time.Minute})
		run(t, r)
		var ts []Target
		for i := range 50 {
			ts = append(ts, Target{InstanceID: fmt.Sprintf("i-%d", i), Role: "web"})
		}
		r.SetTargets(ts)
		for _, tg := range ts {
			waitFor(t, r, tg.InstanceID, tg.Role)
		}
		clk.Advance(40*time.Minute - time.Second) // before the earliest jittered point
		synctest.Wait()                           // the refresher did all it will do at this time
		for _, tg := range ts {
			if p.Calls(tg) != 1 {
				t.Fatalf("%s refreshed more than 20 minutes before expiry", tg)
			}
		}
		clk.Advance(5*time.Minute + time.Second) // the latest point: 15 minutes left
		eventually(t, "every target refreshed by 15 minutes before expiry", func() bool {
			for _, tg := range ts {
				if p.Calls(tg) != 2 {
					return false
				}
			}
			return true
		})
	})
}

var errDenied = &Error{Code: CodeAssumeRoleUnauthorized, Message: "EC2 cannot assume the role web.", Err: errors.New("AccessDenied: not authorized")}

func TestRefresherFailures(t *testing.T) {
	t.Run("first_fetch_failing_gives_a_code_then_recovers_with_backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			clk := newFakeClock()
			local := NewLocal(LocalOptions{Now: clk.Now})
			var failing atomic.Bool
			failing.Store(true)
			p := newFuncProvider(func(ctx context.Context, tg Target) (Credentials, error) {
				if failing.Load() {
					return Credentials{}, errDenied
				}
				return local.Retrieve(ctx, tg)
			})
			r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard(),
				Backoff: Backoff{Initial: time.Second, Max: 8 * time.Second}})
			run(t, r)
			tg := Target{InstanceID: "i-1", Role: "web"}
			r.SetTargets([]Target{tg})
			var e Entry
			eventually(t, "a failed entry", func() bool { var ok bool; e, ok = r.Get("i-1", "web"); return ok })
			scheduled(t, r, "i-1", "web")
			if e.Code != CodeAssumeRoleUnauthorized || e.Message != errDenied.Message || e.Credentials != (Credentials{}) {
				t.Errorf("entry = %+v, want the provider's code and message and no credentials", e)
			}
			// Backoff doubles: 1, 2, 4, 8, 8 s, each jittered down by up to half.
			for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
				n := p.Calls(tg)
				clk.Advance(d/2 - time.Millisecond)
				synctest.Wait() // the refresher did all it will do at this time
				if p.Calls(tg) != n {
					t.Fatalf("retry %d came sooner than %s", i+1, d/2)
				}
				clk.Advance(d/2 + time.Millisecond)
				eventually(t, fmt.Sprintf("retry %d within %s", i+1, d), func() bool { return p.Calls(tg) == n+1 })
				scheduled(t, r, "i-1", "web")
			}
			if e2, _ := r.Get("i-1", "web"); e2.Version != e.Version {
				t.Error("the same failure changed the entry's Version")
			}
			failing.Store(false)
			clk.Advance(8 * time.Second)
			e = waitFor(t, r, "i-1", "web")
			if e.Code != CodeSuccess {
				t.Errorf("after recovery Code = %q", e.Code)
			}
		})
	})

	t.Run("valid_credentials_are_served_through_an_outage_then_expire_with_a_code", func(t *testing.T) {
		clk := newFakeClock()
		local := NewLocal(LocalOptions{Now: clk.Now, Lifetime: time.Hour})
		var failing atomic.Bool
		p := newFuncProvider(func(ctx context.Context, tg Target) (Credentials, error) {
			if failing.Load() {
				return Credentials{}, errDenied
			}
			return local.Retrieve(ctx, tg)
		})
		r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard(), Jitter: -1,
			Backoff: Backoff{Initial: time.Minute, Max: 4 * time.Minute}})
		run(t, r)
		tg := Target{InstanceID: "i-1", Role: "web"}
		r.SetTargets([]Target{tg})
		good := waitFor(t, r, "i-1", "web")
		failing.Store(true)
		clk.Advance(45 * time.Minute) // the refresh point of 1-hour credentials
		eventually(t, "the refresh attempt", func() bool { return p.Calls(tg) == 2 })
		scheduled(t, r, "i-1", "web")
		for i := range 3 { // backoff 1, 2, 4 minutes: each step sees a retry
			clk.Advance(4 * time.Minute)
			eventually(t, fmt.Sprintf("retry %d", i+1), func() bool { return p.Calls(tg) == 3+i })
			scheduled(t, r, "i-1", "web")
			if e, _ := r.Get("i-1", "web"); e != good {
				t.Fatalf("%s before expiry Get = %+v, want the still-valid entry", good.Credentials.Expiration.Sub(clk.Now()), e)
			}
		}
		clk.Advance(good.Credentials.Expiration.Sub(clk.Now()) - time.Second)
		if e, _ := r.Get("i-1", "web"); e != good {
			t.Fatalf("one second before expiry Get = %+v, want the still-valid entry", e)
		}
		clk.Advance(time.Second)
		e, ok := r.Get("i-1", "web")
		if !ok || e.Code != CodeAssumeRoleUnauthorized || e.Credentials != (Credentials{}) || e.Version == good.Version {
			t.Errorf("after expiry Get = %+v, %v; want the failure code, no credentials, a new version", e, ok)
		}
	})

	t.Run("no_provider_for_a_role_is_a_code", func(t *testing.T) {
		r := NewRefresher(func(string) Provider { return nil }, RefresherOptions{Logger: discard()})
		run(t, r)
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web"}})
		var e Entry
		eventually(t, "an entry", func() bool { var ok bool; e, ok = r.Get("i-1", "web"); return ok })
		if e.Code != CodeNoProvider || e.Message == "" {
			t.Errorf("entry = %+v", e)
		}
	})

	t.Run("plain_errors_do_not_reach_the_message", func(t *testing.T) {
		secret := "arn:aws:iam::999999999999:role/internal-detail"
		p := newFuncProvider(func(context.Context, Target) (Credentials, error) {
			return Credentials{}, errors.New("upstream said " + secret)
		})
		r := NewRefresher(localResolver(p), RefresherOptions{Logger: discard()})
		run(t, r)
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web"}})
		var e Entry
		eventually(t, "an entry", func() bool { var ok bool; e, ok = r.Get("i-1", "web"); return ok })
		if e.Code != CodeInternalError || e.Message == "" || contains(e.Message, secret) {
			t.Errorf("entry = %+v, want a fixed InternalError message", e)
		}
	})

	t.Run("expired_or_empty_credentials_from_a_provider_are_failures", func(t *testing.T) {
		clk := newFakeClock()
		p := newFuncProvider(func(context.Context, Target) (Credentials, error) {
			return Credentials{AccessKeyID: "ASIA", SecretAccessKey: "s", Expiration: clk.Now()}, nil
		})
		r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard()})
		run(t, r)
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web"}})
		var e Entry
		eventually(t, "an entry", func() bool { var ok bool; e, ok = r.Get("i-1", "web"); return ok })
		if e.Code != CodeInternalError {
			t.Errorf("entry = %+v", e)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestRefresherSetTargets(t *testing.T) {
	t.Run("removed_target_stops_being_served_at_once", func(t *testing.T) {
		r := NewRefresher(localResolver(NewLocal(LocalOptions{})), RefresherOptions{Logger: discard()})
		run(t, r)
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web"}, {InstanceID: "i-1"}, {InstanceID: "i-2", Role: "web"}})
		waitFor(t, r, "i-1", "web")
		waitFor(t, r, "i-1", "")
		waitFor(t, r, "i-2", "web")
		r.SetTargets([]Target{{InstanceID: "i-1"}, {InstanceID: "i-2", Role: "web"}})
		if _, ok := r.Get("i-1", "web"); ok {
			t.Error("disassociated role still served")
		}
		if _, ok := r.Get("i-1", ""); !ok {
			t.Error("identity role of the same instance no longer served")
		}
		if err := r.Wait(context.Background(), "i-1", "web"); !errors.Is(err, ErrUnknownTarget) {
			t.Errorf("Wait on a removed target = %v, want ErrUnknownTarget", err)
		}
	})

	t.Run("unchanged_targets_are_not_fetched_again", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newFuncProvider(NewLocal(LocalOptions{}).Retrieve)
			r := NewRefresher(localResolver(p), RefresherOptions{Logger: discard()})
			run(t, r)
			tg := Target{InstanceID: "i-1", Role: "web", RoleArn: "arn:aws:iam::123456789012:role/web"}
			r.SetTargets([]Target{tg, tg})
			e := waitFor(t, r, "i-1", "web")
			for range 3 {
				r.SetTargets([]Target{tg})
			}
			synctest.Wait() // the refresher did all it will do at this time
			if n := p.Calls(tg); n != 1 {
				t.Errorf("%d fetches, want 1", n)
			}
			if e2, _ := r.Get("i-1", "web"); e2 != e {
				t.Error("entry changed although the target did not")
			}
		})
	})

	t.Run("changed_role_arn_drops_old_credentials_and_fetches_new", func(t *testing.T) {
		release := make(chan struct{})
		local := NewLocal(LocalOptions{})
		p := newFuncProvider(func(ctx context.Context, tg Target) (Credentials, error) {
			if tg.RoleArn == "arn:new" {
				<-release
			}
			return local.Retrieve(ctx, tg)
		})
		r := NewRefresher(localResolver(p), RefresherOptions{Logger: discard()})
		run(t, r)
		defer close(release)
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web", RoleArn: "arn:old"}})
		waitFor(t, r, "i-1", "web")
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web", RoleArn: "arn:new"}})
		if _, ok := r.Get("i-1", "web"); ok {
			t.Error("credentials for the old role ARN still served")
		}
		eventually(t, "the new ARN is fetched", func() bool { return p.Calls(Target{InstanceID: "i-1", Role: "web", RoleArn: "arn:new"}) == 1 })
	})

	t.Run("wait_follows_a_replaced_target", func(t *testing.T) {
		r := NewRefresher(localResolver(NewLocal(LocalOptions{})), RefresherOptions{Logger: discard()})
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web", RoleArn: "a"}})
		done := make(chan error, 1)
		go func() { done <- r.Wait(context.Background(), "i-1", "web") }()
		time.Sleep(10 * time.Millisecond)
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web", RoleArn: "b"}})
		run(t, r)
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return")
		}
	})

	t.Run("wait_reports_the_code_when_the_context_ends", func(t *testing.T) {
		r := NewRefresher(func(string) Provider { return nil }, RefresherOptions{Logger: discard()})
		run(t, r)
		r.SetTargets([]Target{{InstanceID: "i-1", Role: "web"}})
		eventually(t, "the failed first fetch", func() bool { _, ok := r.Get("i-1", "web"); return ok })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := r.Wait(ctx, "i-1", "web")
		if !errors.Is(err, context.DeadlineExceeded) || !contains(err.Error(), CodeNoProvider) {
			t.Errorf("Wait = %v", err)
		}
	})
}

func TestRefresherRunTwiceIsAnError(t *testing.T) {
	r := NewRefresher(localResolver(NewLocal(LocalOptions{})), RefresherOptions{})
	run(t, r)
	eventually(t, "the first Run started", r.running.Load)
	// A cancelled context: were this the first Run after all, it would
	// return nil at once instead of blocking the test.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err == nil {
		t.Error("second Run returned nil")
	}
}
