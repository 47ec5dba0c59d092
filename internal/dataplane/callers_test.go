package dataplane

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestCallerRanges(t *testing.T) {
	demo := testInstance("i-0000000000000d001", "192.0.2.10", "optional")
	other := testInstance("i-0000000000000d002", "198.51.100.7", "optional")
	p := newPlane(t, demo, other)
	p.h = New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{
		Now:     func() time.Time { return testNow },
		Callers: []CallerRange{{Prefix: netip.MustParsePrefix("198.51.100.0/24"), InstanceID: demo.InstanceID}},
	})
	idAt := func(from string) (int, string) {
		t.Helper()
		resp := p.do(req{path: "/latest/meta-data/instance-id", from: from})
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name, from, want string
		status           int
	}{
		{"caller_in_range_gets_the_named_instance", "198.51.100.99", demo.InstanceID, 200},
		{"exact_address_wins_over_the_range", "198.51.100.7", other.InstanceID, 200},
		{"instance_address_still_served", "192.0.2.10", demo.InstanceID, 200},
		{"caller_outside_every_range_is_unknown", "203.0.113.5", "", 404},
		{"ipv4_mapped_caller_matches_the_range", "::ffff:198.51.100.99", demo.InstanceID, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := idAt(c.from)
			if status != c.status || (c.status == 200 && body != c.want) {
				t.Fatalf("from %s: %d %q, want %d %q", c.from, status, body, c.status, c.want)
			}
		})
	}
}

func TestCallerRangeNamingAnAbsentInstanceServesNothing(t *testing.T) {
	p := newPlane(t, testInstance("i-0000000000000d003", "192.0.2.10", "optional"))
	p.h = New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{
		Callers: []CallerRange{{Prefix: netip.MustParsePrefix("0.0.0.0/0"), InstanceID: "i-0000000000000dead"}},
	})
	if resp := p.do(req{path: "/latest/meta-data/instance-id", from: "203.0.113.5"}); resp.StatusCode != 404 {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
}

// The Guard finds callers as the handler does: a caller in a range is shed
// at accept once the instance it is served as is over its rate.
func TestGuardCountsRangeCallersAsTheirInstance(t *testing.T) {
	p := newPlane(t, testInstance(idA, "192.0.2.10", "optional"))
	obs := &countingObserver{}
	h := New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{
		Now: func() time.Time { return testNow }, Limits: Limits{Rate: 10, Burst: 1}, Observer: obs,
		Callers: []CallerRange{{Prefix: netip.MustParsePrefix("127.0.0.0/8"), InstanceID: idA}},
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(l, p.f.Snapshot, GuardOptions{Handler: h})
	srv := NewHTTPServer(h)
	go srv.Serve(g)
	defer srv.Close()
	var statuses []int
	for range 3 {
		resp, err := http.Get("http://" + l.Addr().String() + "/latest/meta-data/instance-id")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != 200 || statuses[1] != 429 || statuses[2] != 429 {
		t.Fatalf("statuses %v, want 200 429 429", statuses)
	}
	if g.Shed.Load() == 0 {
		t.Fatal("the Guard shed nothing: it did not see the range caller as the instance")
	}
}
