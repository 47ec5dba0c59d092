package imds

import (
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/region"
)

// Instance states, as EC2 names them.
const (
	StatePending    = "pending"
	StateRunning    = "running"
	StateStopped    = "stopped"
	StateTerminated = "terminated"
)

// Instance is one guest: everything its metadata tree is rendered from.
// Addresses are kept as strings in their canonical netip form so the stored
// JSON stays readable; Validate checks them.
type Instance struct {
	InstanceID    string `json:"instanceId"`
	ReservationID string `json:"reservationId"`
	AccountID     string `json:"accountId"`
	// Generation changes on every launch. IMDSv2 tokens are bound to it, so a
	// token minted for an earlier instance on the same address never verifies.
	Generation uint64 `json:"generation"`
	State      string `json:"state"`

	ImageID         string    `json:"imageId"`
	AMILaunchIndex  int       `json:"amiLaunchIndex"`
	AMIManifestPath string    `json:"amiManifestPath,omitempty"`
	AncestorAMIIDs  []string  `json:"ancestorAmiIds,omitempty"`
	KernelID        string    `json:"kernelId,omitempty"`
	RamdiskID       string    `json:"ramdiskId,omitempty"`
	ProductCodes    []string  `json:"productCodes,omitempty"`
	BillingProducts []string  `json:"billingProducts,omitempty"`
	InstanceType    string    `json:"instanceType"`
	Architecture    string    `json:"architecture"`
	LaunchTime      time.Time `json:"launchTime"`
	// InstanceLifecycle is the purchase option: "on-demand" or "spot".
	InstanceLifecycle string `json:"instanceLifecycle"`
	// InstanceAction is "none", "shutdown" or "bundle-pending".
	InstanceAction string `json:"instanceAction,omitempty"`
	// Monitoring is "enabled" or "disabled" (dynamic/fws/instance-monitoring).
	Monitoring string `json:"monitoring,omitempty"`
	// Profile is the meta-data/profile value, e.g. "default-hvm".
	Profile string `json:"profile,omitempty"`

	Placement          Placement           `json:"placement"`
	NetworkInterfaces  []NetworkInterface  `json:"networkInterfaces"`
	BlockDevices       []BlockDevice       `json:"blockDevices,omitempty"`
	PublicKeys         []PublicKey         `json:"publicKeys,omitempty"`
	Tags               []Tag               `json:"tags,omitempty"`
	UserData           []byte              `json:"userData,omitempty"`
	IAMInstanceProfile *IAMInstanceProfile `json:"iamInstanceProfile,omitempty"`
	Events             Events              `json:"events"`
	MetadataOptions    MetadataOptions     `json:"metadataOptions"`
	// OptionsRevision is the store revision of the last metadata-options
	// change. The control plane reports "applied" once the data plane's
	// snapshot has reached it.
	OptionsRevision int64 `json:"optionsRevision,omitempty"`
	// TerminatedAt is when the instance was terminated (zero while it
	// lives). The record is purged once the retention window after it has
	// passed (internal/retention).
	TerminatedAt time.Time `json:"terminatedAt,omitzero"`
}

// Placement is the instance's location.
type Placement struct {
	Region             string `json:"region"`
	AvailabilityZone   string `json:"availabilityZone"`
	AvailabilityZoneID string `json:"availabilityZoneId"`
	GroupName          string `json:"groupName,omitempty"`
	// PartitionNumber is set only in partition placement groups (0 = none).
	PartitionNumber int `json:"partitionNumber,omitempty"`
	// HostID is the Dedicated Host id, and in fleet mode the frontdesk node
	// that serves the instance.
	HostID  string `json:"hostId,omitempty"`
	Tenancy string `json:"tenancy,omitempty"`
}

// NetworkInterface is one ENI. Interface 0 (DeviceIndex 0) is eth0, the source
// of the top-level mac, local-ipv4, hostname and public-* leaves.
type NetworkInterface struct {
	DeviceIndex int `json:"deviceIndex"`
	// NetworkCard is served only when set (multi-card instance types).
	NetworkCard     *int            `json:"networkCard,omitempty"`
	MAC             string          `json:"mac"`
	InterfaceID     string          `json:"interfaceId"`
	OwnerID         string          `json:"ownerId"`
	SubnetID        string          `json:"subnetId"`
	SubnetIPv4CIDR  string          `json:"subnetIpv4CidrBlock,omitempty"`
	SubnetIPv6CIDRs []string        `json:"subnetIpv6CidrBlocks,omitempty"`
	VPCID           string          `json:"vpcId"`
	VPCIPv4CIDRs    []string        `json:"vpcIpv4CidrBlocks,omitempty"`
	VPCIPv6CIDRs    []string        `json:"vpcIpv6CidrBlocks,omitempty"`
	PrivateIPv4s    []string        `json:"privateIpv4s,omitempty"` // primary first
	IPv6s           []string        `json:"ipv6s,omitempty"`
	LocalHostname   string          `json:"localHostname,omitempty"`
	PublicIPv4      string          `json:"publicIpv4,omitempty"`
	PublicHostname  string          `json:"publicHostname,omitempty"`
	SecurityGroups  []SecurityGroup `json:"securityGroups,omitempty"`
	IPv4Prefixes    []string        `json:"ipv4Prefixes,omitempty"`
	IPv6Prefixes    []string        `json:"ipv6Prefixes,omitempty"`
}

// SecurityGroup is a group attached to an interface.
type SecurityGroup struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// BlockDevice maps a metadata name ("ami", "root", "ebs1", "ephemeral0",
// "swap") to a device name ("/dev/xvda", "sdb").
type BlockDevice struct {
	Name   string `json:"name"`
	Device string `json:"device"`
}

