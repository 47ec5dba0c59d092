package imds

import (
	"fmt"
	"strings"
)

// Values of the metadata options, as the EC2 API spells them.
const (
	Optional     = "optional"
	Required     = "required"
	Enabled      = "enabled"
	Disabled     = "disabled"
	NoPreference = "no-preference"

	OptionsPending = "pending"
	OptionsApplied = "applied"

	// MaxHopLimit is the largest HttpPutResponseHopLimit EC2 accepts.
	MaxHopLimit = 64
	// HopLimitNoPreference clears the account-level hop limit.
	HopLimitNoPreference = -1
)

// MetadataOptions are an instance's IMDS settings (EC2's
// InstanceMetadataOptionsResponse without the state, which is derived).
type MetadataOptions struct {
	HttpTokens              string `json:"httpTokens"`              // optional | required
	HttpEndpoint            string `json:"httpEndpoint"`            // enabled | disabled
	HttpPutResponseHopLimit int    `json:"httpPutResponseHopLimit"` // 1..64
	HttpProtocolIPv6        string `json:"httpProtocolIpv6"`        // enabled | disabled
	InstanceMetadataTags    string `json:"instanceMetadataTags"`    // enabled | disabled
}

// Validate checks every field of fully resolved options.
func (o MetadataOptions) Validate() error {
	if err := oneOf("HttpTokens", o.HttpTokens, Optional, Required); err != nil {
		return err
	}
	if err := oneOf("HttpEndpoint", o.HttpEndpoint, Enabled, Disabled); err != nil {
		return err
	}
	if o.HttpPutResponseHopLimit < 1 || o.HttpPutResponseHopLimit > MaxHopLimit {
		return fmt.Errorf("%w: HttpPutResponseHopLimit %d is outside 1..%d", ErrInvalid, o.HttpPutResponseHopLimit, MaxHopLimit)
	}
	if err := oneOf("HttpProtocolIpv6", o.HttpProtocolIPv6, Enabled, Disabled); err != nil {
		return err
	}
	return oneOf("InstanceMetadataTags", o.InstanceMetadataTags, Enabled, Disabled)
}

// OptionsRequest is a partial set of metadata options, as given to
// RunInstances or ModifyInstanceMetadataOptions: nil means "not given".
type OptionsRequest struct {
	HttpTokens              *string
	HttpEndpoint            *string
	HttpPutResponseHopLimit *int
	HttpProtocolIPv6        *string
	InstanceMetadataTags    *string
}

// AccountDefaults are the account-level (per region) IMDS defaults of
// ModifyInstanceMetadataDefaults. NoPreference (or HopLimitNoPreference)
// leaves the decision to the other sources.
type AccountDefaults struct {
	HttpTokens              string `json:"httpTokens"`
	HttpPutResponseHopLimit int    `json:"httpPutResponseHopLimit"`
	HttpEndpoint            string `json:"httpEndpoint"`
	InstanceMetadataTags    string `json:"instanceMetadataTags"`
	HttpTokensEnforced      string `json:"httpTokensEnforced"`
}

// DefaultAccountDefaults is the state of a new account: no preference anywhere.
func DefaultAccountDefaults() AccountDefaults {
	return AccountDefaults{
		HttpTokens:              NoPreference,
		HttpPutResponseHopLimit: HopLimitNoPreference,
		HttpEndpoint:            NoPreference,
		InstanceMetadataTags:    NoPreference,
		HttpTokensEnforced:      NoPreference,
	}
}

// Validate checks every field.
func (d AccountDefaults) Validate() error {
	if err := oneOf("HttpTokens", d.HttpTokens, Optional, Required, NoPreference); err != nil {
		return err
	}
	if d.HttpPutResponseHopLimit != HopLimitNoPreference && (d.HttpPutResponseHopLimit < 1 || d.HttpPutResponseHopLimit > MaxHopLimit) {
		return fmt.Errorf("%w: HttpPutResponseHopLimit %d is neither -1 nor within 1..%d", ErrInvalid, d.HttpPutResponseHopLimit, MaxHopLimit)
	}
	if err := oneOf("HttpEndpoint", d.HttpEndpoint, Enabled, Disabled, NoPreference); err != nil {
		return err
	}
	if err := oneOf("InstanceMetadataTags", d.InstanceMetadataTags, Enabled, Disabled, NoPreference); err != nil {
		return err
	}
	return oneOf("HttpTokensEnforced", d.HttpTokensEnforced, Enabled, Disabled, NoPreference)
}

