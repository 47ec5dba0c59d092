package controlplane

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestRunInstancesRegistersEverythingGiven(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.KeyPairs = func(name string) (string, bool) {
			return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA frontdesk", name == "ops"
		}
	})
	userData := "#!/bin/sh\necho hello\n"
	inst := e.launch("", func(in *ec2.RunInstancesInput) {
		in.PrivateIpAddress = nil
		in.InstanceType = types.InstanceTypeM6gLarge
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(userData)))
		in.KeyName = aws.String("ops")
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("web-role")}
		in.Placement = &types.Placement{AvailabilityZone: aws.String("us-east-1c"), GroupName: aws.String("pg"), PartitionNumber: aws.Int32(2)}
		in.TagSpecifications = []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}, {Key: aws.String("env"), Value: aws.String("prod")}}},
			{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String("ignored"), Value: aws.String("x")}}},
		}
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{
			HttpTokens: types.HttpTokensStateOptional, HttpPutResponseHopLimit: aws.Int32(3),
			HttpProtocolIpv6: types.InstanceMetadataProtocolStateEnabled, InstanceMetadataTags: types.InstanceMetadataTagsStateEnabled,
		}
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}
		in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{
			{
				DeviceIndex: aws.Int32(0),
				PrivateIpAddresses: []types.PrivateIpAddressSpecification{
					{PrivateIpAddress: aws.String("192.0.2.10"), Primary: aws.Bool(true)},
					{PrivateIpAddress: aws.String("192.0.2.11")},
				},
				Ipv6Addresses: []types.InstanceIpv6Address{{Ipv6Address: aws.String("2001:db8::10")}},
				Groups:        []string{"sg-0123456789abcdef0"},
			},
			{DeviceIndex: aws.Int32(1), PrivateIpAddress: aws.String("198.51.100.7"), NetworkCardIndex: aws.Int32(1)},
		}
	})
	got := e.stored(*inst.InstanceId)

	if !strings.HasPrefix(got.InstanceID, "i-") || len(got.InstanceID) != 19 {
		t.Errorf("instance id %q", got.InstanceID)
	}
	if !strings.HasPrefix(got.ReservationID, "r-") || len(got.ReservationID) != 19 {
		t.Errorf("reservation id %q", got.ReservationID)
	}
	if got.InstanceType != "m6g.large" || got.Architecture != "arm64" {
		t.Errorf("type %s arch %s", got.InstanceType, got.Architecture)
	}
	if string(got.UserData) != userData {
		t.Errorf("user data %q", got.UserData)
	}
	if len(got.PublicKeys) != 1 || got.PublicKeys[0].Name != "ops" || !strings.HasPrefix(got.PublicKeys[0].OpenSSH, "ssh-ed25519 ") {
		t.Errorf("public keys %+v", got.PublicKeys)
	}
	p := got.IAMInstanceProfile
	if p == nil || p.Arn != "arn:aws:iam::123456789012:instance-profile/web-role" || p.Role != "web-role" ||
		!strings.HasPrefix(p.ID, "AIPA") || !strings.HasPrefix(p.AssociationID, "iip-assoc-") {
		t.Errorf("profile %+v", p)
	}
	if got.Placement.AvailabilityZone != "us-east-1c" || got.Placement.AvailabilityZoneID != "use1-az3" ||
		got.Placement.GroupName != "pg" || got.Placement.PartitionNumber != 2 || got.Placement.Region != "us-east-1" {
		t.Errorf("placement %+v", got.Placement)
	}
	if len(got.Tags) != 2 || got.Tags[0] != (imds.Tag{Key: "Name", Value: "web-1"}) || got.Tags[1] != (imds.Tag{Key: "env", Value: "prod"}) {
		t.Errorf("tags %+v", got.Tags)
	}
	wantOpts := imds.MetadataOptions{HttpTokens: "optional", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 3, HttpProtocolIPv6: "enabled", InstanceMetadataTags: "enabled"}
	if got.MetadataOptions != wantOpts {
		t.Errorf("options %+v", got.MetadataOptions)
	}
	if got.InstanceLifecycle != "spot" || got.State != imds.StateRunning || got.Generation == 0 {
		t.Errorf("lifecycle %s state %s generation %d", got.InstanceLifecycle, got.State, got.Generation)
	}
	if len(got.NetworkInterfaces) != 2 {
		t.Fatalf("interfaces %+v", got.NetworkInterfaces)
	}
	eth0, eth1 := got.NetworkInterfaces[0], got.NetworkInterfaces[1]
	if strings.Join(eth0.PrivateIPv4s, ",") != "192.0.2.10,192.0.2.11" || strings.Join(eth0.IPv6s, ",") != "2001:db8::10" {
		t.Errorf("eth0 addresses %v %v", eth0.PrivateIPv4s, eth0.IPv6s)
	}
	if eth0.LocalHostname != "ip-192-0-2-10.ec2.internal" || eth0.SubnetIPv4CIDR != "192.0.2.0/24" || eth0.SubnetIPv6CIDRs[0] != "2001:db8::/64" {
		t.Errorf("eth0 %+v", eth0)
	}
	if len(eth0.SecurityGroups) != 1 || eth0.SecurityGroups[0].ID != "sg-0123456789abcdef0" {
		t.Errorf("eth0 groups %+v", eth0.SecurityGroups)
	}
	if !strings.HasPrefix(eth0.MAC, "02:") || eth0.MAC == eth1.MAC || !strings.HasPrefix(eth0.InterfaceID, "eni-") {
		t.Errorf("mac %s/%s eni %s", eth0.MAC, eth1.MAC, eth0.InterfaceID)
	}
	if eth1.DeviceIndex != 1 || eth1.NetworkCard == nil || *eth1.NetworkCard != 1 || eth1.PrivateIPv4s[0] != "198.51.100.7" {
		t.Errorf("eth1 %+v", eth1)
	}
	if got.OptionsRevision != e.revision() {
		t.Errorf("options revision %d, store revision %d", got.OptionsRevision, e.revision())
	}

	// The answer mirrors what was stored.
	if *inst.PrivateIpAddress != "192.0.2.10" || *inst.PrivateDnsName != "ip-192-0-2-10.ec2.internal" ||
		inst.MetadataOptions.State != types.InstanceMetadataOptionsStatePending || inst.State.Name != types.InstanceStateNameRunning ||
		*inst.Ipv6Address != "2001:db8::10" || inst.InstanceLifecycle != types.InstanceLifecycleTypeSpot {
		t.Errorf("answer %+v", inst)
	}
}

