// Package config reads frontdesk's YAML configuration file (frontdesk serve
// --config FILE). Unknown keys and invalid values are errors that name the
// key, so a typo stops the daemon at start instead of being ignored.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Provider names, as written under provider:.
const (
	ProviderLocal  = "local"
	ProviderStatic = "static"
	ProviderSTS    = "sts"
	// ProviderProfile serves a named profile of the host's AWS configuration.
	ProviderProfile = "profile"
)

// Config is the whole file. Sections the file leaves out keep their zero
// values, which mean the defaults.
type Config struct {
	// Region is the region frontdesk stands in for (serve --region wins).
	Region string `yaml:"region"`
	// AccountID owns every instance (serve --account-id wins).
	AccountID string `yaml:"account_id"`
	// Zones are the region's availability zones (default its a, b and c).
	Zones []string `yaml:"zones"`

	Credentials Credentials `yaml:"credentials"`
	// Docker is the policy for containers (serve --docker).
	Docker    Docker    `yaml:"docker"`
	Instances Instances `yaml:"instances"`
	// Usage tunes the durable record of IMDSv1 calls (package usage).
	Usage Usage `yaml:"usage"`
	// PublicIPv4Pool is the IPv4 block Elastic IPs and public addresses at
	// launch come from (public_ipv4_pool: 203.0.113.0/24); none when empty.
	PublicIPv4Pool string `yaml:"public_ipv4_pool"`
}

// Instances holds settings of the instances' life cycle.
type Instances struct {
	// TerminatedRetention is how long a terminated instance stays visible
	// to DescribeInstances before it is purged (default 1h, as EC2);
	// serve's --terminated-retention overrides it.
	TerminatedRetention time.Duration `yaml:"terminated_retention"`
}

// Usage is the usage: section.
type Usage struct {
	// Retention is how long hourly IMDSv1 usage is kept (default 336h);
	// serve's --usage-retention, when given, wins.
	Retention time.Duration `yaml:"retention"`
}

// Credentials chooses where role credentials come from.
type Credentials struct {
	// Default serves every role that Roles does not list; the local
	// provider when left out.
	Default Provider `yaml:"default"`
	// Roles maps a role name (as in the instance profile) to its provider.
	Roles map[string]Provider `yaml:"roles"`
}

// Provider is one provider's settings. Which fields apply depends on
// Provider; setting one that does not apply is an error.
type Provider struct {
	// Provider is local, static or sts; local when empty.
	Provider string `yaml:"provider"`

	// Lifetime (local) is how long minted credentials last (default 6h).
	Lifetime time.Duration `yaml:"lifetime"`

	// File (static, required) is the JSON credentials file; see
	// credentials.Static for its format.
	File string `yaml:"file"`

	// RoleArn (sts) is the role to assume. Required for a listed role; the
	// default provider may leave it out to assume the instance profile's
	// own role ARN.
	RoleArn string `yaml:"role_arn"`
	// ExternalID (sts) is passed to AssumeRole when the trust policy
	// demands one.
	ExternalID string `yaml:"external_id"`
	// Duration (sts) is the session length, 15m to 12h (default 1h).
	Duration time.Duration `yaml:"duration"`
	// Region (sts) is the STS region; the host's configured region, or
	// us-east-1, when empty.
	Region string `yaml:"region"`
	// Endpoint (sts) is an STS-compatible endpoint URL (a VPC endpoint, a
	// test server).
	Endpoint string `yaml:"endpoint"`
	// Profile (profile, required) names a profile of the host's AWS
	// configuration (~/.aws/config, AWS_CONFIG_FILE): SSO, assumed-role,
	// credential_process or key profiles alike.
	Profile string `yaml:"profile"`

	// SourceIdentity (sts) passes the instance id as the session's source
	// identity; the role's trust policy must allow sts:SetSourceIdentity.
	SourceIdentity bool `yaml:"source_identity"`
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads and validates a configuration. An empty document is the
// default configuration.
func Parse(r io.Reader) (*Config, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err, b)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// yamlError rewords yaml.v3's decoding errors for operators: "line 3:
// unknown key rolearn" rather than a Go type name.
func yamlError(err error, doc []byte) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(err, doc)
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if f := unknownField.FindStringSubmatch(m); f != nil {
			m = f[1] + "unknown key " + f[2]
		} else {
			m = typeMessage(m, doc)
		}
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "; "))
}

var unknownField = regexp.MustCompile(`^(line \d+: )field (\S+) not found in type \S+$`)

