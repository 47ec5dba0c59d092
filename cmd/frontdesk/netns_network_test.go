//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// A guest in a network namespace, on an address RunInstances allocated in a
// subnet, reads its subnet, VPC, CIDR blocks and Elastic IP over real
// packets:
//
//	guest ns (eth0 = allocated 198.51.100.x/24) ──veth── host (198.51.100.1)
//	host: 169.254.169.254/32 on an ifb link, the data plane bound to it
//
// The public pool (198.18.0.0/28) is only ever data: no packet goes to it.
func TestNetnsGuestSeesItsSubnetVPCAndElasticIP(t *testing.T) {
	requireNetnsTools(t, "curl")
	lockNetns(t)
	removeLeftovers(t)
	if hasAddress(t, imdsAddr) {
		t.Fatalf("%s is already on a host interface: another service owns it", imdsAddr)
	}
	const hostAddr = "198.51.100.1"
	sfx := randomSuffix(t)
	imdsLink, hostEnd, ns := netnsPrefix+"d"+sfx, netnsPrefix+"v"+sfx, netnsPrefix+"-vpc-"+sfx
	t.Cleanup(func() {
		for _, l := range ourLinks(t) {
			if strings.HasSuffix(l, sfx) {
				t.Errorf("link %s survived cleanup", l)
			}
		}
		for _, s := range ourNamespaces(t) {
			if s == ns {
				t.Errorf("namespace %s survived cleanup", s)
			}
		}
	})
	imdsOnHost(t, imdsLink)

	dir := t.TempDir()
	d := startDaemon(t, dir, "--listen", imdsAddr+":80", "--public-ipv4-pool", "198.18.0.0/28")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := apiFor(t, d.dataDir, d.apiURL)
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("198.51.100.0/24"), Ipv6CidrBlock: aws.String("2001:db8:0:100::/56")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("198.51.100.0/28"), Ipv6CidrBlock: aws.String("2001:db8:0:101::/64")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0abcdef1234567890"), MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		SubnetId: sub.Subnet.SubnetId,
	})
	if err != nil {
		t.Fatal(err)
	}
	guestIP, id := aws.ToString(run.Instances[1].PrivateIpAddress), aws.ToString(run.Instances[1].InstanceId)
	if guestIP != "198.51.100.5" {
		t.Fatalf("second instance got %s, want 198.51.100.5", guestIP)
	}
	eip, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: eip.AllocationId, InstanceId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	waitApplied(ctx, t, c, 2*time.Second, id)

	// The guest takes the address the API allocated.
	guestBehindHost(t, hostEnd, ns, hostAddr, guestIP)
	// New instances require IMDSv2: read with a token.
	read := guestReader(t, ns)
	get := func(path string) string { t.Helper(); return read("meta-data/" + path) }
	if got := get("instance-id"); got != id {
		t.Fatalf("instance-id %q, want %s", got, id)
	}
	mac := get("mac")
	for path, want := range map[string]string{
		"local-ipv4":      guestIP,
		"public-ipv4":     "198.18.0.1",
		"public-hostname": "ec2-198-18-0-1.compute-1.amazonaws.com",
		"network/interfaces/macs/" + mac + "/subnet-id":                    aws.ToString(sub.Subnet.SubnetId),
		"network/interfaces/macs/" + mac + "/vpc-id":                       aws.ToString(vpc.Vpc.VpcId),
		"network/interfaces/macs/" + mac + "/subnet-ipv4-cidr-block":       "198.51.100.0/28",
		"network/interfaces/macs/" + mac + "/vpc-ipv4-cidr-block":          "198.51.100.0/24",
		"network/interfaces/macs/" + mac + "/vpc-ipv4-cidr-blocks":         "198.51.100.0/24",
		"network/interfaces/macs/" + mac + "/subnet-ipv6-cidr-blocks":      "2001:db8:0:101::/64",
		"network/interfaces/macs/" + mac + "/vpc-ipv6-cidr-blocks":         "2001:db8:0:100::/56",
		"network/interfaces/macs/" + mac + "/public-ipv4s":                 "198.18.0.1",
		"network/interfaces/macs/" + mac + "/public-hostname":              "ec2-198-18-0-1.compute-1.amazonaws.com",
		"network/interfaces/macs/" + mac + "/ipv4-associations/198.18.0.1": guestIP,
	} {
		if got := get(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}