func TestRunInstancesDefaults(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Region = "eu-west-1" })
	e.client = newClientRegion(e.url, "eu-west-1")
	inst := e.launch("203.0.113.5", nil)
	got := e.stored(*inst.InstanceId)
	if got.InstanceType != "t3.micro" || got.Architecture != "x86_64" || got.InstanceLifecycle != "on-demand" {
		t.Errorf("type %s arch %s lifecycle %s", got.InstanceType, got.Architecture, got.InstanceLifecycle)
	}
	if got.Placement.AvailabilityZone != "eu-west-1a" || got.Placement.AvailabilityZoneID != "euw1-az1" {
		t.Errorf("placement %+v", got.Placement)
	}
	ni := got.NetworkInterfaces[0]
	if ni.LocalHostname != "ip-203-0-113-5.eu-west-1.compute.internal" {
		t.Errorf("hostname %s", ni.LocalHostname)
	}
	if len(ni.SecurityGroups) != 1 || ni.SecurityGroups[0].Name != "default" || !strings.HasPrefix(ni.SecurityGroups[0].ID, "sg-") {
		t.Errorf("groups %+v", ni.SecurityGroups)
	}
	if !strings.HasPrefix(ni.SubnetID, "subnet-") || !strings.HasPrefix(ni.VPCID, "vpc-") {
		t.Errorf("subnet %s vpc %s", ni.SubnetID, ni.VPCID)
	}
	// Product default: IMDSv2 required, hop limit 1.
	want := imds.MetadataOptions{HttpTokens: "required", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 1, HttpProtocolIPv6: "disabled", InstanceMetadataTags: "disabled"}
	if got.MetadataOptions != want {
		t.Errorf("options %+v", got.MetadataOptions)
	}
	// A neighbour in the same /24 shares subnet and VPC ids.
	other := e.stored(*e.launch("203.0.113.6", nil).InstanceId)
	if other.NetworkInterfaces[0].SubnetID != ni.SubnetID || other.NetworkInterfaces[0].VPCID != ni.VPCID {
		t.Errorf("neighbours do not share subnet/vpc ids")
	}
	if other.Generation == got.Generation {
		t.Errorf("generations repeat")
	}
}

func newClientRegion(url, region string) *ec2.Client {
	c := newClient(url, testCreds)
	return ec2.New(c.Options(), func(o *ec2.Options) { o.Region = region })
}

func TestRunInstancesIPv6Only(t *testing.T) {
	e := newEnv(t, nil)
	inst := e.launch("", func(in *ec2.RunInstancesInput) {
		in.PrivateIpAddress = nil
		in.Ipv6Addresses = []types.InstanceIpv6Address{{Ipv6Address: aws.String("2001:db8::20")}}
	})
	got := e.stored(*inst.InstanceId)
	ni := got.NetworkInterfaces[0]
	if len(ni.PrivateIPv4s) != 0 || ni.IPv6s[0] != "2001:db8::20" {
		t.Fatalf("addresses %v %v", ni.PrivateIPv4s, ni.IPv6s)
	}
	if ni.LocalHostname != got.InstanceID+".ec2.internal" {
		t.Errorf("resource-based hostname %q", ni.LocalHostname)
	}
}

func TestRunInstancesErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.launch("192.0.2.50", nil)
	big := base64.StdEncoding.EncodeToString(make([]byte, imds.MaxUserData+1))
	tests := []struct {
		name     string
		mod      func(*ec2.RunInstancesInput)
		wantCode string
		wantMsg  string
	}{
		{"missing_image_is_missing_parameter", func(in *ec2.RunInstancesInput) { in.ImageId = nil }, "MissingParameter", "ImageId"},
		{"malformed_image_id", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ami-xyz") }, "InvalidAMIID.Malformed", "ami-xyz"},
		{"no_address_is_missing_parameter", func(in *ec2.RunInstancesInput) { in.PrivateIpAddress = nil }, "MissingParameter", "PrivateIpAddress"},
		{"address_in_use", func(in *ec2.RunInstancesInput) { in.PrivateIpAddress = aws.String("192.0.2.50") }, "InvalidIPAddress.InUse", "192.0.2.50"},
		{"bad_address_names_parameter", func(in *ec2.RunInstancesInput) { in.PrivateIpAddress = aws.String("192.0.2.300") }, "InvalidParameterValue", "PrivateIpAddress"},
		{"ipv6_in_ipv4_field", func(in *ec2.RunInstancesInput) { in.PrivateIpAddress = aws.String("2001:db8::1") }, "InvalidParameterValue", "PrivateIpAddress"},
		{"user_data_not_base64", func(in *ec2.RunInstancesInput) { in.UserData = aws.String("%%%") }, "InvalidParameterValue", "BASE64"},
		{"user_data_over_16k", func(in *ec2.RunInstancesInput) { in.UserData = aws.String(big) }, "InvalidParameterValue", "16384"},
		{"bad_http_tokens_names_parameter", func(in *ec2.RunInstancesInput) {
			in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpTokens: "sometimes"}
		}, "InvalidParameterValue", "MetadataOptions.HttpTokens"},
		{"hop_limit_out_of_range", func(in *ec2.RunInstancesInput) {
			in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(65)}
		}, "InvalidParameterValue", "HttpPutResponseHopLimit"},
		{"max_count_above_one_without_allocation", func(in *ec2.RunInstancesInput) { in.MaxCount = aws.Int32(2) }, "InvalidParameterCombination", "MaxCount"},
		{"min_count_above_max_count", func(in *ec2.RunInstancesInput) { in.MinCount = aws.Int32(3) }, "InvalidParameterValue", "MinCount"},
		{"instance_address_and_interfaces_together", func(in *ec2.RunInstancesInput) {
			in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), PrivateIpAddress: aws.String("192.0.2.60")}}
		}, "InvalidParameterCombination", "Network interfaces"},
		{"interfaces_without_primary", func(in *ec2.RunInstancesInput) {
			in.PrivateIpAddress = nil
			in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(1), PrivateIpAddress: aws.String("192.0.2.60")}}
		}, "InvalidParameterValue", "DeviceIndex 0"},
		{"availability_zone_of_other_region", func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{AvailabilityZone: aws.String("eu-west-1a")}
		}, "InvalidParameterValue", "eu-west-1a"},
		{"reserved_tag_prefix", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}}}
		}, "InvalidParameterValue", "aws:"},
		{"metadata_tags_with_unservable_key", func(in *ec2.RunInstancesInput) {
			in.MetadataOptions = &types.InstanceMetadataOptionsRequest{InstanceMetadataTags: types.InstanceMetadataTagsStateEnabled}
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("has space"), Value: aws.String("y")}}}}
		}, "InvalidParameterValue", "has space"},
		{"key_name_not_stored", func(in *ec2.RunInstancesInput) { in.KeyName = aws.String("nope") }, "InvalidKeyPair.NotFound", "nope"},
		{"profile_arn_of_other_account_is_accepted", func(in *ec2.RunInstancesInput) {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::999999999999:instance-profile/x")}
		}, "", ""},
		{"profile_arn_that_is_not_one", func(in *ec2.RunInstancesInput) {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::999999999999:role/x")}
		}, "InvalidParameterValue", "IamInstanceProfile.Arn"},
		{"dry_run_answers_dry_run_operation", func(in *ec2.RunInstancesInput) { in.DryRun = aws.Bool(true) }, "DryRunOperation", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.revision()
			in := &ec2.RunInstancesInput{
				ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
				PrivateIpAddress: aws.String(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}).String()),
			}
			tt.mod(in)
			_, err := e.client.RunInstances(context.Background(), in)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if got := code(t, err); got != tt.wantCode {
				t.Fatalf("code %q (%v), want %q", got, err, tt.wantCode)
			}
			if !strings.Contains(message(t, err), tt.wantMsg) {
				t.Errorf("message %q does not mention %q", message(t, err), tt.wantMsg)
			}
			if e.revision() != before {
				t.Errorf("a failed RunInstances wrote to the store")
			}
		})
	}
}

func TestRunInstancesUnknownKeyPairWithLookup(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.KeyPairs = func(string) (string, bool) { return "", false } })
	_, err := e.client.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		PrivateIpAddress: aws.String("192.0.2.9"), KeyName: aws.String("missing"),
	})
	if got := code(t, err); got != "InvalidKeyPair.NotFound" {
		t.Fatalf("got %q", got)
	}
}