// Validate checks every value and returns the first problem as
// "key.path: what is wrong".
func (c *Config) Validate() error {
	if c.Region != "" && !region.MatchString(c.Region) {
		return fmt.Errorf("region: %q is not a region name", c.Region)
	}
	if c.AccountID != "" && !accountID.MatchString(c.AccountID) {
		return fmt.Errorf("account_id: %q is not a 12-digit account id", c.AccountID)
	}
	if c.Instances.TerminatedRetention < 0 {
		return errors.New("instances.terminated_retention: must not be negative")
	}
	if r := c.Usage.Retention; r != 0 && (r < time.Hour || r > 366*24*time.Hour) {
		return fmt.Errorf("usage.retention: %s is out of range (1h to 8784h)", r)
	}
	if _, err := ParsePublicPool(c.PublicIPv4Pool); err != nil {
		return fmt.Errorf("public_ipv4_pool: %w", err)
	}
	if err := c.Credentials.Default.validate("credentials.default", false); err != nil {
		return err
	}
	if err := c.Docker.Validate("docker"); err != nil {
		return err
	}
	names := make([]string, 0, len(c.Credentials.Roles))
	for name := range c.Credentials.Roles {
		names = append(names, name)
	}
	slices.Sort(names) // report the same error every time
	for _, name := range names {
		key := "credentials.roles." + name
		if !roleName.MatchString(name) {
			return fmt.Errorf("%s: not a valid IAM role name", key)
		}
		if err := c.Credentials.Roles[name].validate(key, true); err != nil {
			return err
		}
	}
	return nil
}

// roleName is IAM's rule for role names.
var roleName = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// roleArn accepts IAM role ARNs in every partition.
var roleArn = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)

// externalID is STS's rule for ExternalId.
var externalID = regexp.MustCompile(`^[\w+=,.@:/-]+$`)

func (p Provider) validate(key string, listed bool) error {
	kind := p.Provider
	if kind == "" {
		kind = ProviderLocal
	}
	// Settings that belong to another provider are mistakes.
	set := map[string]bool{
		"lifetime": p.Lifetime != 0, "file": p.File != "", "role_arn": p.RoleArn != "",
		"external_id": p.ExternalID != "", "duration": p.Duration != 0, "region": p.Region != "",
		"endpoint": p.Endpoint != "", "source_identity": p.SourceIdentity, "profile": p.Profile != "",
	}
	allowed := map[string][]string{
		ProviderLocal:   {"lifetime"},
		ProviderStatic:  {"file"},
		ProviderSTS:     {"role_arn", "external_id", "duration", "region", "endpoint", "source_identity"},
		ProviderProfile: {"profile", "lifetime", "endpoint"},
	}
	ok, known := allowed[kind]
	if !known {
		return fmt.Errorf("%s.provider: %q is not one of local, static, sts, profile", key, p.Provider)
	}
	for _, k := range []string{"lifetime", "file", "role_arn", "external_id", "duration", "region", "endpoint", "source_identity", "profile"} {
		if set[k] && !slices.Contains(ok, k) {
			return fmt.Errorf("%s.%s: not used by provider %s", key, k, kind)
		}
	}
	switch kind {
	case ProviderLocal:
		if p.Lifetime != 0 && (p.Lifetime < 15*time.Minute || p.Lifetime > 36*time.Hour) {
			return fmt.Errorf("%s.lifetime: %s is outside 15m to 36h", key, p.Lifetime)
		}
	case ProviderProfile:
		switch {
		case p.Profile == "":
			return fmt.Errorf("%s.profile: required for provider profile", key)
		case p.Lifetime != 0 && (p.Lifetime < 15*time.Minute || p.Lifetime > 36*time.Hour):
			return fmt.Errorf("%s.lifetime: %s is outside 15m to 36h", key, p.Lifetime)
		}
		if p.Endpoint != "" {
			if err := checkEndpoint(p.Endpoint); err != nil {
				return fmt.Errorf("%s.endpoint: %w", key, err)
			}
		}
	case ProviderStatic:
		if p.File == "" {
			return fmt.Errorf("%s.file: required for provider static", key)
		}
	case ProviderSTS:
		switch {
		case p.RoleArn == "" && listed:
			return fmt.Errorf("%s.role_arn: required for provider sts", key)
		case p.RoleArn != "" && !roleArn.MatchString(p.RoleArn):
			return fmt.Errorf("%s.role_arn: %q is not an IAM role ARN", key, p.RoleArn)
		case p.ExternalID != "" && (len(p.ExternalID) < 2 || len(p.ExternalID) > 1224 || !externalID.MatchString(p.ExternalID)):
			return fmt.Errorf("%s.external_id: must be 2 to 1224 characters of letters, digits and +=,.@:/-", key)
		case p.Duration != 0 && (p.Duration < 15*time.Minute || p.Duration > 12*time.Hour || p.Duration%time.Second != 0):
			return fmt.Errorf("%s.duration: %s is outside 15m to 12h (whole seconds)", key, p.Duration)
		case p.Region != "" && !region.MatchString(p.Region):
			return fmt.Errorf("%s.region: %q is not a region name", key, p.Region)
		}
		if p.Endpoint != "" {
			if err := checkEndpoint(p.Endpoint); err != nil {
				return fmt.Errorf("%s.endpoint: %w", key, err)
			}
		}
	}
	return nil
}

var region = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

var accountID = regexp.MustCompile(`^\d{12}$`)
