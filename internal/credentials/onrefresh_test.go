package credentials

import (
	"context"
	"errors"
	"strconv"
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

// UpdateTargets changes only the instances it names: the others keep their
// credentials without a refetch, a named instance with no targets stops
// being served at once, and a new role is fetched.
func TestRefresherUpdateTargetsTouchesOnlyNamedInstances(t *testing.T) {
	clk := newFakeClock()
	p := newFuncProvider(NewLocal(LocalOptions{Now: clk.Now}).Retrieve)
	r := NewRefresher(localResolver(p), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard()})
	run(t, r)
	target := func(id, role string) Target {
		return Target{InstanceID: id, AccountID: "123456789012", Role: role, RoleArn: "arn:aws:iam::123456789012:role/" + role}
	}
	var all []Target
	for i := range 50 {
		all = append(all, target("i-"+strconv.Itoa(i), "web"))
	}
	r.SetTargets(all)
	for i := range 50 {
		waitFor(t, r, "i-"+strconv.Itoa(i), "web")
	}
	before := waitFor(t, r, "i-7", "web")

	r.UpdateTargets(map[string][]Target{
		"i-3":  nil,                      // disassociated
		"i-4":  {target("i-4", "batch")}, // role changed
		"i-99": {target("i-99", "web")},  // launched
	})
	if _, ok := r.Get("i-3", "web"); ok {
		t.Error("a removed instance is still served")
	}
	if _, ok := r.Get("i-4", "web"); ok {
		t.Error("the old role of a changed instance is still served")
	}
	waitFor(t, r, "i-4", "batch")
	waitFor(t, r, "i-99", "web")
	if after, _ := r.Get("i-7", "web"); after.Version != before.Version || p.Calls(target("i-7", "web")) != 1 {
		t.Errorf("an instance the update did not name was refetched (calls %d)", p.Calls(target("i-7", "web")))
	}
}
