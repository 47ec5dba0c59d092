package controlplane

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/mdtree"
)

// seededNetwork are records for tests that need one of each.
type seededNetwork struct {
	vpc, emptyVPC, subnet string
	freeEIP, assoc        string
}

// seedNetwork makes a VPC with a subnet, an empty VPC, an associated Elastic
// IP (on instance) and a free one. The server needs a public pool.
func seedNetwork(t *testing.T, c *ec2.Client, instance string) seededNetwork {
	t.Helper()
	ctx := context.Background()
	var n seededNetwork
	n.vpc = mustVPC(t, c, "10.0.0.0/16")
	n.emptyVPC = mustVPC(t, c, "10.1.0.0/16")
	n.subnet = mustSubnet(t, c, n.vpc, "10.0.1.0/24", "")
	a1, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	as, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a1.AllocationId, InstanceId: aws.String(instance)})
	if err != nil {
		t.Fatal(err)
	}
	n.assoc = *as.AssociationId
	a2, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	n.freeEIP = *a2.AllocationId
	return n
}

func mustVPC(t *testing.T, c *ec2.Client, cidr string) string {
	t.Helper()
	out, err := c.CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	if err != nil {
		t.Fatalf("create vpc %s: %v", cidr, err)
	}
	return *out.Vpc.VpcId
}

func mustSubnet(t *testing.T, c *ec2.Client, vpc, cidr, ipv6 string) string {
	t.Helper()
	in := &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String(cidr)}
	if ipv6 != "" {
		in.Ipv6CidrBlock = aws.String(ipv6)
	}
	out, err := c.CreateSubnet(context.Background(), in)
	if err != nil {
		t.Fatalf("create subnet %s: %v", cidr, err)
	}
	return *out.Subnet.SubnetId
}

func newPoolEnv(t *testing.T, pool string) *env {
	return newEnv(t, func(o *Options) {
		if pool != "" {
			o.PublicIPv4Pool = netip.MustParsePrefix(pool)
		}
	})
}

func runInSubnet(e *env, subnet string, minC, maxC int32, mod func(*ec2.RunInstancesInput)) (*ec2.RunInstancesOutput, error) {
	in := &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(minC), MaxCount: aws.Int32(maxC),
		SubnetId: aws.String(subnet),
	}
	if mod != nil {
		mod(in)
	}
	return e.client.RunInstances(context.Background(), in)
}

func privateIPs(out *ec2.RunInstancesOutput) []string {
	var s []string
	for _, in := range out.Instances {
		s = append(s, *in.PrivateIpAddress)
	}
	return s
}

func TestVPCLifecycle(t *testing.T) {
	e := newPoolEnv(t, "")
	ctx := context.Background()
	out, err := e.client.CreateVpc(ctx, &ec2.CreateVpcInput{
		CidrBlock: aws.String("10.0.0.0/16"), Ipv6CidrBlock: aws.String("2001:db8:0:100::/56"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVpc, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("prod")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Vpc.VpcId
	if !strings.HasPrefix(id, "vpc-") || len(id) != len("vpc-")+17 {
		t.Errorf("vpc id %q", id)
	}
	if *out.Vpc.CidrBlock != "10.0.0.0/16" || len(out.Vpc.Ipv6CidrBlockAssociationSet) != 1 || *out.Vpc.Ipv6CidrBlockAssociationSet[0].Ipv6CidrBlock != "2001:db8:0:100::/56" {
		t.Errorf("vpc %+v", out.Vpc)
	}
	other := mustVPC(t, e.client, "192.0.2.0/24")

	d, err := e.client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("tag:Name"), Values: []string{"prod"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Vpcs) != 1 || *d.Vpcs[0].VpcId != id || *d.Vpcs[0].OwnerId != "123456789012" {
		t.Fatalf("tag filter: %+v", d.Vpcs)
	}
	d, err = e.client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("cidr"), Values: []string{"192.0.2.*"}}}})
	if err != nil || len(d.Vpcs) != 1 || *d.Vpcs[0].VpcId != other {
		t.Fatalf("cidr filter: %v %+v", err, d)
	}
	_, err = e.client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-00000000000000000"}})
	if got := code(t, err); got != "InvalidVpcID.NotFound" {
		t.Errorf("unknown id: %q", got)
	}

	sub := mustSubnet(t, e.client, id, "10.0.1.0/24", "")
	before := e.revision()
	_, err = e.client.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(id)})
	if got := code(t, err); got != "DependencyViolation" {
		t.Fatalf("delete vpc with a subnet: %q", got)
	}
	if e.revision() != before {
		t.Error("a refused DeleteVpc wrote to the store")
	}
	if _, err := e.client.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(sub)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(id)})
	if got := code(t, err); got != "InvalidVpcID.NotFound" {
		t.Errorf("second delete: %q", got)
	}
}

