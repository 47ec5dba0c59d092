package credentials

import "testing"

func TestRefreshFetchesNewCredentialsWithoutTheClockMoving(t *testing.T) {
	clk := newFakeClock()
	p := newFuncProvider(NewLocal(LocalOptions{Now: clk.Now}).Retrieve)
	r := NewRefresher(func(string) Provider { return p }, RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard(), Jitter: -1})
	run(t, r)
	web := Target{InstanceID: "i-1", AccountID: "123456789012", Role: "web"}
	r.SetTargets([]Target{web})
	first := waitFor(t, r, "i-1", "web")

	if !r.Refresh("i-1", "web") {
		t.Fatal("Refresh of a scheduled target reported false")
	}
	eventually(t, "the refreshed credentials are served", func() bool {
		e, ok := r.Get("i-1", "web")
		return ok && e.Code == CodeSuccess && e.Credentials.AccessKeyID != first.Credentials.AccessKeyID
	})
	if n := p.Calls(web); n != 2 {
		t.Errorf("provider called %d times, want 2", n)
	}
	if r.Refresh("i-2", "web") {
		t.Error("Refresh of an unknown target reported true")
	}
}

func TestIdleOnlyOnceDueRefreshesAreDone(t *testing.T) {
	clk := newFakeClock()
	p := newFuncProvider(NewLocal(LocalOptions{Now: clk.Now}).Retrieve)
	r := NewRefresher(func(string) Provider { return p }, RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard(), Jitter: -1})
	run(t, r)
	if !r.Idle() {
		t.Fatal("a refresher with no targets is not idle")
	}
	r.SetTargets([]Target{{InstanceID: "i-1", AccountID: "123456789012", Role: "web"}})
	if r.Idle() {
		t.Fatal("idle with a target queued for its first fetch")
	}
	first := waitFor(t, r, "i-1", "web")
	eventually(t, "idle after the first fetch", r.Idle)
	clk.Advance(DefaultLocalLifetime - MinRefreshBefore)
	eventually(t, "idle after the refresh the clock made due", r.Idle)
	e, _ := r.Get("i-1", "web")
	if e.Credentials.AccessKeyID == first.Credentials.AccessKeyID {
		t.Fatal("idle, but the due refresh has not replaced the credentials")
	}
}
