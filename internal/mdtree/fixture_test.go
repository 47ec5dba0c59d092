package mdtree

import (
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// richInstance has every optional category: two interfaces (one on a second
// network card), tags enabled, an instance profile, two keys, block devices,
// maintenance events, a Spot notice, a rebalance notice and user data.
func richInstance(t testing.TB) *imds.Instance {
	t.Helper()
	card := 1
	rebalance := mustTime(t, "2020-11-05T08:22:00Z")
	return &imds.Instance{
		InstanceID:        "i-0123456789abcdef0",
		ReservationID:     "r-0fedcba9876543210",
		AccountID:         "123456789012",
		Generation:        3,
		State:             imds.StateRunning,
		ImageID:           "ami-0abcdef1234567890",
		AMILaunchIndex:    2,
		AncestorAMIIDs:    []string{"ami-0aaaaaaaaaaaaaaa1", "ami-0aaaaaaaaaaaaaaa2"},
		KernelID:          "aki-12345678",
		RamdiskID:         "ari-12345678",
		ProductCodes:      []string{"1abc2defghijklm3nopqrs4tu"},
		BillingProducts:   []string{"bp-6ba54002"},
		InstanceType:      "m5.large",
		Architecture:      "x86_64",
		LaunchTime:        mustTime(t, "2026-11-20T10:04:05.123Z"),
		InstanceLifecycle: "spot",
		InstanceAction:    "none",
		Monitoring:        "enabled",
		Profile:           "default-hvm",
		Placement: imds.Placement{
			Region:             "eu-central-1",
			AvailabilityZone:   "eu-central-1b",
			AvailabilityZoneID: "euc1-az3",
			GroupName:          "pg-partition",
			PartitionNumber:    3,
			HostID:             "h-0123456789abcdef0",
		},
		NetworkInterfaces: []imds.NetworkInterface{
			{ // listed second in the record: the tree orders by device index
				DeviceIndex:     1,
				NetworkCard:     &card,
				MAC:             "0e:00:00:00:00:02",
				InterfaceID:     "eni-0000000000000002",
				OwnerID:         "123456789012",
				SubnetID:        "subnet-0000000000000002",
				SubnetIPv4CIDR:  "198.51.100.0/24",
				VPCID:           "vpc-00000000000000001",
				VPCIPv4CIDRs:    []string{"192.0.2.0/24", "198.51.100.0/24"},
				PrivateIPv4s:    []string{"198.51.100.20"},
				LocalHostname:   "ip-198-51-100-20.eu-central-1.compute.internal",
				SecurityGroups:  []imds.SecurityGroup{{ID: "sg-0000000000000003", Name: "backend"}},
				IPv4Prefixes:    []string{"198.51.100.64/28"},
				SubnetIPv6CIDRs: nil,
			},
			{
				DeviceIndex:     0,
				MAC:             "0e:00:00:00:00:01",
				InterfaceID:     "eni-0000000000000001",
				OwnerID:         "123456789012",
				SubnetID:        "subnet-0000000000000001",
				SubnetIPv4CIDR:  "192.0.2.0/25",
				SubnetIPv6CIDRs: []string{"2001:db8:0:1::/64"},
				VPCID:           "vpc-00000000000000001",
				VPCIPv4CIDRs:    []string{"192.0.2.0/24", "198.51.100.0/24"},
				VPCIPv6CIDRs:    []string{"2001:db8::/56"},
				PrivateIPv4s:    []string{"192.0.2.10", "192.0.2.11"},
				IPv6s:           []string{"2001:db8:0:1::10", "2001:db8:0:1::11"},
				LocalHostname:   "ip-192-0-2-10.eu-central-1.compute.internal",
				PublicIPv4:      "203.0.113.10",
				PublicHostname:  "ec2-203-0-113-10.eu-central-1.compute.amazonaws.com",
				SecurityGroups: []imds.SecurityGroup{
					{ID: "sg-0000000000000001", Name: "web"},
					{ID: "sg-0000000000000002", Name: "ssh"},
				},
				IPv6Prefixes: []string{"2001:db8:0:1:1::/80"},
			},
		},
		BlockDevices: []imds.BlockDevice{
			{Name: "root", Device: "/dev/xvda"},
			{Name: "ami", Device: "/dev/xvda"},
			{Name: "ebs1", Device: "sdf"},
			{Name: "ephemeral0", Device: "sdb"},
		},
		PublicKeys: []imds.PublicKey{
			{Name: "my-key", OpenSSH: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRhdGE my-key"},
			{Name: "ops", OpenSSH: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ ops"},
		},
		Tags: []imds.Tag{
			{Key: "Name", Value: "web-1"},
			{Key: "Environment", Value: "prod"},
		},
		UserData: []byte("#!/bin/sh\necho hello\n"),
		IAMInstanceProfile: &imds.IAMInstanceProfile{
			Arn:  "arn:aws:iam::123456789012:instance-profile/web",
			ID:   "AIPAABCDEFGHIJKLMNOPQ",
			Role: "web-role",
		},
		Events: imds.Events{
			Scheduled: []imds.MaintenanceEvent{{
				EventID:     "instance-event-0d59937288b749b32",
				Code:        "system-reboot",
				Description: "scheduled reboot",
				NotBefore:   mustTime(t, "2019-01-21T09:00:43Z"),
				NotAfter:    mustTime(t, "2019-01-21T09:17:23Z"),
				State:       "active",
			}},
			History: []imds.MaintenanceEvent{
				{
					EventID:     "instance-event-0d59937288b749b32",
					Code:        "system-reboot",
					Description: "[Canceled] scheduled reboot",
					NotBefore:   mustTime(t, "2019-01-21T09:00:43Z"),
					NotAfter:    mustTime(t, "2019-01-21T09:17:23Z"),
					State:       "canceled",
				},
				{
					EventID:     "instance-event-0d59937288b749b32",
					Code:        "system-reboot",
					Description: "[Completed] scheduled reboot",
					NotBefore:   mustTime(t, "2019-01-29T09:00:43Z"),
					NotAfter:    mustTime(t, "2019-01-29T09:17:23Z"),
					State:       "completed",
				},
			},
			Spot:                 &imds.SpotAction{Action: "terminate", Time: mustTime(t, "2017-09-18T08:22:00Z")},
			RebalanceNotice:      &rebalance,
			TargetLifecycleState: "InService",
		},
		MetadataOptions: imds.MetadataOptions{
			HttpTokens:              imds.Required,
			HttpEndpoint:            imds.Enabled,
			HttpPutResponseHopLimit: 2,
			HttpProtocolIPv6:        imds.Disabled,
			InstanceMetadataTags:    imds.Enabled,
		},
	}
}

// plainInstance has only what every instance has: one interface with one
// private address, no public address, no profile, keys, devices or events,
// and tags that are not exposed.
func plainInstance(t testing.TB) *imds.Instance {
	t.Helper()
	return &imds.Instance{
		InstanceID:    "i-0aaaaaaaaaaaaaaaa",
		ReservationID: "r-0aaaaaaaaaaaaaaaa",
		AccountID:     "210987654321",
		State:         imds.StateRunning,
		ImageID:       "ami-0bbbbbbbbbbbbbbbb",
		InstanceType:  "t3.micro",
		Architecture:  "x86_64",
		LaunchTime:    mustTime(t, "2026-01-02T03:04:05Z"),
		Placement:     imds.Placement{Region: "us-east-1", AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az4"},
		Tags:          []imds.Tag{{Key: "Name", Value: "hidden"}},
		NetworkInterfaces: []imds.NetworkInterface{{
			MAC:            "0e:00:00:00:00:aa",
			InterfaceID:    "eni-00000000000000aa",
			OwnerID:        "210987654321",
			SubnetID:       "subnet-00000000000000aa",
			SubnetIPv4CIDR: "192.0.2.0/24",
			VPCID:          "vpc-00000000000000aa",
			VPCIPv4CIDRs:   []string{"192.0.2.0/24"},
			PrivateIPv4s:   []string{"192.0.2.5"},
			LocalHostname:  "ip-192-0-2-5.ec2.internal",
			SecurityGroups: []imds.SecurityGroup{{ID: "sg-00000000000000aa", Name: "default"}},
		}},
		MetadataOptions: imds.MetadataOptions{
			HttpTokens: imds.Required, HttpEndpoint: imds.Enabled, HttpPutResponseHopLimit: 1,
			HttpProtocolIPv6: imds.Disabled, InstanceMetadataTags: imds.Disabled,
		},
	}
}
