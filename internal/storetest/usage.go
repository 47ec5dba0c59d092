package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// usageRecords: per-node usage records round-trip, scan by instance and
// fleet-wide, and DeleteUsage removes every node's record of one instance
// and nothing else.
func (s suite) usageRecords(t *testing.T) {
	st := s.store(t)
	at := time.Date(2026, 11, 30, 10, 15, 0, 0, time.UTC)
	rec := func(id, node string, calls int64) *imds.UsageRecord {
		return &imds.UsageRecord{
			InstanceID: id, Node: node, Since: at,
			Hours: []imds.UsageHour{{Hour: at.Unix() / 3600, Calls: calls,
				Agents: []imds.UsageCount{{Value: "legacy-app/1.0", N: calls}},
				Paths:  []imds.UsageCount{{Value: "/latest/meta-data/", N: calls}}}},
			Last: imds.UsageCall{At: at, Path: "/latest/meta-data/", UserAgent: "legacy-app/1.0"},
		}
	}
	mustUpdate(t, st, func(tx imds.Tx) error {
		for _, r := range []*imds.UsageRecord{rec("i-a", "n1", 3), rec("i-a", "n2", 4), rec("i-b", "n1", 5)} {
			if err := imds.PutUsage(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	sum := func(id string) (n int64, nodes int) {
		t.Helper()
		err := st.View(t.Context(), func(tx imds.Tx) error {
			return imds.ScanUsage(tx, id, func(r *imds.UsageRecord) error {
				nodes++
				for _, h := range r.Hours {
					n += h.Calls
				}
				return nil
			})
		})
		if err != nil {
			t.Fatalf("ScanUsage(%q): %v", id, err)
		}
		return n, nodes
	}
	if n, nodes := sum("i-a"); n != 7 || nodes != 2 {
		t.Fatalf("i-a: %d calls from %d nodes, want 7 from 2", n, nodes)
	}
	if n, nodes := sum(""); n != 12 || nodes != 3 {
		t.Fatalf("fleet: %d calls from %d records, want 12 from 3", n, nodes)
	}
	err := st.View(t.Context(), func(tx imds.Tx) error {
		r, err := imds.GetUsage(tx, "i-a", "n2")
		if err != nil {
			return err
		}
		if r.Last.UserAgent != "legacy-app/1.0" || !r.Last.At.Equal(at) || len(r.Hours) != 1 || r.Hours[0].Agents[0].N != 4 {
			return fmt.Errorf("GetUsage round trip = %+v", r)
		}
		if _, err := imds.GetUsage(tx, "i-a", "n3"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("GetUsage(missing) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.DeleteUsage(tx, "i-a") })
	if n, nodes := sum("i-a"); n != 0 || nodes != 0 {
		t.Fatalf("after DeleteUsage: i-a has %d calls from %d nodes", n, nodes)
	}
	if n, _ := sum("i-b"); n != 5 {
		t.Fatalf("DeleteUsage(i-a) touched i-b: %d calls, want 5", n)
	}
	bad := rec("i-c", "n/1", 1)
	if err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutUsage(tx, bad) }); !errors.Is(err, imds.ErrInvalid) {
		t.Fatalf("PutUsage(node with /) = %v, want ErrInvalid", err)
	}
}

// changeRecords: the audit trail lists oldest first and prunes by age.
func (s suite) changeRecords(t *testing.T) {
	st := s.store(t)
	base := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	mustUpdate(t, st, func(tx imds.Tx) error {
		for i := 2; i >= 0; i-- { // written newest first: the key orders them
			r := imds.ChangeRecord{At: base.Add(time.Duration(i) * time.Hour), Principal: "AKIAEXAMPLE", Action: fmt.Sprintf("a%d", i), InstanceIDs: []string{"i-a"}}
			if err := imds.PutChange(tx, r, "n1"); err != nil {
				return err
			}
		}
		return nil
	})
	list := func() string {
		t.Helper()
		var got []string
		if err := st.View(t.Context(), func(tx imds.Tx) error {
			return imds.ListChanges(tx, func(r imds.ChangeRecord) error { got = append(got, r.Action); return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	if got := list(); got != "[a0 a1 a2]" {
		t.Fatalf("ListChanges = %s, want [a0 a1 a2]", got)
	}
	var n int
	mustUpdate(t, st, func(tx imds.Tx) error {
		var err error
		n, err = imds.DeleteChangesBefore(tx, base.Add(90*time.Minute))
		return err
	})
	if got := list(); n != 2 || got != "[a2]" {
		t.Fatalf("after pruning: removed %d, left %s; want 2 and [a2]", n, got)
	}
	if err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutChange(tx, imds.ChangeRecord{Action: "x"}, "n1") }); !errors.Is(err, imds.ErrInvalid) {
		t.Fatalf("PutChange(no time) = %v, want ErrInvalid", err)
	}
}
