package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Through the real daemon with guests on loopback: `instances run
// --subnet-id --count 2` allocates the subnet's lowest free addresses, the
// guests on them see their subnet and VPC, an Elastic IP shows up as
// public-ipv4, and the list subcommands show all of it.
func TestCLISubnetsAndElasticIPs(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--public-ipv4-pool", "203.0.113.0/28")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	api := apiFor(t, d.dataDir, d.apiURL, noRetries)

	vpc, err := api.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("127.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := *vpc.Vpc.VpcId
	sub, err := api.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpcID), CidrBlock: aws.String("127.0.40.0/28")})
	if err != nil {
		t.Fatal(err)
	}
	subID := *sub.Subnet.SubnetId

	// Without a subnet, --count 2 says what is missing.
	r := d.cliResult(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--count", "2")
	if r.err == nil || !strings.Contains(r.err.Error(), "--subnet-id") {
		t.Errorf("--count 2 without a subnet: %v", r.err)
	}

	out := d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--subnet-id", subID, "--count", "2", "--http-tokens", "optional")
	ids := strings.Fields(out)
	if len(ids) != 2 || !cliInstanceIDRe.MatchString(ids[0]) || !cliInstanceIDRe.MatchString(ids[1]) {
		t.Fatalf("instances run --count 2 printed %q", out)
	}
	listed := d.cliInstances(t)
	if a, b := listed[ids[0]].PrivateIPs, listed[ids[1]].PrivateIPs; len(a) != 1 || len(b) != 1 || a[0] != "127.0.40.4" || b[0] != "127.0.40.5" {
		t.Fatalf("allocated %v and %v, want 127.0.40.4 and 127.0.40.5", a, b)
	}

	const guest = "127.0.40.4"
	if got := d.waitGuest(t, guest, "/latest/meta-data/instance-id", false, 200); got != ids[0] {
		t.Fatalf("guest %s is %q, want %s", guest, got, ids[0])
	}
	_, mac := d.guestGet(t, guest, "/latest/meta-data/mac", "")
	for leaf, want := range map[string]string{
		"subnet-id":              subID,
		"vpc-id":                 vpcID,
		"subnet-ipv4-cidr-block": "127.0.40.0/28",
		"vpc-ipv4-cidr-block":    "127.0.0.0/16",
		"vpc-ipv4-cidr-blocks":   "127.0.0.0/16",
		"local-ipv4s":            guest,
	} {
		if s, got := d.guestGet(t, guest, "/latest/meta-data/network/interfaces/macs/"+mac+"/"+leaf, ""); s != 200 || got != want {
			t.Errorf("%s: %d %q, want %q", leaf, s, got, want)
		}
	}
	if s, _ := d.guestGet(t, guest, "/latest/meta-data/public-ipv4", ""); s != 404 {
		t.Errorf("public-ipv4 before an address is associated: %d, want 404", s)
	}

	eip, err := api.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: eip.AllocationId, InstanceId: aws.String(ids[0])}); err != nil {
		t.Fatal(err)
	}
	if got := d.waitGuest(t, guest, "/latest/meta-data/public-ipv4", false, 200); got != "203.0.113.1" {
		t.Errorf("public-ipv4 %q", got)
	}
	for path, want := range map[string]string{
		"/latest/meta-data/public-hostname":                                                   "ec2-203-0-113-1.compute-1.amazonaws.com",
		"/latest/meta-data/network/interfaces/macs/" + mac + "/public-ipv4s":                  "203.0.113.1",
		"/latest/meta-data/network/interfaces/macs/" + mac + "/ipv4-associations/":            "203.0.113.1",
		"/latest/meta-data/network/interfaces/macs/" + mac + "/ipv4-associations/203.0.113.1": guest,
	} {
		if s, got := d.guestGet(t, guest, path, ""); s != 200 || got != want {
			t.Errorf("%s: %d %q, want %q", path, s, got, want)
		}
	}

	// A public address at launch, through the CLI.
	out = d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--subnet-id", subID, "--associate-public-ip-address", "--http-tokens", "optional")
	third := strings.TrimSpace(out)
	if got := d.waitGuest(t, "127.0.40.6", "/latest/meta-data/public-ipv4", false, 200); got != "203.0.113.2" {
		t.Errorf("auto-assigned public-ipv4 %q", got)
	}

	vpcs := d.cli(t, "vpcs", "list")
	if !strings.Contains(vpcs, vpcID) || !strings.Contains(vpcs, "127.0.0.0/16") {
		t.Errorf("vpcs list:\n%s", vpcs)
	}
	subnets := d.cli(t, "subnets", "list", "--vpc-id", vpcID)
	// 16 - 5 reserved - 3 instances = 8 free.
	if !strings.Contains(subnets, subID) || !strings.Contains(subnets, "127.0.40.0/28") || !strings.Contains(strings.Fields(strings.Split(subnets, "\n")[1])[4], "8") {
		t.Errorf("subnets list:\n%s", subnets)
	}
	addrs := d.cli(t, "addresses", "list")
	if !strings.Contains(addrs, "203.0.113.1") || !strings.Contains(addrs, ids[0]) || strings.Contains(addrs, "203.0.113.2") {
		t.Errorf("addresses list (the launch-time address is no Elastic IP):\n%s", addrs)
	}

	// The subnet cannot go while instances use it.
	_, err = api.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(subID)})
	if !isCode(err, "DependencyViolation") {
		t.Errorf("delete a used subnet: %v", err)
	}
	d.cli(t, "instances", "terminate", ids[0], ids[1], third)
	if _, err := api.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(subID)}); err != nil {
		t.Errorf("delete the emptied subnet: %v", err)
	}
}

func isCode(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