func TestCreateVPCAndSubnetRefuseBadBlocks(t *testing.T) {
	e := newPoolEnv(t, "")
	ctx := context.Background()
	for _, c := range []struct{ cidr, want string }{
		{"10.0.0.0/8", "InvalidVpc.Range"},
		{"10.0.0.0/29", "InvalidVpc.Range"},
		{"10.0.0.1/16", "InvalidVpc.Range"},
		{"2001:db8::/56", "InvalidVpc.Range"},
		{"nonsense", "InvalidVpc.Range"},
	} {
		_, err := e.client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(c.cidr)})
		if got := code(t, err); got != c.want {
			t.Errorf("vpc %s: %q, want %q", c.cidr, got, c.want)
		}
	}
	vpc := mustVPC(t, e.client, "10.0.0.0/16")
	mustSubnet(t, e.client, vpc, "10.0.1.0/24", "")
	before := e.revision()
	for _, c := range []struct{ vpc, cidr, az, want string }{
		{vpc, "10.1.0.0/24", "", "InvalidSubnet.Range"},      // outside the VPC
		{vpc, "10.0.0.0/15", "", "InvalidSubnet.Range"},      // wider than EC2 allows
		{vpc, "10.0.1.128/25", "", "InvalidSubnet.Conflict"}, // inside 10.0.1.0/24
		{vpc, "10.0.0.0/16", "", "InvalidSubnet.Conflict"},   // holds it
		{"vpc-00000000000000000", "10.0.2.0/24", "", "InvalidVpcID.NotFound"},
		{"vpc-zz", "10.0.2.0/24", "", "InvalidVpcID.Malformed"},
		{vpc, "10.0.2.0/24", "mars-1a", "InvalidParameterValue"},
	} {
		in := &ec2.CreateSubnetInput{VpcId: aws.String(c.vpc), CidrBlock: aws.String(c.cidr)}
		if c.az != "" {
			in.AvailabilityZone = aws.String(c.az)
		}
		_, err := e.client.CreateSubnet(ctx, in)
		if got := code(t, err); got != c.want {
			t.Errorf("subnet %s in %s: %q, want %q", c.cidr, c.vpc, got, c.want)
		}
	}
	// An IPv6 block needs one in the VPC.
	_, err := e.client.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String("10.0.2.0/24"), Ipv6CidrBlock: aws.String("2001:db8:0:1::/64")})
	if got := code(t, err); got != "InvalidSubnet.Range" {
		t.Errorf("ipv6 block without one in the vpc: %q", got)
	}
	if e.revision() != before {
		t.Error("a refused CreateSubnet wrote to the store")
	}
}

