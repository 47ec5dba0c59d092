package storetest

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// The network records: VPCs, subnets, address allocation and the public
// pool, on top of the key-value contract.

// networkTests are added to the suite's list by RunWith.
func (s suite) networkTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"vpc_and_subnet_round_trip_and_delete_in_dependency_order", s.vpcSubnet},
		{"subnet_in_use_by_a_live_instance_cannot_be_deleted", s.subnetInUse},
		{"free_addresses_are_lowest_first_past_the_reserved_ones", s.freeAddresses},
		{"concurrent_allocations_never_share_an_address", s.concurrentAllocations},
		{"public_pool_claims_releases_and_exhausts", s.publicPool},
		{"associated_elastic_ip_cannot_be_released", s.elasticIPInUse},
	}
}

const (
	testVPC    = "vpc-0123456789abcdef0"
	testSubnet = "subnet-0123456789abcdef0"
)

func putNetwork(t *testing.T, st imds.Store, vpcCIDR, subnetCIDR string) {
	t.Helper()
	mustUpdate(t, st, func(tx imds.Tx) error {
		if err := imds.PutVPC(tx, &imds.VPC{VPCID: testVPC, OwnerID: "123456789012", State: "available", CIDRBlock: vpcCIDR}); err != nil {
			return err
		}
		return imds.PutSubnet(tx, &imds.Subnet{SubnetID: testSubnet, VPCID: testVPC, OwnerID: "123456789012", State: "available",
			CIDRBlock: subnetCIDR, AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1"})
	})
}

func (s suite) vpcSubnet(t *testing.T) {
	st := s.store(t)
	// A subnet of a missing VPC is refused and writes nothing.
	rev := revision(t, st)
	err := st.Update(t.Context(), func(tx imds.Tx) error {
		return imds.PutSubnet(tx, &imds.Subnet{SubnetID: testSubnet, VPCID: testVPC, CIDRBlock: "10.0.1.0/24"})
	})
	if !errors.Is(err, imds.ErrNotFound) {
		t.Fatalf("subnet of a missing vpc: %v", err)
	}
	if revision(t, st) != rev {
		t.Fatal("a refused PutSubnet wrote")
	}
	putNetwork(t, st, "10.0.0.0/16", "10.0.1.0/24")
	err = st.View(t.Context(), func(tx imds.Tx) error {
		v, err := imds.GetVPC(tx, testVPC)
		if err != nil {
			return err
		}
		sub, err := imds.GetSubnet(tx, testSubnet)
		if err != nil {
			return err
		}
		if v.CIDRBlock != "10.0.0.0/16" || sub.VPCID != testVPC || sub.CIDRBlock != "10.0.1.0/24" {
			return fmt.Errorf("read back %+v %+v", v, sub)
		}
		n := 0
		if err := imds.ListSubnets(tx, func(*imds.Subnet) error { n++; return nil }); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%d subnets listed", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rev = revision(t, st)
	err = st.Update(t.Context(), func(tx imds.Tx) error { return imds.DeleteVPC(tx, testVPC) })
	if !errors.Is(err, imds.ErrDependency) {
		t.Fatalf("delete vpc with a subnet: %v", err)
	}
	if revision(t, st) != rev {
		t.Fatal("a refused DeleteVPC wrote")
	}
	mustUpdate(t, st, func(tx imds.Tx) error {
		if err := imds.DeleteSubnet(tx, testSubnet); err != nil {
			return err
		}
		return imds.DeleteVPC(tx, testVPC)
	})
	err = st.View(t.Context(), func(tx imds.Tx) error {
		_, err := imds.GetVPC(tx, testVPC)
		return err
	})
	if !errors.Is(err, imds.ErrNotFound) {
		t.Fatalf("deleted vpc: %v", err)
	}
}

func (s suite) subnetInUse(t *testing.T) {
	st := s.store(t)
	putNetwork(t, st, "10.0.0.0/16", "10.0.1.0/24")
	in := NewInstance(t, 1, "10.0.1.4")
	in.NetworkInterfaces[0].SubnetID = testSubnet
	// A neighbour on an address of the block but in no subnet record does
	// not hold the subnet.
	other := NewInstance(t, 2, "10.0.1.9")
	other.NetworkInterfaces[0].SubnetID = "subnet-00000000000000000"
	mustUpdate(t, st, func(tx imds.Tx) error {
		if err := imds.PutInstance(tx, in); err != nil {
			return err
		}
		return imds.PutInstance(tx, other)
	})
	err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.DeleteSubnet(tx, testSubnet) })
	if !errors.Is(err, imds.ErrDependency) {
		t.Fatalf("delete a used subnet: %v", err)
	}
	in.State = imds.StateTerminated
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.DeleteSubnet(tx, testSubnet) })
}

