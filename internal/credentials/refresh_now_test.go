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