func TestRunInstancesAllocatesLowestFreeAddressesOfSubnet(t *testing.T) {
	e := newPoolEnv(t, "")
	ctx := context.Background()
	vpc := mustVPC(t, e.client, "198.51.100.0/24")
	sub := mustSubnet(t, e.client, vpc, "198.51.100.0/28", "")
	// An explicit address in the subnet: allocation must skip it.
	first, err := runInSubnet(e, sub, 1, 1, func(in *ec2.RunInstancesInput) { in.PrivateIpAddress = aws.String("198.51.100.5") })
	if err != nil {
		t.Fatal(err)
	}
	out, err := runInSubnet(e, sub, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	// .0 network, .1-.3 reserved, .5 taken.
	if got := strings.Join(privateIPs(out), ","); got != "198.51.100.4,198.51.100.6,198.51.100.7" {
		t.Fatalf("allocated %s", got)
	}
	for i, in := range out.Instances {
		if int(*in.AmiLaunchIndex) != i || *in.SubnetId != sub || *in.VpcId != vpc {
			t.Errorf("instance %d: index %d subnet %s vpc %s", i, *in.AmiLaunchIndex, *in.SubnetId, *in.VpcId)
		}
		if e.stored(*in.InstanceId).ReservationID != *out.ReservationId {
			t.Errorf("instances of one launch must share the reservation")
		}
	}
	ni := e.stored(*out.Instances[0].InstanceId).NetworkInterfaces[0]
	if ni.SubnetIPv4CIDR != "198.51.100.0/28" || !slices.Equal(ni.VPCIPv4CIDRs, []string{"198.51.100.0/24"}) || ni.SubnetID != sub || ni.VPCID != vpc {
		t.Errorf("interface %+v", ni)
	}
	d, err := e.client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{sub}})
	if err != nil {
		t.Fatal(err)
	}
	// 16 - 5 reserved - 4 used.
	if n := *d.Subnets[0].AvailableIpAddressCount; n != 7 {
		t.Errorf("available addresses %d, want 7", n)
	}
	// .8 .. .14 remain (7; .15 is reserved): MinCount 8 cannot be met.
	before := e.revision()
	_, err = runInSubnet(e, sub, 8, 10, nil)
	if got := code(t, err); got != "InsufficientFreeAddressesInSubnet" {
		t.Fatalf("got %q", got)
	}
	if e.revision() != before {
		t.Errorf("failed launch wrote to the store")
	}
	// MinCount 1, MaxCount 10: as many as fit.
	out, err = runInSubnet(e, sub, 1, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(privateIPs(out), ","); got != "198.51.100.8,198.51.100.9,198.51.100.10,198.51.100.11,198.51.100.12,198.51.100.13,198.51.100.14" {
		t.Fatalf("second launch allocated %s", got)
	}
	// The subnet is in use until its instances are gone.
	_, err = e.client.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(sub)})
	if got := code(t, err); got != "DependencyViolation" {
		t.Fatalf("delete used subnet: %q", got)
	}
	// Terminating frees an address: the next launch takes the lowest one.
	if _, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*first.Instances[0].InstanceId}}); err != nil {
		t.Fatal(err)
	}
	out, err = runInSubnet(e, sub, 1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := *out.Instances[0].PrivateIpAddress; got != "198.51.100.5" {
		t.Errorf("after termination allocated %s, want the freed 198.51.100.5", got)
	}
}

func TestRunInstancesInSubnetChecksExplicitAddresses(t *testing.T) {
	e := newPoolEnv(t, "")
	vpc := mustVPC(t, e.client, "198.51.100.0/24")
	sub := mustSubnet(t, e.client, vpc, "198.51.100.16/28", "")
	e.launch("198.51.100.20", nil) // no subnet: a legacy instance on an address of the subnet
	for _, c := range []struct {
		name, addr, want string
	}{
		{"outside", "198.51.100.40", "InvalidParameterValue"},
		{"reserved_router", "198.51.100.17", "InvalidParameterValue"},
		{"reserved_last", "198.51.100.31", "InvalidParameterValue"},
		{"held", "198.51.100.20", "InvalidIPAddress.InUse"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.revision()
			_, err := runInSubnet(e, sub, 1, 1, func(in *ec2.RunInstancesInput) { in.PrivateIpAddress = aws.String(c.addr) })
			if got := code(t, err); got != c.want {
				t.Fatalf("%s: %q, want %q", c.addr, got, c.want)
			}
			if e.revision() != before {
				t.Error("refused launch wrote")
			}
		})
	}
	// Allocation skips the legacy instance's address.
	out, err := runInSubnet(e, sub, 2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(privateIPs(out), ","); got != "198.51.100.21,198.51.100.22" {
		t.Errorf("allocated %s", got)
	}
	_, err = runInSubnet(e, "subnet-00000000000000000", 1, 1, nil)
	if got := code(t, err); got != "InvalidSubnetID.NotFound" {
		t.Errorf("unknown subnet: %q", got)
	}
	_, err = runInSubnet(e, sub, 1, 1, func(in *ec2.RunInstancesInput) {
		in.Placement = &types.Placement{AvailabilityZone: aws.String("us-east-1b")}
	})
	if got := code(t, err); got != "InvalidParameterValue" {
		t.Errorf("zone other than the subnet's: %q", got)
	}
}