// LaunchOptions resolves the metadata options of a new instance in EC2's
// order of precedence: the launch request, then the account defaults, then
// the AMI (ImdsSupport=v2.0 means tokens required and hop limit 2), then
// frontdesk's product default. The product default is HttpTokens=required
// (security is the default), hop limit 1.
//
// With HttpTokensEnforced=enabled, a launch that would leave tokens optional
// fails with ErrTokensEnforced.
func LaunchOptions(req OptionsRequest, acct AccountDefaults, amiV2 bool) (MetadataOptions, error) {
	o := MetadataOptions{
		HttpTokens:              Required,
		HttpEndpoint:            Enabled,
		HttpPutResponseHopLimit: 1,
		HttpProtocolIPv6:        Disabled,
		InstanceMetadataTags:    Disabled,
	}
	if amiV2 {
		o.HttpTokens = Required
		o.HttpPutResponseHopLimit = 2
	}
	if acct.HttpTokens != "" && acct.HttpTokens != NoPreference {
		o.HttpTokens = acct.HttpTokens
	}
	if acct.HttpPutResponseHopLimit > 0 {
		o.HttpPutResponseHopLimit = acct.HttpPutResponseHopLimit
	}
	if acct.HttpEndpoint != "" && acct.HttpEndpoint != NoPreference {
		o.HttpEndpoint = acct.HttpEndpoint
	}
	if acct.InstanceMetadataTags != "" && acct.InstanceMetadataTags != NoPreference {
		o.InstanceMetadataTags = acct.InstanceMetadataTags
	}
	o = o.Apply(req)
	if err := o.Validate(); err != nil {
		return MetadataOptions{}, err
	}
	if err := acct.Enforce(o); err != nil {
		return MetadataOptions{}, err
	}
	return o, nil
}

// Apply returns o with every field that req gives replaced: EC2's
// ModifyInstanceMetadataOptions semantics (omitted fields keep their value).
func (o MetadataOptions) Apply(req OptionsRequest) MetadataOptions {
	if req.HttpTokens != nil {
		o.HttpTokens = *req.HttpTokens
	}
	if req.HttpEndpoint != nil {
		o.HttpEndpoint = *req.HttpEndpoint
	}
	if req.HttpPutResponseHopLimit != nil {
		o.HttpPutResponseHopLimit = *req.HttpPutResponseHopLimit
	}
	if req.HttpProtocolIPv6 != nil {
		o.HttpProtocolIPv6 = *req.HttpProtocolIPv6
	}
	if req.InstanceMetadataTags != nil {
		o.InstanceMetadataTags = *req.InstanceMetadataTags
	}
	return o
}

// Enforce returns ErrTokensEnforced when the account enforces IMDSv2 and o
// would leave tokens optional.
func (d AccountDefaults) Enforce(o MetadataOptions) error {
	if d.HttpTokensEnforced == Enabled && o.HttpTokens != Required {
		return fmt.Errorf("%w: the account enforces HttpTokens=required", ErrTokensEnforced)
	}
	return nil
}

func oneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%w: %s %q is not one of %s", ErrInvalid, name, v, strings.Join(allowed, ", "))
}

// ValidMetadataTagKey reports whether key may appear under tags/instance when
// InstanceMetadataTags is enabled: letters, digits and + - = . , _ : @ only,
// and not exactly ".", ".." or "_index".
func ValidMetadataTagKey(key string) bool {
	if key == "" || key == "." || key == ".." || key == "_index" {
		return false
	}
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("+-=.,_:@", r):
		default:
			return false
		}
	}
	return true
}
