package dataplane

import (
	"io"
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
