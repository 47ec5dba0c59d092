package dataplane

import (
	"fmt"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestSnapshotWithReplacesOnlyWhatChanged(t *testing.T) {
	var ins []*imds.Instance
	for i := range 1000 {
		ins = append(ins, testInstance(fmt.Sprintf("i-0%016x", i+1), fmt.Sprintf("198.51.%d.%d", 100+i/250, i%250+1), imds.Optional))
	}
	s := buildSnapshot(1, ins, testNow)
	if s.Len() != 1000 || s.Changed != nil {
		t.Fatalf("full build: %d instances, Changed %v", s.Len(), s.Changed)
	}
	moved := ins[10].Clone()
	moved.NetworkInterfaces[0].PrivateIPv4s = []string{"203.0.113.5"}
	gone := ins[20].InstanceID
	added := testInstance("i-0ffffffffffffffff", "203.0.113.6", imds.Optional)
	n := s.with(2, map[string]*imds.Instance{moved.InstanceID: moved, gone: nil, added.InstanceID: added}, testNow)

	if n.Len() != 1000 || n.Revision != 2 || len(n.Changed) != 3 {
		t.Fatalf("after: %d instances, revision %d, changed %v", n.Len(), n.Revision, n.Changed)
	}
	if g := n.Guest(netip.MustParseAddr("203.0.113.5")); g == nil || g.Instance.InstanceID != moved.InstanceID {
		t.Fatal("the moved instance is not found at its new address")
	}
	if n.Guest(netip.MustParseAddr(ins[10].NetworkInterfaces[0].PrivateIPv4s[0])) != nil {
		t.Fatal("the moved instance's old address still answers")
	}
	if n.GuestByID(gone) != nil || n.Guest(netip.MustParseAddr(ins[20].NetworkInterfaces[0].PrivateIPv4s[0])) != nil {
		t.Fatal("the removed instance is still served")
	}
	if n.Guest(netip.MustParseAddr("203.0.113.6")) == nil {
		t.Fatal("the added instance is not served")
	}
	// Unchanged guests are shared, and the old snapshot is untouched.
	if n.GuestByID(ins[500].InstanceID) != s.GuestByID(ins[500].InstanceID) {
		t.Fatal("an unchanged guest was rebuilt")
	}
	if s.GuestByID(gone) == nil || s.Guest(netip.MustParseAddr("203.0.113.5")) != nil || s.Len() != 1000 {
		t.Fatal("the old snapshot was modified")
	}
	shared := 0
	for i := range n.byID {
		if fmt.Sprintf("%p", n.byID[i]) == fmt.Sprintf("%p", s.byID[i]) {
			shared++
		}
	}
	if shared < snapShards-3 {
		t.Fatalf("only %d of %d id shards shared: a change copied more than it touched", shared, snapShards)
	}
}

func TestGuestsShareRepeatedStrings(t *testing.T) {
	a := testInstance("i-0aaaaaaaaaaaaaaa1", "192.0.2.10", imds.Optional)
	b := testInstance("i-0bbbbbbbbbbbbbbb2", "192.0.2.11", imds.Optional)
	s := buildSnapshot(1, []*imds.Instance{a, b}, testNow)
	ga, gb := s.GuestByID(a.InstanceID).Instance, s.GuestByID(b.InstanceID).Instance
	if unsafe.StringData(ga.ImageID) != unsafe.StringData(gb.ImageID) ||
		unsafe.StringData(ga.IAMInstanceProfile.Arn) != unsafe.StringData(gb.IAMInstanceProfile.Arn) {
		t.Fatal("two instances with the same image and profile hold separate copies of the strings")
	}
	if ga.ImageID != "ami-0123456789abcdef0" || ga.InstanceID == gb.InstanceID {
		t.Fatal("interning changed a value")
	}
}