func TestRunInstancesCountWithoutSubnetNamesSubnetID(t *testing.T) {
	e := newPoolEnv(t, "")
	_, err := e.client.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
	})
	if got := code(t, err); got != "MissingParameter" || !strings.Contains(message(t, err), "--subnet-id") {
		t.Errorf("no address, no subnet: %q %q", got, message(t, err))
	}
	_, err = e.client.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		PrivateIpAddress: aws.String("192.0.2.7"),
	})
	if got := code(t, err); got != "InvalidParameterCombination" || !strings.Contains(message(t, err), "--subnet-id") {
		t.Errorf("count with an explicit address: %q %q", got, message(t, err))
	}
}

func TestSubnetNetworkTreeFollowsRecords(t *testing.T) {
	e := newPoolEnv(t, "")
	ctx := context.Background()
	vpcOut, err := e.client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("198.51.100.0/24"), Ipv6CidrBlock: aws.String("2001:db8:0:100::/56")})
	if err != nil {
		t.Fatal(err)
	}
	vpc := *vpcOut.Vpc.VpcId
	sub := mustSubnet(t, e.client, vpc, "198.51.100.64/26", "2001:db8:0:101::/64")
	out, err := runInSubnet(e, sub, 1, 1, func(in *ec2.RunInstancesInput) {
		in.Ipv6Addresses = []types.InstanceIpv6Address{{Ipv6Address: aws.String("2001:db8:0:101::10")}}
	})
	if err != nil {
		t.Fatal(err)
	}
	in := e.stored(*out.Instances[0].InstanceId)
	tree := mdtree.Build(in)
	mac := in.NetworkInterfaces[0].MAC
	want := map[string]string{
		"subnet-id":               sub,
		"vpc-id":                  vpc,
		"subnet-ipv4-cidr-block":  "198.51.100.64/26",
		"vpc-ipv4-cidr-block":     "198.51.100.0/24",
		"vpc-ipv4-cidr-blocks":    "198.51.100.0/24",
		"subnet-ipv6-cidr-blocks": "2001:db8:0:101::/64",
		"vpc-ipv6-cidr-blocks":    "2001:db8:0:100::/56",
		"local-ipv4s":             "198.51.100.68",
		"ipv6s":                   "2001:db8:0:101::10",
	}
	for leaf, v := range want {
		p := "meta-data/network/interfaces/macs/" + mac + "/" + leaf
		n, ok := tree.Lookup("latest", p)
		if !ok || string(n.Body) != v {
			t.Errorf("%s = %q (found %v), want %q", p, n.Body, ok, v)
		}
	}
	for _, absent := range []string{"public-ipv4s", "public-hostname", "ipv4-associations"} {
		if _, ok := tree.Lookup("latest", "meta-data/network/interfaces/macs/"+mac+"/"+absent); ok {
			t.Errorf("%s present without a public address", absent)
		}
	}
	if in.Placement.AvailabilityZone != "us-east-1a" {
		t.Errorf("zone %s", in.Placement.AvailabilityZone)
	}
	_, err = runInSubnet(e, sub, 1, 1, func(in *ec2.RunInstancesInput) {
		in.Ipv6Addresses = []types.InstanceIpv6Address{{Ipv6Address: aws.String("2001:db8:0:102::10")}}
	})
	if got := code(t, err); got != "InvalidParameterValue" {
		t.Errorf("ipv6 outside the subnet: %q", got)
	}
}

