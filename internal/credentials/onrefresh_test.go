package credentials

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// OnRefresh reports every fetch's outcome (the daemon turns it into
// refresh and expiry metrics).
func TestRefresherReportsEachOutcome(t *testing.T) {
	clk := newFakeClock()
	local := NewLocal(LocalOptions{Now: clk.Now})
	var fail sync.Mutex
	failing := false
	p := newFuncProvider(func(ctx context.Context, tg Target) (Credentials, error) {
		fail.Lock()
		defer fail.Unlock()
		if failing {
			return Credentials{}, errors.New("sts down")
		}
		return local.Retrieve(ctx, tg)
	})
	type outcome struct {
		role    string
		ok      bool
		expires time.Time
	}
	var mu sync.Mutex
	var got []outcome
	r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard(), Jitter: -1,
		OnRefresh: func(tg Target, ok bool, exp time.Time) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, outcome{tg.Role, ok, exp})
		}})
	run(t, r)
	web := Target{InstanceID: "i-1", AccountID: "123456789012", Role: "web", RoleArn: "arn:aws:iam::123456789012:role/web"}
	r.SetTargets([]Target{web})
	e := waitFor(t, r, "i-1", "web")
	count := func(ok bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range got {
			if o.role == "web" && o.ok == ok {
				n++
			}
		}
		return n
	}
	eventually(t, "a success was reported", func() bool { return count(true) == 1 })
	mu.Lock()
	if !got[0].expires.Equal(e.Credentials.Expiration) {
		t.Errorf("reported expiry %v, want %v", got[0].expires, e.Credentials.Expiration)
	}
	mu.Unlock()

	fail.Lock()
	failing = true
	fail.Unlock()
	clk.Advance(5*time.Hour + 59*time.Minute) // past the refresh point, before expiry
	eventually(t, "a failure was reported", func() bool { return count(false) >= 1 })
	mu.Lock()
	defer mu.Unlock()
	for _, o := range got {
		if !o.ok && !o.expires.Equal(e.Credentials.Expiration) {
			t.Errorf("failure reported expiry %v, want the still-served %v", o.expires, e.Credentials.Expiration)
		}
	}
}
