package imds

import (
	"errors"
	"net/netip"
	"testing"
)

func TestSubnetHostsAndSize(t *testing.T) {
	for _, c := range []struct {
		pfx, first, last string
		size             int
	}{
		{"10.0.0.0/16", "10.0.0.4", "10.0.255.254", 65531},
		{"198.51.100.0/24", "198.51.100.4", "198.51.100.254", 251},
		{"198.51.100.16/28", "198.51.100.20", "198.51.100.30", 11},
	} {
		p := netip.MustParsePrefix(c.pfx)
		first, last, ok := SubnetHosts(p)
		if !ok || first.String() != c.first || last.String() != c.last || SubnetSize(p) != c.size {
			t.Errorf("%s: %s..%s %v size %d; want %s..%s size %d", c.pfx, first, last, ok, SubnetSize(p), c.first, c.last, c.size)
		}
	}
	for _, bad := range []string{"198.51.100.0/29", "2001:db8::/64"} {
		if _, _, ok := SubnetHosts(netip.MustParsePrefix(bad)); ok || SubnetSize(netip.MustParsePrefix(bad)) != 0 {
			t.Errorf("%s has hosts", bad)
		}
	}
	if got := commonPrefix(netip.MustParseAddr("10.0.16.4"), netip.MustParseAddr("10.0.31.254")); got.String() != "10.0.16.0/20" {
		t.Errorf("common prefix %s", got)
	}
}

func TestNetworkRecordsValidate(t *testing.T) {
	good := []interface{ Validate() error }{
		&VPC{VPCID: "vpc-0123456789abcdef0", CIDRBlock: "10.0.0.0/16", IPv6CIDRBlocks: []string{"2001:db8:0:100::/56"}},
		&Subnet{SubnetID: "subnet-01234567", VPCID: "vpc-0123456789abcdef0", CIDRBlock: "10.0.1.0/24"},
		&ElasticIP{AllocationID: "eipalloc-0123456789abcdef0", PublicIP: "203.0.113.1"},
	}
	for _, r := range good {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	bad := []interface{ Validate() error }{
		&VPC{VPCID: "vpc-x", CIDRBlock: "10.0.0.0/16"},
		&VPC{VPCID: "vpc-0123456789abcdef0", CIDRBlock: "10.0.0.1/16"},
		&VPC{VPCID: "vpc-0123456789abcdef0", CIDRBlock: "10.0.0.0/16", IPv6CIDRBlocks: []string{"10.1.0.0/16"}},
		&Subnet{SubnetID: "subnet-01234567", VPCID: "vpc-0123456789abcdef0", CIDRBlock: "2001:db8::/64"},
		&Subnet{SubnetID: "sn-01234567", VPCID: "vpc-0123456789abcdef0", CIDRBlock: "10.0.1.0/24"},
		&ElasticIP{AllocationID: "eipalloc-0123456789abcdef0", PublicIP: "2001:db8::1"},
		&ElasticIP{AllocationID: "eipalloc-0123456789abcdef0", PublicIP: "203.0.113.1", AssociationID: "eipassoc-0123456789abcdef0"},
	}
	for _, r := range bad {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", r, err)
		}
	}
}