// Concurrent launches into one small subnet: every address is handed out
// once, and the launches that do not fit fail whole.
func TestConcurrentLaunchesNeverShareAnAddress(t *testing.T) {
	e := newPoolEnv(t, "")
	vpc := mustVPC(t, e.client, "198.51.100.0/24")
	sub := mustSubnet(t, e.client, vpc, "198.51.100.0/27", "") // 27 usable
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		addrs []string
		fails int
	)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := runInSubnet(e, sub, 3, 3, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if code(t, err) != "InsufficientFreeAddressesInSubnet" {
					t.Errorf("launch: %v", err)
				}
				fails++
				return
			}
			addrs = append(addrs, privateIPs(out)...)
		}()
	}
	wg.Wait()
	// 27 usable addresses: nine launches of three fit, the tenth does not.
	if len(addrs) != 27 || fails != 1 {
		t.Fatalf("%d addresses, %d failed launches; want 27 and 1", len(addrs), fails)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Errorf("%s handed out twice", a)
		}
		seen[a] = true
	}
}

func TestElasticIPLifecycle(t *testing.T) {
	e := newPoolEnv(t, "203.0.113.0/30") // two usable: .1 and .2
	ctx := context.Background()
	a1, err := e.client.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	if err != nil {
		t.Fatal(err)
	}
	if *a1.PublicIp != "203.0.113.1" || !strings.HasPrefix(*a1.AllocationId, "eipalloc-") || len(*a1.AllocationId) != len("eipalloc-")+17 {
		t.Errorf("allocated %s %s", *a1.PublicIp, *a1.AllocationId)
	}
	a2, err := e.client.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	before := e.revision()
	_, err = e.client.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if got := code(t, err); got != "AddressLimitExceeded" {
		t.Fatalf("exhausted pool: %q", got)
	}
	if e.revision() != before {
		t.Error("refused allocation wrote")
	}

	web := *e.launch("192.0.2.10", nil).InstanceId
	db := *e.launch("192.0.2.11", nil).InstanceId
	as, err := e.client.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a1.AllocationId, InstanceId: aws.String(web)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(*as.AssociationId, "eipassoc-") {
		t.Errorf("association id %s", *as.AssociationId)
	}
	ni := e.stored(web).NetworkInterfaces[0]
	if ni.PublicIPv4 != "203.0.113.1" || ni.PublicHostname != "ec2-203-0-113-1.compute-1.amazonaws.com" {
		t.Errorf("web interface %s %s", ni.PublicIPv4, ni.PublicHostname)
	}
	tree := mdtree.Build(e.stored(web))
	for p, v := range map[string]string{
		"meta-data/public-ipv4":     "203.0.113.1",
		"meta-data/public-hostname": "ec2-203-0-113-1.compute-1.amazonaws.com",
		"meta-data/network/interfaces/macs/" + ni.MAC + "/public-ipv4s":                  "203.0.113.1",
		"meta-data/network/interfaces/macs/" + ni.MAC + "/public-hostname":               "ec2-203-0-113-1.compute-1.amazonaws.com",
		"meta-data/network/interfaces/macs/" + ni.MAC + "/ipv4-associations/203.0.113.1": "192.0.2.10",
	} {
		if n, ok := tree.Lookup("latest", p); !ok || string(n.Body) != v {
			t.Errorf("%s = %q (%v), want %q", p, n.Body, ok, v)
		}
	}
	d, err := e.client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{web}})
	if err != nil || *d.Reservations[0].Instances[0].PublicIpAddress != "203.0.113.1" {
		t.Errorf("describe-instances public address: %v", err)
	}
	if as := d.Reservations[0].Instances[0].NetworkInterfaces[0].Association; as == nil || aws.ToString(as.PublicIp) != "203.0.113.1" ||
		aws.ToString(as.PublicDnsName) != "ec2-203-0-113-1.compute-1.amazonaws.com" {
		t.Errorf("interface association %+v", as)
	}

	// Moving it needs AllowReassociation.
	_, err = e.client.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a1.AllocationId, InstanceId: aws.String(db)})
	if got := code(t, err); got != "Resource.AlreadyAssociated" {
		t.Fatalf("reassociation without AllowReassociation: %q", got)
	}
	as2, err := e.client.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a1.AllocationId, InstanceId: aws.String(db), AllowReassociation: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if e.stored(web).NetworkInterfaces[0].PublicIPv4 != "" || e.stored(db).NetworkInterfaces[0].PublicIPv4 != "203.0.113.1" {
		t.Error("reassociation did not move the address")
	}
	// A second address on db replaces the first, which stays allocated.
	if _, err := e.client.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a2.AllocationId, InstanceId: aws.String(db)}); err != nil {
		t.Fatal(err)
	}
	da, err := e.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{*a1.AllocationId}})
	if err != nil || len(da.Addresses) != 1 || da.Addresses[0].AssociationId != nil {
		t.Fatalf("replaced address: %v %+v", err, da)
	}
	da, err = e.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{db}}}})
	if err != nil || len(da.Addresses) != 1 || *da.Addresses[0].PublicIp != "203.0.113.2" || *da.Addresses[0].PrivateIpAddress != "192.0.2.11" {
		t.Fatalf("filter by instance: %v %+v", err, da)
	}
	_, err = e.client.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a2.AllocationId})
	if got := code(t, err); got != "InvalidIPAddress.InUse" {
		t.Fatalf("release while associated: %q", got)
	}
	_, err = e.client.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: as2.AssociationId})
	if got := code(t, err); got != "InvalidAssociationID.NotFound" {
		t.Errorf("stale association: %q", got)
	}
	da, _ = e.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{*a2.AllocationId}})
	if _, err := e.client.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: da.Addresses[0].AssociationId}); err != nil {
		t.Fatal(err)
	}
	if e.stored(db).NetworkInterfaces[0].PublicIPv4 != "" {
		t.Error("disassociation left the address on the instance")
	}
	if _, err := e.client.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a2.AllocationId}); err != nil {
		t.Fatal(err)
	}
	// The released address is free again.
	a3, err := e.client.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil || *a3.PublicIp != "203.0.113.2" {
		t.Fatalf("after release: %v", err)
	}
}

