package imdstest

import (
	"time"
)

// An Option configures the instance a Server serves, or the server itself.
type Option func(*config)

type config struct {
	instanceID   string
	instanceType string
	region       string
	zone         string
	tags         map[string]string
	userData     []byte
	role         string
	options      MetadataOptions
	lifetime     time.Duration
	start        time.Time
}

// DefaultRole is the IAM role of a Server's instance unless WithRole says
// otherwise.
const DefaultRole = "imdstest-role"

func defaultConfig() config {
	return config{
		instanceType: "t3.micro",
		region:       "us-east-1",
		role:         DefaultRole,
	}
}

// WithInstanceID sets the instance id (i- and 8 or 17 hex digits). The
// default is random, so that servers in parallel tests never look alike.
func WithInstanceID(id string) Option { return func(c *config) { c.instanceID = id } }

// WithInstanceType sets the instance type (default t3.micro).
func WithInstanceType(t string) Option { return func(c *config) { c.instanceType = t } }

// WithRegion sets the region (default us-east-1). The availability zone is
// the region's "a" zone unless WithZone sets it.
func WithRegion(region string) Option { return func(c *config) { c.region = region } }

// WithZone sets the availability zone.
func WithZone(zone string) Option { return func(c *config) { c.zone = zone } }

// WithTags sets the instance's tags. Unless WithMetadataOptions says
// otherwise, they are served under meta-data/tags/instance.
func WithTags(tags map[string]string) Option {
	return func(c *config) {
		c.tags = make(map[string]string, len(tags))
		for k, v := range tags {
			c.tags[k] = v
		}
	}
}

// WithUserData sets the user data (at most 16 KiB, as on EC2).
func WithUserData(b []byte) Option {
	return func(c *config) { c.userData = append([]byte(nil), b...) }
}

// WithRole sets the role of the instance profile, whose credentials are
// served at iam/security-credentials/ROLE (default DefaultRole). "" launches
// the instance without an instance profile.
func WithRole(role string) Option { return func(c *config) { c.role = role } }

// WithMetadataOptions sets the instance's metadata options at launch. Fields
// left empty keep frontdesk's launch defaults: IMDSv2 required, endpoint
// enabled, hop limit 1.
func WithMetadataOptions(o MetadataOptions) Option { return func(c *config) { c.options = o } }

// WithCredentialLifetime sets how long each set of role credentials lasts
// (default 6 hours, as on EC2). The server fetches a new set ahead of
// expiry, as the daemon does, once the clock is advanced far enough.
func WithCredentialLifetime(d time.Duration) Option { return func(c *config) { c.lifetime = d } }

// WithStartTime sets the server clock's starting time (default: the real
// time at New, to the second).
func WithStartTime(t time.Time) Option { return func(c *config) { c.start = t } }

// MetadataOptions are the instance's IMDS settings, spelled as the EC2 API
// spells them. An empty field means "unchanged" (or the launch default).
type MetadataOptions struct {
	HttpTokens              string // "required" (IMDSv2 only) or "optional"
	HttpEndpoint            string // "enabled" or "disabled"
	HttpPutResponseHopLimit int    // 1 to 64
	HttpProtocolIPv6        string // "enabled" or "disabled"
	InstanceMetadataTags    string // "enabled" or "disabled"
}