// PublicKey is a key pair's public half in OpenSSH form.
type PublicKey struct {
	Name    string `json:"name"`
	OpenSSH string `json:"openssh"`
}

// Tag is an instance tag. Order is preserved as given.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// IAMInstanceProfile is the instance profile attached to the instance, with
// the one role whose credentials are served.
type IAMInstanceProfile struct {
	Arn  string `json:"arn"`
	ID   string `json:"id"`
	Role string `json:"role"`
	// AssociationID identifies the association for the EC2 API.
	AssociationID string `json:"associationId,omitempty"`
}

// Events are the notices EC2 publishes under meta-data: each exists only
// while it applies.
type Events struct {
	Scheduled []MaintenanceEvent `json:"scheduled,omitempty"`
	History   []MaintenanceEvent `json:"history,omitempty"`
	Spot      *SpotAction        `json:"spot,omitempty"`
	// RebalanceNotice is the noticeTime of a rebalance recommendation.
	RebalanceNotice *time.Time `json:"rebalanceNotice,omitempty"`
	// TargetLifecycleState is the Auto Scaling target lifecycle state
	// ("InService", "Terminated", ...); empty when no transition happened.
	TargetLifecycleState string `json:"targetLifecycleState,omitempty"`
}

// MaintenanceEvent is a scheduled (or past) maintenance event.
type MaintenanceEvent struct {
	EventID     string    `json:"eventId"`
	Code        string    `json:"code"`
	Description string    `json:"description"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter,omitempty"`
	// State is "active" for scheduled events, "completed" or "canceled" in history.
	State string `json:"state"`
}

// SpotAction is a pending Spot interruption.
type SpotAction struct {
	Action string    `json:"action"` // stop | terminate | hibernate
	Time   time.Time `json:"time"`
}

// Clone returns a deep copy, so callers may modify it without touching a
// value shared with a snapshot.
func (in *Instance) Clone() *Instance {
	if in == nil {
		return nil
	}
	out := *in
	out.AncestorAMIIDs = cloneStrings(in.AncestorAMIIDs)
	out.ProductCodes = cloneStrings(in.ProductCodes)
	out.BillingProducts = cloneStrings(in.BillingProducts)
	if in.NetworkInterfaces != nil {
		out.NetworkInterfaces = make([]NetworkInterface, len(in.NetworkInterfaces))
		for i, ni := range in.NetworkInterfaces {
			c := ni
			if ni.NetworkCard != nil {
				v := *ni.NetworkCard
				c.NetworkCard = &v
			}
			c.SubnetIPv6CIDRs = cloneStrings(ni.SubnetIPv6CIDRs)
			c.VPCIPv4CIDRs = cloneStrings(ni.VPCIPv4CIDRs)
			c.VPCIPv6CIDRs = cloneStrings(ni.VPCIPv6CIDRs)
			c.PrivateIPv4s = cloneStrings(ni.PrivateIPv4s)
			c.IPv6s = cloneStrings(ni.IPv6s)
			c.IPv4Prefixes = cloneStrings(ni.IPv4Prefixes)
			c.IPv6Prefixes = cloneStrings(ni.IPv6Prefixes)
			if ni.SecurityGroups != nil {
				c.SecurityGroups = append([]SecurityGroup(nil), ni.SecurityGroups...)
			}
			out.NetworkInterfaces[i] = c
		}
	}
	if in.BlockDevices != nil {
		out.BlockDevices = append([]BlockDevice(nil), in.BlockDevices...)
	}
	if in.PublicKeys != nil {
		out.PublicKeys = append([]PublicKey(nil), in.PublicKeys...)
	}
	if in.Tags != nil {
		out.Tags = append([]Tag(nil), in.Tags...)
	}
	if in.UserData != nil {
		out.UserData = append([]byte(nil), in.UserData...)
	}
	if in.IAMInstanceProfile != nil {
		p := *in.IAMInstanceProfile
		out.IAMInstanceProfile = &p
	}
	if in.Events.Scheduled != nil {
		out.Events.Scheduled = append([]MaintenanceEvent(nil), in.Events.Scheduled...)
	}
	if in.Events.History != nil {
		out.Events.History = append([]MaintenanceEvent(nil), in.Events.History...)
	}
	if in.Events.Spot != nil {
		s := *in.Events.Spot
		out.Events.Spot = &s
	}
	if in.Events.RebalanceNotice != nil {
		t := *in.Events.RebalanceNotice
		out.Events.RebalanceNotice = &t
	}
	return &out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}

// Primary returns interface 0 (eth0), or nil if the instance has none.
func (in *Instance) Primary() *NetworkInterface {
	for i := range in.NetworkInterfaces {
		if in.NetworkInterfaces[i].DeviceIndex == 0 {
			return &in.NetworkInterfaces[i]
		}
	}
	return nil
}

// Addresses returns every private IPv4 and IPv6 address of every interface:
// the addresses the data plane identifies this instance by.
func (in *Instance) Addresses() []string {
	var out []string
	for _, ni := range in.NetworkInterfaces {
		out = append(out, ni.PrivateIPv4s...)
		out = append(out, ni.IPv6s...)
	}
	return out
}

// Live reports whether the instance is served by the data plane and holds its
// addresses: every state but terminated.
func (in *Instance) Live() bool { return in.State != StateTerminated }

// TagValue returns the value of the tag with key k.
func (in *Instance) TagValue(k string) (string, bool) {
	for _, t := range in.Tags {
		if t.Key == k {
			return t.Value, true
		}
	}
	return "", false
}

// RoleARN is the ARN of an IAM role in an account, as an instance profile's
// credentials are issued for it; the partition (aws, aws-cn, aws-us-gov)
// follows the instance's region.
func RoleARN(regionName, accountID, role string) string {
	return region.ARN(regionName, "iam", "", accountID, "role/"+role)
}
