package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// seedChunk is how many instances one store transaction writes: large
// enough that seeding 100,000 takes seconds, small enough to bound the
// transaction's memory.
const seedChunk = 5000

// instanceAddr is the loopback address of seeded instance k: any address in
// 127.0.0.0/8 is a valid source on Linux, so the benchmark can call as any
// instance. The last octet stays in 1..254.
func instanceAddr(k int) netip.Addr {
	host := k % 254
	net := k / 254
	return netip.AddrFrom4([4]byte{127, byte(1 + net>>8), byte(net), byte(1 + host)})
}

// instanceID is the id of seeded instance k.
func instanceID(k int) string { return fmt.Sprintf("i-0%016x", 0xbe000000+k) }

// seedInstance is a realistic instance: one interface, a role, tags, keys
// and user data, so that the daemon's per-instance cost is representative.
func seedInstance(k int, launched time.Time) (*imds.Instance, error) {
	tokens := imds.Optional
	opts, err := imds.LaunchOptions(imds.OptionsRequest{HttpTokens: &tokens, InstanceMetadataTags: ptr(imds.Enabled)}, imds.DefaultAccountDefaults(), false)
	if err != nil {
		return nil, err
	}
	addr := instanceAddr(k).String()
	mac := fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(k>>24), byte(k>>16), byte(k>>8), byte(k))
	return &imds.Instance{
		InstanceID:        instanceID(k),
		ReservationID:     fmt.Sprintf("r-0%016x", 0xbe000000+k),
		AccountID:         "123456789012",
		Generation:        uint64(launched.UnixNano()) + uint64(k),
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
		Placement:         imds.Placement{Region: "us-east-1", AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az4", Tenancy: "default"},
		NetworkInterfaces: []imds.NetworkInterface{{
			MAC:            mac,
			InterfaceID:    fmt.Sprintf("eni-0%016x", 0xbe000000+k),
			OwnerID:        "123456789012",
			SubnetID:       "subnet-0a1b2c3d4e5f60001",
			SubnetIPv4CIDR: "127.0.0.0/8",
			VPCID:          "vpc-0a1b2c3d4e5f60001",
			VPCIPv4CIDRs:   []string{"127.0.0.0/8"},
			PrivateIPv4s:   []string{addr},
			LocalHostname:  "ip-" + dashed(addr) + ".ec2.internal",
			SecurityGroups: []imds.SecurityGroup{{ID: "sg-0a1b2c3d4e5f60001", Name: "default"}},
		}},
		BlockDevices: []imds.BlockDevice{{Name: "ami", Device: "/dev/xvda"}, {Name: "root", Device: "/dev/xvda"}},
		PublicKeys:   []imds.PublicKey{{Name: "bench-key", OpenSSH: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchKeyNotARealKeyAAAAAAAAAAAAAAAAAAAAAAAA bench-key"}},
		Tags:         []imds.Tag{{Key: "Name", Value: fmt.Sprintf("bench-%d", k)}, {Key: "team", Value: "platform"}},
		UserData:     []byte("#cloud-config\nruncmd:\n  - echo benchmark instance\n"),
		IAMInstanceProfile: &imds.IAMInstanceProfile{
			Arn:  "arn:aws:iam::123456789012:instance-profile/bench",
			ID:   "AIPABENCHMARK0000001",
			Role: "bench-role",
		},
		MetadataOptions: opts,
	}, nil
}

func dashed(addr string) string {
	b := []byte(addr)
	for i, c := range b {
		if c == '.' {
			b[i] = '-'
		}
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

// seed writes n instances into a new bolt store in dataDir, where
// `frontdesk serve --data-dir dataDir` finds them.
func seed(ctx context.Context, dataDir string, n int) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := bolt.Open(filepath.Join(dataDir, bolt.FileName), bolt.Options{})
	if err != nil {
		return fmt.Errorf("open the store: %w", err)
	}
	launched := time.Now().UTC().Truncate(time.Second)
	for lo := 0; lo < n; lo += seedChunk {
		hi := min(lo+seedChunk, n)
		err := st.Update(ctx, func(tx imds.Tx) error {
			for k := lo; k < hi; k++ {
				in, err := seedInstance(k, launched)
				if err != nil {
					return err
				}
				in.OptionsRevision = tx.Revision() + 1
				if err := imds.PutInstance(tx, in); err != nil {
					return fmt.Errorf("instance %d: %w", k, err)
				}
			}
			return nil
		})
		if err != nil {
			st.Close()
			return fmt.Errorf("seed: %w", err)
		}
	}
	return st.Close()
}
