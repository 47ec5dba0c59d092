package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// networkFlags are the `instances run` flags that place instances in a
// subnet: --subnet-id, --count and --associate-public-ip-address.
type networkFlags struct {
	subnetID string
	count    string
	public   bool
}

func (n *networkFlags) register(c *command) {
	c.fs.StringVar(&n.subnetID, "subnet-id", "", "subnet to launch into: without --private-ip frontdesk allocates the lowest free address")
	c.fs.StringVar(&n.count, "count", "1", "instances to launch, N or MIN:MAX as with aws ec2 run-instances (more than one needs --subnet-id)")
	c.fs.BoolVar(&n.public, "associate-public-ip-address", false, "give the instance a public IPv4 address from the pool (serve --public-ipv4-pool)")
}

// apply sets the counts and the subnet on a RunInstances request. With a
// public address the subnet and the private address move to the primary
// network interface, as the AWS CLI does.
func (n *networkFlags) apply(in *ec2.RunInstancesInput) error {
	lo, hi, err := parseCount(n.count)
	if err != nil {
		return err
	}
	in.MinCount, in.MaxCount = aws.Int32(lo), aws.Int32(hi)
	if n.subnetID != "" {
		in.SubnetId = aws.String(n.subnetID)
	}
	if n.public {
		in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), AssociatePublicIpAddress: aws.Bool(true),
			SubnetId: in.SubnetId, PrivateIpAddress: in.PrivateIpAddress,
		}}
		for _, a := range in.Ipv6Addresses {
			in.NetworkInterfaces[0].Ipv6Addresses = append(in.NetworkInterfaces[0].Ipv6Addresses, types.InstanceIpv6Address{Ipv6Address: a.Ipv6Address})
		}
		in.SubnetId, in.PrivateIpAddress, in.Ipv6Addresses = nil, nil, nil
	}
	return nil
}

// parseCount reads --count: N, or MIN:MAX.
func parseCount(s string) (int32, int32, error) {
	minS, maxS, ranged := strings.Cut(s, ":")
	if !ranged {
		maxS = minS
	}
	lo, err1 := strconv.ParseInt(minS, 10, 32)
	hi, err2 := strconv.ParseInt(maxS, 10, 32)
	if err1 != nil || err2 != nil || lo < 1 || hi < lo {
		return 0, 0, usageErr("--count: %q is not N or MIN:MAX with 1 <= MIN <= MAX", s)
	}
	return int32(lo), int32(hi), nil
}

func cmdVpcs(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "vpcs", args, map[string]subcommand{
		"list": {cmdVpcsList, "list VPCs"},
	})
}

func cmdSubnets(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "subnets", args, map[string]subcommand{
		"list": {cmdSubnetsList, "list subnets with their free addresses"},
	})
}

func cmdAddresses(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "addresses", args, map[string]subcommand{
		"list": {cmdAddressesList, "list Elastic IPs and their associations"},
	})
}

func nameTag(tags []types.Tag) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == "Name" {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func cmdVpcsList(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "vpcs list", "frontdesk vpcs list [--json] [ID...]")
	asJSON := c.fs.Bool("json", false, "print the EC2 API's JSON instead of a table")
	ids, err := c.parse(args, 0, -1)
	if err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	out, err := cl.EC2().DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: ids})
	if err != nil {
		return fmt.Errorf("vpcs list: %w", err)
	}
	if *asJSON {
		return writeJSON(e.stdout, nonNil(out.Vpcs))
	}
	rows := [][]string{{"VPC ID", "STATE", "IPV4 CIDR", "IPV6 CIDR", "NAME"}}
	for _, v := range out.Vpcs {
		var v6 []string
		for _, a := range v.Ipv6CidrBlockAssociationSet {
			v6 = append(v6, aws.ToString(a.Ipv6CidrBlock))
		}
		rows = append(rows, []string{aws.ToString(v.VpcId), string(v.State), aws.ToString(v.CidrBlock), dash(strings.Join(v6, ",")), dash(nameTag(v.Tags))})
	}
	return table(e.stdout, rows)
}

func cmdSubnetsList(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "subnets list", "frontdesk subnets list [--json] [--vpc-id VPC] [ID...]")
	asJSON := c.fs.Bool("json", false, "print the EC2 API's JSON instead of a table")
	vpc := c.fs.String("vpc-id", "", "only the subnets of this VPC")
	ids, err := c.parse(args, 0, -1)
	if err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	in := &ec2.DescribeSubnetsInput{SubnetIds: ids}
	if *vpc != "" {
		in.Filters = []types.Filter{{Name: aws.String("vpc-id"), Values: []string{*vpc}}}
	}
	out, err := cl.EC2().DescribeSubnets(ctx, in)
	if err != nil {
		return fmt.Errorf("subnets list: %w", err)
	}
	if *asJSON {
		return writeJSON(e.stdout, nonNil(out.Subnets))
	}
	rows := [][]string{{"SUBNET ID", "VPC ID", "ZONE", "IPV4 CIDR", "FREE", "IPV6 CIDR", "NAME"}}
	for _, s := range out.Subnets {
		var v6 []string
		for _, a := range s.Ipv6CidrBlockAssociationSet {
			v6 = append(v6, aws.ToString(a.Ipv6CidrBlock))
		}
		rows = append(rows, []string{aws.ToString(s.SubnetId), aws.ToString(s.VpcId), aws.ToString(s.AvailabilityZone), aws.ToString(s.CidrBlock),
			strconv.Itoa(int(aws.ToInt32(s.AvailableIpAddressCount))), dash(strings.Join(v6, ",")), dash(nameTag(s.Tags))})
	}
	return table(e.stdout, rows)
}

func cmdAddressesList(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "addresses list", "frontdesk addresses list [--json] [ALLOCATION-ID...]")
	asJSON := c.fs.Bool("json", false, "print the EC2 API's JSON instead of a table")
	ids, err := c.parse(args, 0, -1)
	if err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	out, err := cl.EC2().DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: ids})
	if err != nil {
		return fmt.Errorf("addresses list: %w", err)
	}
	if *asJSON {
		return writeJSON(e.stdout, nonNil(out.Addresses))
	}
	rows := [][]string{{"PUBLIC IP", "ALLOCATION ID", "INSTANCE ID", "PRIVATE IP", "ASSOCIATION ID"}}
	for _, a := range out.Addresses {
		rows = append(rows, []string{aws.ToString(a.PublicIp), aws.ToString(a.AllocationId), dash(aws.ToString(a.InstanceId)),
			dash(aws.ToString(a.PrivateIpAddress)), dash(aws.ToString(a.AssociationId))})
	}
	return table(e.stdout, rows)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