func (s suite) freeAddresses(t *testing.T) {
	st := s.store(t)
	// A /22 spans four of the index's /24 scans.
	pfx := netip.MustParsePrefix("10.0.4.0/22")
	first, last, ok := imds.SubnetHosts(pfx)
	if !ok || first.String() != "10.0.4.4" || last.String() != "10.0.7.254" {
		t.Fatalf("hosts of %s: %s..%s %v", pfx, first, last, ok)
	}
	var ins []*imds.Instance
	for i, a := range []string{"10.0.4.4", "10.0.4.6", "10.0.5.1", "10.0.8.1", "10.0.3.255"} {
		ins = append(ins, NewInstance(t, i+1, a))
	}
	mustUpdate(t, st, func(tx imds.Tx) error {
		for _, in := range ins {
			if err := imds.PutInstance(tx, in); err != nil {
				return err
			}
		}
		return nil
	})
	err := st.View(t.Context(), func(tx imds.Tx) error {
		got, err := imds.FreeAddresses(tx, first, last, 3, map[netip.Addr]bool{netip.MustParseAddr("10.0.4.7"): true})
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != "[10.0.4.5 10.0.4.8 10.0.4.9]" {
			return fmt.Errorf("free addresses %v", got)
		}
		used, err := imds.UsedAddresses(tx, pfx)
		if err != nil {
			return err
		}
		if used != 3 {
			return fmt.Errorf("%d used in %s, want 3 (10.0.3.255 and 10.0.8.1 lie outside)", used, pfx)
		}
		// The last usable address, once the rest is gone.
		got, err = imds.FreeAddresses(tx, netip.MustParseAddr("10.0.7.254"), last, 5, nil)
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != "[10.0.7.254]" {
			return fmt.Errorf("free at the end %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// concurrentAllocations is RunInstances' pattern: read the free addresses
// and take one, in one Update. Whatever the backend's concurrency control
// (a lock, or etcd's optimistic retries), no address is taken twice.
func (s suite) concurrentAllocations(t *testing.T) {
	st := s.store(t)
	pfx := netip.MustParsePrefix("10.0.1.0/24")
	first, last, _ := imds.SubnetHosts(pfx)
	writers, n := s.opts.Writers, 3
	var wg sync.WaitGroup
	errs := make(chan error, writers*n)
	for w := range writers {
		wg.Go(func() {
			for i := range n {
				err := st.Update(t.Context(), func(tx imds.Tx) error {
					free, err := imds.FreeAddresses(tx, first, last, 1, nil)
					if err != nil {
						return err
					}
					if len(free) == 0 {
						return errors.New("subnet full")
					}
					return imds.PutInstance(tx, NewInstance(t, 1000+w*n+i, free[0].String()))
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("allocating Update: %v", err)
	}
	seen := map[string]string{}
	err := st.View(t.Context(), func(tx imds.Tx) error {
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			a := in.NetworkInterfaces[0].PrivateIPv4s[0]
			if prev, dup := seen[a]; dup {
				return fmt.Errorf("%s held by %s and %s", a, prev, in.InstanceID)
			}
			seen[a] = in.InstanceID
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != writers*n {
		t.Fatalf("%d instances, want %d", len(seen), writers*n)
	}
	// Lowest first: exactly the first writers*n usable addresses.
	a := first
	for range writers * n {
		if seen[a.String()] == "" {
			t.Errorf("%s was skipped", a)
		}
		a = a.Next()
	}
}

func (s suite) publicPool(t *testing.T) {
	st := s.store(t)
	pool := netip.MustParsePrefix("203.0.113.0/30") // .1 and .2
	var got []string
	for _, h := range []string{"eipalloc-0123456789abcdef0", "i-0123456789abcdef0"} {
		mustUpdate(t, st, func(tx imds.Tx) error {
			a, err := imds.ClaimPublicIP(tx, pool, h)
			got = append(got, a.String())
			return err
		})
	}
	if fmt.Sprint(got) != "[203.0.113.1 203.0.113.2]" {
		t.Fatalf("claimed %v", got)
	}
	rev := revision(t, st)
	err := st.Update(t.Context(), func(tx imds.Tx) error {
		_, err := imds.ClaimPublicIP(tx, pool, "i-0123456789abcdef1")
		return err
	})
	if !errors.Is(err, imds.ErrNoFreeAddress) || revision(t, st) != rev {
		t.Fatalf("exhausted pool: %v (revision %d → %d)", err, rev, revision(t, st))
	}
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.ReleasePublicIP(tx, "203.0.113.1") })
	err = st.View(t.Context(), func(tx imds.Tx) error {
		h, err := imds.PublicIPHolder(tx, "203.0.113.2")
		if err != nil || h != "i-0123456789abcdef0" {
			return fmt.Errorf("holder of .2: %q %v", h, err)
		}
		if _, err := imds.PublicIPHolder(tx, "203.0.113.1"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("released .1: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s suite) elasticIPInUse(t *testing.T) {
	st := s.store(t)
	in := NewInstance(t, 1, "192.0.2.10")
	in.NetworkInterfaces[0].PublicIPv4 = "203.0.113.1"
	e := &imds.ElasticIP{AllocationID: "eipalloc-0123456789abcdef0", PublicIP: "203.0.113.1", OwnerID: "123456789012",
		AssociationID: "eipassoc-0123456789abcdef0", InstanceID: in.InstanceID, PrivateIP: "192.0.2.10"}
	mustUpdate(t, st, func(tx imds.Tx) error {
		if _, err := imds.ClaimPublicIP(tx, netip.MustParsePrefix("203.0.113.1/32"), e.AllocationID); err != nil {
			return err
		}
		if err := imds.PutInstance(tx, in); err != nil {
			return err
		}
		return imds.PutElasticIP(tx, e)
	})
	err := st.Update(t.Context(), func(tx imds.Tx) error {
		_, err := imds.ReleaseElasticIP(tx, e.AllocationID)
		return err
	})
	if !errors.Is(err, imds.ErrDependency) {
		t.Fatalf("release an associated address: %v", err)
	}
	// Terminating disassociates it (it stays allocated); then it can go.
	mustUpdate(t, st, func(tx imds.Tx) error {
		in.State = imds.StateTerminated
		if err := imds.ReleaseInstancePublicIPs(tx, in); err != nil {
			return err
		}
		return imds.PutInstance(tx, in)
	})
	mustUpdate(t, st, func(tx imds.Tx) error {
		_, err := imds.ReleaseElasticIP(tx, e.AllocationID)
		return err
	})
	err = st.View(t.Context(), func(tx imds.Tx) error {
		_, err := imds.PublicIPHolder(tx, "203.0.113.1")
		return err
	})
	if !errors.Is(err, imds.ErrNotFound) {
		t.Errorf("release left the address claimed: %v", err)
	}
}