func TestAssociatePublicIPAtLaunchIsReleasedOnTerminate(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.PublicIPv4Pool = netip.MustParsePrefix("203.0.113.8/31")
		o.Region = "eu-west-1"
	})
	e.client = ec2.New(e.client.Options(), func(o *ec2.Options) { o.Region = "eu-west-1" })
	ctx := context.Background()
	vpc := mustVPC(t, e.client, "198.51.100.0/24")
	sub := mustSubnet(t, e.client, vpc, "198.51.100.0/28", "")
	launch := func(n int32) (*ec2.RunInstancesOutput, error) {
		return e.client.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(n), MaxCount: aws.Int32(n),
			NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{
				DeviceIndex: aws.Int32(0), SubnetId: aws.String(sub), AssociatePublicIpAddress: aws.Bool(true),
			}},
		})
	}
	out, err := launch(2)
	if err != nil {
		t.Fatal(err)
	}
	var pubs []string
	for _, in := range out.Instances {
		ni := e.stored(*in.InstanceId).NetworkInterfaces[0]
		pubs = append(pubs, ni.PublicIPv4)
		if want := "ec2-" + strings.ReplaceAll(ni.PublicIPv4, ".", "-") + ".eu-west-1.compute.amazonaws.com"; ni.PublicHostname != want {
			t.Errorf("hostname %s, want %s", ni.PublicHostname, want)
		}
	}
	if strings.Join(pubs, ",") != "203.0.113.8,203.0.113.9" {
		t.Fatalf("public addresses %v", pubs)
	}
	// Auto-assigned addresses are no Elastic IPs.
	if da, err := e.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{}); err != nil || len(da.Addresses) != 0 {
		t.Errorf("describe-addresses lists auto-assigned addresses: %v %+v", err, da)
	}
	before := e.revision()
	if _, err := launch(1); code(t, err) != "AddressLimitExceeded" {
		t.Fatalf("launch with an exhausted pool: %v", err)
	}
	if e.revision() != before {
		t.Error("refused launch wrote")
	}
	if _, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*out.Instances[1].InstanceId}}); err != nil {
		t.Fatal(err)
	}
	out2, err := launch(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.stored(*out2.Instances[0].InstanceId).NetworkInterfaces[0].PublicIPv4; got != "203.0.113.9" {
		t.Errorf("after terminate got %s, want the released 203.0.113.9", got)
	}
}

