package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/region"
)

// demoInstanceID is the id of the instance --demo registers.
const demoInstanceID = "i-0123456789abcdef0"

const demoUserData = `#cloud-config
hostname: frontdesk-demo
packages:
  - curl
runcmd:
  - echo "hello from frontdesk" > /etc/motd
`

// demoInstance is an ordinary instance with data in every category, bound to
// the loopback addresses so that curl on the same machine is the guest.
// It is placed in the configured region's first zone and owned by the
// configured account.
func demoInstance(now time.Time, httpTokens string, rs regionSettings) (*imds.Instance, error) {
	opts, err := imds.LaunchOptions(imds.OptionsRequest{HttpTokens: &httpTokens, InstanceMetadataTags: ptr(imds.Enabled)}, imds.DefaultAccountDefaults(), false)
	if err != nil {
		return nil, err
	}
	card := 0
	launched := now.UTC().Truncate(time.Second)
	return &imds.Instance{
		InstanceID:        demoInstanceID,
		ReservationID:     "r-0a1b2c3d4e5f60718",
		AccountID:         rs.AccountID,
		Generation:        uint64(launched.UnixNano()),
		State:             imds.StateRunning,
		ImageID:           "ami-0abcdef1234567890",
		AMIManifestPath:   "(unknown)",
		InstanceType:      "m5.large",
		Architecture:      "x86_64",
		LaunchTime:        launched,
		InstanceLifecycle: "on-demand",
		InstanceAction:    "none",
		Monitoring:        "disabled",
		Profile:           "default-hvm",
		Placement: imds.Placement{
			Region:             rs.Region,
			AvailabilityZone:   rs.Zones[0],
			AvailabilityZoneID: region.ZoneID(rs.Region, rs.Zones[0]),
			Tenancy:            "default",
		},
		NetworkInterfaces: []imds.NetworkInterface{
			{
				DeviceIndex:     0,
				NetworkCard:     &card,
				MAC:             "02:42:ac:11:00:02",
				InterfaceID:     "eni-0a1b2c3d4e5f60001",
				OwnerID:         rs.AccountID,
				SubnetID:        "subnet-0a1b2c3d4e5f60001",
				SubnetIPv4CIDR:  "127.0.0.0/8",
				SubnetIPv6CIDRs: []string{"::1/128"},
				VPCID:           "vpc-0a1b2c3d4e5f60001",
				VPCIPv4CIDRs:    []string{"127.0.0.0/8"},
				VPCIPv6CIDRs:    []string{"::1/128"},
				PrivateIPv4s:    []string{"127.0.0.1"},
				IPv6s:           []string{"::1"},
				LocalHostname:   "ip-127-0-0-1." + internalDomain(rs.Region),
				PublicIPv4:      "203.0.113.10",
				PublicHostname:  "ec2-203-0-113-10.compute-1.amazonaws.com",
				SecurityGroups:  []imds.SecurityGroup{{ID: "sg-0a1b2c3d4e5f60001", Name: "default"}, {ID: "sg-0a1b2c3d4e5f60002", Name: "web"}},
			},
			{
				DeviceIndex:    1,
				MAC:            "02:42:ac:11:00:03",
				InterfaceID:    "eni-0a1b2c3d4e5f60002",
				OwnerID:        rs.AccountID,
				SubnetID:       "subnet-0a1b2c3d4e5f60002",
				SubnetIPv4CIDR: "198.51.100.0/24",
				VPCID:          "vpc-0a1b2c3d4e5f60001",
				VPCIPv4CIDRs:   []string{"127.0.0.0/8", "198.51.100.0/24"},
				PrivateIPv4s:   []string{"198.51.100.20", "198.51.100.21"},
				LocalHostname:  "ip-198-51-100-20." + internalDomain(rs.Region),
				SecurityGroups: []imds.SecurityGroup{{ID: "sg-0a1b2c3d4e5f60001", Name: "default"}},
				IPv4Prefixes:   []string{"198.51.100.32/28"},
			},
		},
		BlockDevices: []imds.BlockDevice{
			{Name: "ami", Device: "/dev/xvda"},
			{Name: "root", Device: "/dev/xvda"},
			{Name: "ebs1", Device: "sdf"},
			{Name: "ephemeral0", Device: "sdb"},
		},
		PublicKeys: []imds.PublicKey{{
			Name:    "demo-key",
			OpenSSH: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFrontdeskDemoKeyNotARealKeyAAAAAAAAAAAAAAA demo-key",
		}},
		Tags: []imds.Tag{
			{Key: "Name", Value: "frontdesk-demo"},
			{Key: "Environment", Value: "development"},
			{Key: "team", Value: "platform"},
		},
		UserData: []byte(demoUserData),
		IAMInstanceProfile: &imds.IAMInstanceProfile{
			Arn:           region.ARN(rs.Region, "iam", "", rs.AccountID, "instance-profile/frontdesk-demo"),
			ID:            "AIPAFRONTDESKDEMO0001",
			Role:          "frontdesk-demo-role",
			AssociationID: "iip-assoc-0a1b2c3d4e5f60001",
		},
		MetadataOptions: opts,
	}, nil
}

// seedDemo stores the demo instance if the store has none yet. An existing
// demo instance is kept as it is (it may have been modified through the
// API) except for HttpTokens, which --demo-http-tokens sets on every start:
// the flag says how the operator wants the demo served now.
func seedDemo(ctx context.Context, store imds.Store, now time.Time, httpTokens string, rs regionSettings) error {
	in, err := demoInstance(now, httpTokens, rs)
	if err != nil {
		return err
	}
	return store.Update(ctx, func(tx imds.Tx) error {
		if old, err := imds.GetInstance(tx, in.InstanceID); err == nil {
			if old.MetadataOptions.HttpTokens == httpTokens || !old.Live() {
				return nil
			}
			old.MetadataOptions.HttpTokens = httpTokens
			acct, err := imds.GetDefaults(tx)
			if err != nil {
				return err
			}
			if err := acct.Enforce(old.MetadataOptions); err != nil {
				return fmt.Errorf("--demo-http-tokens %s: %w", httpTokens, err)
			}
			old.OptionsRevision = tx.Revision() + 1
			if err := imds.PutInstance(tx, old); err != nil {
				return fmt.Errorf("apply --demo-http-tokens to the demo instance: %w", err)
			}
			return nil
		} else if !errors.Is(err, imds.ErrNotFound) {
			return err
		}
		in.OptionsRevision = tx.Revision() + 1
		if err := imds.PutInstance(tx, in); err != nil {
			return fmt.Errorf("seed the demo instance: %w", err)
		}
		return nil
	})
}

// demoCallerRanges parses --demo-callers. The demo instance is bound to
// loopback, but a frontdesk in a container is reached from the bridge's
// address (or through a published port's proxy), so a test service needs
// to answer those callers as the demo instance too. It hands the demo
// instance's credentials to everyone in the ranges, hence --demo only.
func demoCallerRanges(demo bool, list string) ([]dataplane.CallerRange, error) {
	if list == "" {
		return nil, nil
	}
	if !demo {
		return nil, errors.New("serve: --demo-callers needs --demo")
	}
	var out []dataplane.CallerRange
	for _, s := range strings.Split(list, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("serve: --demo-callers: %q is not a CIDR range: %w", s, err)
		}
		out = append(out, dataplane.CallerRange{Prefix: p.Masked(), InstanceID: demoInstanceID})
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// internalDomain is the domain of EC2's private DNS names in a region.
func internalDomain(r string) string {
	if r == "us-east-1" {
		return "ec2.internal"
	}
	return r + ".compute.internal"
}
