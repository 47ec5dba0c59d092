package controlplane

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/region"
)

var (
	amiIDRe      = regexp.MustCompile(`^ami-[0-9a-f]{8}([0-9a-f]{9})?$`)
	subnetIDRe   = regexp.MustCompile(`^subnet-[0-9a-f]{8}([0-9a-f]{9})?$`)
	sgIDRe       = regexp.MustCompile(`^sg-[0-9a-f]{8}([0-9a-f]{9})?$`)
	profileArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/([\w+=,.@/-]+/)?([\w+=,.@-]{1,128})$`)
	profileNmRe  = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	assocIDRe    = regexp.MustCompile(`^iip-assoc-[0-9a-f]{17}$`)
)

// randomHex returns n random lower-case hex digits.
func randomHex(n int) (string, error) {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b)[:n], nil
}

// newID returns prefix + 17 random hex digits, EC2's long id form.
func newID(prefix string) (string, error) {
	h, err := randomHex(17)
	if err != nil {
		return "", err
	}
	return prefix + h, nil
}

// stableID derives an EC2-style id from a name, so that the same subnet CIDR
// or security-group name always yields the same id without any stored state.
func stableID(prefix, name string) string {
	sum := sha256.Sum256([]byte(prefix + name))
	return prefix + hex.EncodeToString(sum[:])[:17]
}

// stableUpperID is stableID for IAM-style ids (AIPA… in upper-case base-32).
func stableUpperID(prefix, name string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	sum := sha256.Sum256([]byte(prefix + name))
	var sb strings.Builder
	sb.WriteString(prefix)
	for i := 0; i < n; i++ {
		sb.WriteByte(alphabet[sum[i%len(sum)]%32])
	}
	return sb.String()
}

// newMAC returns a random locally administered unicast MAC (02:…), the form
// EC2 itself uses for ENIs.
func newMAC() (string, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random mac: %w", err)
	}
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4]), nil
}

// newGeneration returns a random launch generation (never 0, so a zero
// value is recognisably unset).
func newGeneration() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("random generation: %w", err)
		}
		if g := binary.BigEndian.Uint64(b[:]); g != 0 {
			return g, nil
		}
	}
}

// newRequestID returns a random UUID (version 4), the form of EC2's request ids.
func newRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "00000000-0000-4000-8000-000000000000"
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// privateDNSName is EC2's IP-based hostname: ip-192-0-2-10.ec2.internal in
// us-east-1, ip-192-0-2-10.eu-west-1.compute.internal elsewhere.
func privateDNSName(region string, a netip.Addr) string {
	return "ip-" + strings.ReplaceAll(a.String(), ".", "-") + "." + dnsSuffix(region)
}

// resourceDNSName is EC2's resource-based hostname, used for IPv6-only
// instances: i-0123456789abcdef0.us-west-2.compute.internal.
func resourceDNSName(region, instanceID string) string {
	return instanceID + "." + dnsSuffix(region)
}

func dnsSuffix(region string) string {
	if region == "us-east-1" {
		return "ec2.internal"
	}
	return region + ".compute.internal"
}

// azID is the availability-zone id of a zone of region (use1-az1).
func azID(regionName, zone string) string { return region.ZoneID(regionName, zone) }
