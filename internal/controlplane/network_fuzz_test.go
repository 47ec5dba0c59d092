package controlplane

import (
	"context"
	"net/netip"
	"net/url"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

// FuzzNetworkActions runs every VPC, subnet and address action on arbitrary
// parameters against a store holding one of each record: no input may
// panic, and every stored record must stay valid.
func FuzzNetworkActions(f *testing.F) {
	f.Add("CidrBlock=10.0.0.0/16&Ipv6CidrBlock=2001:db8::/56")
	f.Add("VpcId=vpc-0123456789abcdef0&CidrBlock=10.0.1.0/24&AvailabilityZone=us-east-1b&Ipv6CidrBlock=2001:db8:0:1::/64")
	f.Add("SubnetId=subnet-0123456789abcdef0&MinCount=2&MaxCount=5&ImageId=ami-0123456789abcdef0&PrivateIpAddress=10.0.1.9")
	f.Add("AllocationId=eipalloc-0123456789abcdef0&InstanceId=i-0123456789abcdef0&AllowReassociation=true&PublicIp=203.0.113.1")
	f.Add("Filter.1.Name=tag:Name&Filter.1.Value.1=*&VpcId.1=vpc-0123456789abcdef0&AssociationId=eipassoc-0")
	f.Fuzz(func(t *testing.T, body string) {
		q, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		st := memstore.New()
		defer st.Close()
		s := New(st, AdminCredentials{}, Options{PublicIPv4Pool: netip.MustParsePrefix("203.0.113.0/29")})
		ctx := context.Background()
		seed := newParams(url.Values{"CidrBlock": {"10.0.0.0/16"}})
		if _, err := s.createVpc(ctx, seed); err != nil {
			t.Fatal(err)
		}
		p := newParams(q)
		for _, a := range []action{
			s.createVpc, s.describeVpcs, s.deleteVpc, s.createSubnet, s.describeSubnets, s.deleteSubnet,
			s.allocateAddress, s.associateAddress, s.disassociateAddress, s.releaseAddress, s.describeAddresses,
			s.runInstances, s.terminateInstances,
		} {
			_, _ = a(ctx, p)
		}
		err = st.View(ctx, func(tx imds.Tx) error {
			if err := imds.ListVPCs(tx, func(v *imds.VPC) error { return v.Validate() }); err != nil {
				return err
			}
			if err := imds.ListSubnets(tx, func(s *imds.Subnet) error { return s.Validate() }); err != nil {
				return err
			}
			return imds.ListElasticIPs(tx, func(e *imds.ElasticIP) error { return e.Validate() })
		})
		if err != nil {
			t.Fatalf("a stored record is invalid: %v", err)
		}
	})
}
