//go:build integration

package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// awsFails runs the AWS CLI expecting it to fail with an EC2 error code, and
// returns its stderr.
func awsFails(t *testing.T, credsFile, endpoint, code string, args ...string) string {
	t.Helper()
	args = append(args, "--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json")
	cmd := exec.Command(awsCLI, args...)
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "LC_ALL=C.UTF-8",
		"AWS_SHARED_CREDENTIALS_FILE=" + credsFile, "AWS_CONFIG_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("aws %v: want failure %s, got %v\n%s", args, code, err, out)
	}
	if !strings.Contains(string(out), "("+code+")") {
		t.Fatalf("aws %v: want %s, got\n%s", args, code, out)
	}
	return string(out)
}

func awsJSON(t *testing.T, credsFile, endpoint string, v any, args ...string) {
	t.Helper()
	out := runAWS(t, credsFile, endpoint, args...)
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("aws %v output: %v\n%s", args, err, out)
	}
}

// Every VPC, subnet and Elastic IP action, driven by the real AWS CLI: it
// encodes the requests and parses the answers, so field names, list shapes
// and error codes are what the AWS CLI expects of EC2.
func TestAWSCLIVPCsSubnetsAndAddresses(t *testing.T) {
	if _, err := exec.LookPath(awsCLI); err != nil {
		t.Fatalf("the AWS CLI tests need %s: %v", awsCLI, err)
	}
	dir := t.TempDir()
	d := startDaemon(t, dir, "--public-ipv4-pool", "203.0.113.0/29")
	creds := filepath.Join(dir, "admin.credentials")
	ep := d.apiURL

	var vpc struct {
		Vpc struct{ VpcId, CidrBlock, State string }
	}
	awsJSON(t, creds, ep, &vpc, "ec2", "create-vpc", "--cidr-block", "198.51.100.0/24",
		"--tag-specifications", "ResourceType=vpc,Tags=[{Key=Name,Value=fleet}]")
	vpcID := vpc.Vpc.VpcId
	if !strings.HasPrefix(vpcID, "vpc-") || len(vpcID) != 21 || vpc.Vpc.CidrBlock != "198.51.100.0/24" {
		t.Fatalf("create-vpc: %+v", vpc)
	}
	awsFails(t, creds, ep, "InvalidVpc.Range", "ec2", "create-vpc", "--cidr-block", "10.0.0.0/8")

	var sub struct {
		Subnet struct {
			SubnetId, VpcId, CidrBlock, AvailabilityZone string
			AvailableIpAddressCount                      int
		}
	}
	awsJSON(t, creds, ep, &sub, "ec2", "create-subnet", "--vpc-id", vpcID, "--cidr-block", "198.51.100.0/28", "--availability-zone", "us-east-1b")
	subID := sub.Subnet.SubnetId
	if !strings.HasPrefix(subID, "subnet-") || len(subID) != 24 || sub.Subnet.VpcId != vpcID || sub.Subnet.AvailabilityZone != "us-east-1b" || sub.Subnet.AvailableIpAddressCount != 11 {
		t.Fatalf("create-subnet: %+v", sub)
	}
	awsFails(t, creds, ep, "InvalidSubnet.Conflict", "ec2", "create-subnet", "--vpc-id", vpcID, "--cidr-block", "198.51.100.0/27")

	var vpcs struct{ Vpcs []struct{ VpcId string } }
	awsJSON(t, creds, ep, &vpcs, "ec2", "describe-vpcs", "--filters", "Name=tag:Name,Values=fleet")
	if len(vpcs.Vpcs) != 1 || vpcs.Vpcs[0].VpcId != vpcID {
		t.Errorf("describe-vpcs by tag: %+v", vpcs)
	}

	var run struct {
		Instances []struct {
			InstanceId, PrivateIpAddress, SubnetId, VpcId string
			Placement                                     struct{ AvailabilityZone string }
		}
	}
	awsJSON(t, creds, ep, &run, "ec2", "run-instances", "--image-id", "ami-0abcdef1234567890", "--subnet-id", subID, "--count", "2")
	if len(run.Instances) != 2 {
		t.Fatalf("run-instances --count 2 launched %d", len(run.Instances))
	}
	var ips, ids []string
	for _, in := range run.Instances {
		ips = append(ips, in.PrivateIpAddress)
		ids = append(ids, in.InstanceId)
		if in.SubnetId != subID || in.VpcId != vpcID || in.Placement.AvailabilityZone != "us-east-1b" {
			t.Errorf("launched %+v", in)
		}
	}
	if !slices.Equal(ips, []string{"198.51.100.4", "198.51.100.5"}) {
		t.Errorf("allocated %v", ips)
	}
	awsFails(t, creds, ep, "InvalidParameterValue", "ec2", "run-instances", "--image-id", "ami-0abcdef1234567890", "--subnet-id", subID, "--private-ip-address", "198.51.100.20")
	awsFails(t, creds, ep, "InvalidIPAddress.InUse", "ec2", "run-instances", "--image-id", "ami-0abcdef1234567890", "--subnet-id", subID, "--private-ip-address", "198.51.100.4")
	awsFails(t, creds, ep, "InsufficientFreeAddressesInSubnet", "ec2", "run-instances", "--image-id", "ami-0abcdef1234567890", "--subnet-id", subID, "--count", "10")
	msg := awsFails(t, creds, ep, "InvalidParameterCombination", "ec2", "run-instances", "--image-id", "ami-0abcdef1234567890", "--private-ip-address", "192.0.2.50", "--count", "2")
	if !strings.Contains(msg, "--subnet-id") {
		t.Errorf("count without a subnet does not name --subnet-id: %s", msg)
	}

	// The AWS CLI moves --subnet-id into NetworkInterface.1 with
	// --associate-public-ip-address.
	var pubRun struct {
		Instances []struct{ InstanceId, PrivateIpAddress, PublicIpAddress string }
	}
	awsJSON(t, creds, ep, &pubRun, "ec2", "run-instances", "--image-id", "ami-0abcdef1234567890", "--subnet-id", subID, "--associate-public-ip-address")
	if len(pubRun.Instances) != 1 || pubRun.Instances[0].PrivateIpAddress != "198.51.100.6" || pubRun.Instances[0].PublicIpAddress != "203.0.113.1" {
		t.Errorf("run-instances --associate-public-ip-address: %+v", pubRun)
	}

	var subs struct {
		Subnets []struct {
			SubnetId                string
			AvailableIpAddressCount int
		}
	}
	awsJSON(t, creds, ep, &subs, "ec2", "describe-subnets", "--filters", "Name=vpc-id,Values="+vpcID)
	if len(subs.Subnets) != 1 || subs.Subnets[0].AvailableIpAddressCount != 8 {
		t.Errorf("describe-subnets: %+v", subs)
	}

	var alloc struct{ PublicIp, AllocationId, Domain string }
	awsJSON(t, creds, ep, &alloc, "ec2", "allocate-address", "--domain", "vpc")
	if alloc.PublicIp != "203.0.113.2" || !strings.HasPrefix(alloc.AllocationId, "eipalloc-") || alloc.Domain != "vpc" {
		t.Fatalf("allocate-address: %+v", alloc)
	}
	var assoc struct{ AssociationId string }
	awsJSON(t, creds, ep, &assoc, "ec2", "associate-address", "--allocation-id", alloc.AllocationId, "--instance-id", ids[0])
	if !strings.HasPrefix(assoc.AssociationId, "eipassoc-") {
		t.Fatalf("associate-address: %+v", assoc)
	}
	awsFails(t, creds, ep, "Resource.AlreadyAssociated", "ec2", "associate-address", "--allocation-id", alloc.AllocationId, "--instance-id", ids[1])
	awsJSON(t, creds, ep, &assoc, "ec2", "associate-address", "--allocation-id", alloc.AllocationId, "--instance-id", ids[1], "--allow-reassociation")

	var addrs struct {
		Addresses []struct{ PublicIp, AllocationId, AssociationId, InstanceId, PrivateIpAddress string }
	}
	awsJSON(t, creds, ep, &addrs, "ec2", "describe-addresses", "--filters", "Name=instance-id,Values="+ids[1])
	if len(addrs.Addresses) != 1 || addrs.Addresses[0].AssociationId != assoc.AssociationId || addrs.Addresses[0].PrivateIpAddress != "198.51.100.5" {
		t.Errorf("describe-addresses: %+v", addrs)
	}
	var desc struct {
		Reservations []struct {
			Instances []struct{ InstanceId, PublicIpAddress, PublicDnsName string }
		}
	}
	awsJSON(t, creds, ep, &desc, "ec2", "describe-instances", "--instance-ids", ids[1])
	if in := desc.Reservations[0].Instances[0]; in.PublicIpAddress != "203.0.113.2" || in.PublicDnsName != "ec2-203-0-113-2.compute-1.amazonaws.com" {
		t.Errorf("describe-instances after associate: %+v", in)
	}
	awsFails(t, creds, ep, "InvalidIPAddress.InUse", "ec2", "release-address", "--allocation-id", alloc.AllocationId)
	runAWS(t, creds, ep, "ec2", "disassociate-address", "--association-id", assoc.AssociationId)
	awsFails(t, creds, ep, "InvalidAssociationID.NotFound", "ec2", "disassociate-address", "--association-id", assoc.AssociationId)
	runAWS(t, creds, ep, "ec2", "release-address", "--allocation-id", alloc.AllocationId)
	awsFails(t, creds, ep, "InvalidAllocationID.NotFound", "ec2", "release-address", "--allocation-id", alloc.AllocationId)

	// Delete in dependency order.
	awsFails(t, creds, ep, "DependencyViolation", "ec2", "delete-vpc", "--vpc-id", vpcID)
	awsFails(t, creds, ep, "DependencyViolation", "ec2", "delete-subnet", "--subnet-id", subID)
	runAWS(t, creds, ep, append([]string{"ec2", "terminate-instances", "--instance-ids"}, append(ids, pubRun.Instances[0].InstanceId)...)...)
	runAWS(t, creds, ep, "ec2", "delete-subnet", "--subnet-id", subID)
	runAWS(t, creds, ep, "ec2", "delete-vpc", "--vpc-id", vpcID)
	awsFails(t, creds, ep, "InvalidVpcID.NotFound", "ec2", "describe-vpcs", "--vpc-ids", vpcID)
	// The launch-time public address went back to the pool with its instance.
	awsJSON(t, creds, ep, &alloc, "ec2", "allocate-address")
	if alloc.PublicIp != "203.0.113.1" {
		t.Errorf("after terminate the pool gave %s, want the released 203.0.113.1", alloc.PublicIp)
	}
}