func TestElasticIPDisassociatedOnTerminate(t *testing.T) {
	e := newPoolEnv(t, "203.0.113.0/29")
	ctx := context.Background()
	id := *e.launch("192.0.2.10", nil).InstanceId
	n := seedNetwork(t, e.client, id)
	if _, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	da, err := e.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{{Name: aws.String("association-id"), Values: []string{n.assoc}}}})
	if err != nil || len(da.Addresses) != 0 {
		t.Fatalf("association survived termination: %v %+v", err, da)
	}
	da, err = e.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil || len(da.Addresses) != 2 {
		t.Fatalf("terminating released an Elastic IP: %v %+v", err, da)
	}
}

func TestAllocateAddressWithoutPoolSaysHowToConfigureOne(t *testing.T) {
	e := newPoolEnv(t, "")
	_, err := e.client.AllocateAddress(context.Background(), &ec2.AllocateAddressInput{})
	if code(t, err) != "AddressLimitExceeded" || !strings.Contains(message(t, err), "public_ipv4_pool") {
		t.Errorf("%v", err)
	}
}

// An Elastic IP associated with an instance that got a public address at
// launch replaces it, and the launch-time address goes back to the pool.
func TestElasticIPReplacesLaunchTimeAddress(t *testing.T) {
	e := newPoolEnv(t, "203.0.113.0/30") // .1 and .2
	ctx := context.Background()
	vpc := mustVPC(t, e.client, "198.51.100.0/24")
	sub := mustSubnet(t, e.client, vpc, "198.51.100.0/28", "")
	out, err := e.client.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(sub), AssociatePublicIpAddress: aws.Bool(true)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	if got := e.stored(id).NetworkInterfaces[0].PublicIPv4; got != "203.0.113.1" {
		t.Fatalf("launch-time address %s", got)
	}
	a, err := e.client.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil || *a.PublicIp != "203.0.113.2" {
		t.Fatalf("allocate: %v", err)
	}
	if _, err := e.client.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a.AllocationId, InstanceId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if got := e.stored(id).NetworkInterfaces[0].PublicIPv4; got != "203.0.113.2" {
		t.Errorf("after associate the instance shows %s", got)
	}
	// .1 is free again.
	b, err := e.client.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil || *b.PublicIp != "203.0.113.1" {
		t.Errorf("the launch-time address did not return to the pool: %v", err)
	}
	// A NetworkInterface.N other than the only, primary one may not ask for one.
	_, err = e.client.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{
			{DeviceIndex: aws.Int32(0), SubnetId: aws.String(sub)},
			{DeviceIndex: aws.Int32(1), SubnetId: aws.String(sub), AssociatePublicIpAddress: aws.Bool(true)},
		},
	})
	if got := code(t, err); got != "InvalidParameterCombination" {
		t.Errorf("public address on a second interface: %q", got)
	}
}

// Two interfaces in one subnet, two instances: four distinct addresses.
func TestAllocationForSeveralInterfaces(t *testing.T) {
	e := newPoolEnv(t, "")
	vpc := mustVPC(t, e.client, "198.51.100.0/24")
	sub := mustSubnet(t, e.client, vpc, "198.51.100.0/28", "")
	out, err := e.client.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{
			{DeviceIndex: aws.Int32(0), SubnetId: aws.String(sub)},
			{DeviceIndex: aws.Int32(1), SubnetId: aws.String(sub)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range out.Instances {
		for _, ni := range e.stored(*in.InstanceId).NetworkInterfaces {
			got = append(got, ni.PrivateIPv4s...)
			if ni.SubnetID != sub {
				t.Errorf("interface %d in %s", ni.DeviceIndex, ni.SubnetID)
			}
		}
	}
	if strings.Join(got, ",") != "198.51.100.4,198.51.100.6,198.51.100.5,198.51.100.7" {
		t.Errorf("addresses %v", got)
	}
}
