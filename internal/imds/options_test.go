package imds

import (
	"errors"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// TestLaunchOptionsPrecedence walks EC2's order of precedence: the launch
// request over the account defaults over the AMI over frontdesk's default.
func TestLaunchOptionsPrecedence(t *testing.T) {
	none := DefaultAccountDefaults()
	acct := func(f func(*AccountDefaults)) AccountDefaults { d := DefaultAccountDefaults(); f(&d); return d }
	product := MetadataOptions{HttpTokens: Required, HttpEndpoint: Enabled, HttpPutResponseHopLimit: 1,
		HttpProtocolIPv6: Disabled, InstanceMetadataTags: Disabled}
	with := func(f func(*MetadataOptions)) MetadataOptions { o := product; f(&o); return o }
	tests := []struct {
		name  string
		req   OptionsRequest
		acct  AccountDefaults
		amiV2 bool
		want  MetadataOptions
		err   error
	}{
		{"nothing given: the product default requires tokens, hop limit 1", OptionsRequest{}, none, false, product, nil},
		{"an empty account is no preference", OptionsRequest{}, AccountDefaults{}, false, product, nil},
		{"a v2.0 AMI raises the hop limit to 2", OptionsRequest{}, none, true,
			with(func(o *MetadataOptions) { o.HttpPutResponseHopLimit = 2 }), nil},
		{"the account beats the AMI", OptionsRequest{}, acct(func(d *AccountDefaults) { d.HttpTokens = Optional; d.HttpPutResponseHopLimit = 3 }), true,
			with(func(o *MetadataOptions) { o.HttpTokens = Optional; o.HttpPutResponseHopLimit = 3 }), nil},
		{"the account's endpoint and tags", OptionsRequest{}, acct(func(d *AccountDefaults) { d.HttpEndpoint = Disabled; d.InstanceMetadataTags = Enabled }), false,
			with(func(o *MetadataOptions) { o.HttpEndpoint = Disabled; o.InstanceMetadataTags = Enabled }), nil},
		{"the request beats the account", OptionsRequest{HttpTokens: ptr(Required), HttpPutResponseHopLimit: ptr(5)},
			acct(func(d *AccountDefaults) { d.HttpTokens = Optional; d.HttpPutResponseHopLimit = 3 }), false,
			with(func(o *MetadataOptions) { o.HttpPutResponseHopLimit = 5 }), nil},
		{"the request beats the AMI", OptionsRequest{HttpPutResponseHopLimit: ptr(1)}, none, true, product, nil},
		{"IPv6 only from the request", OptionsRequest{HttpProtocolIPv6: ptr(Enabled)}, none, false,
			with(func(o *MetadataOptions) { o.HttpProtocolIPv6 = Enabled }), nil},
		{"enforcement refuses optional tokens from the request", OptionsRequest{HttpTokens: ptr(Optional)},
			acct(func(d *AccountDefaults) { d.HttpTokensEnforced = Enabled }), false, MetadataOptions{}, ErrTokensEnforced},
		{"enforcement refuses optional tokens from the account", OptionsRequest{},
			acct(func(d *AccountDefaults) { d.HttpTokens = Optional; d.HttpTokensEnforced = Enabled }), false, MetadataOptions{}, ErrTokensEnforced},
		{"enforcement accepts required tokens", OptionsRequest{},
			acct(func(d *AccountDefaults) { d.HttpTokensEnforced = Enabled }), false, product, nil},
		{"a bad value in the request is invalid", OptionsRequest{HttpTokens: ptr("sometimes")}, none, false, MetadataOptions{}, ErrInvalid},
		{"a hop limit over 64 is invalid", OptionsRequest{HttpPutResponseHopLimit: ptr(65)}, none, false, MetadataOptions{}, ErrInvalid},
		{"a hop limit of 0 is invalid", OptionsRequest{HttpPutResponseHopLimit: ptr(0)}, none, false, MetadataOptions{}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LaunchOptions(tc.req, tc.acct, tc.amiV2)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("options %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestApplyKeepsWhatIsNotGiven(t *testing.T) {
	base := MetadataOptions{HttpTokens: Optional, HttpEndpoint: Enabled, HttpPutResponseHopLimit: 2,
		HttpProtocolIPv6: Enabled, InstanceMetadataTags: Enabled}
	tests := []struct {
		name string
		req  OptionsRequest
		want MetadataOptions
	}{
		{"nothing given changes nothing", OptionsRequest{}, base},
		{"tokens", OptionsRequest{HttpTokens: ptr(Required)}, MetadataOptions{Required, Enabled, 2, Enabled, Enabled}},
		{"endpoint", OptionsRequest{HttpEndpoint: ptr(Disabled)}, MetadataOptions{Optional, Disabled, 2, Enabled, Enabled}},
		{"hop limit", OptionsRequest{HttpPutResponseHopLimit: ptr(64)}, MetadataOptions{Optional, Enabled, 64, Enabled, Enabled}},
		{"ipv6", OptionsRequest{HttpProtocolIPv6: ptr(Disabled)}, MetadataOptions{Optional, Enabled, 2, Disabled, Enabled}},
		{"tags", OptionsRequest{InstanceMetadataTags: ptr(Disabled)}, MetadataOptions{Optional, Enabled, 2, Enabled, Disabled}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := base.Apply(tc.req); got != tc.want {
				t.Fatalf("%+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	good := MetadataOptions{HttpTokens: Required, HttpEndpoint: Enabled, HttpPutResponseHopLimit: 1,
		HttpProtocolIPv6: Disabled, InstanceMetadataTags: Disabled}
	opts := []struct {
		name string
		f    func(*MetadataOptions)
		ok   bool
	}{
		{"the product default", func(*MetadataOptions) {}, true},
		{"hop limit 64", func(o *MetadataOptions) { o.HttpPutResponseHopLimit = 64 }, true},
		{"hop limit 65", func(o *MetadataOptions) { o.HttpPutResponseHopLimit = 65 }, false},
		{"hop limit 0", func(o *MetadataOptions) { o.HttpPutResponseHopLimit = 0 }, false},
		{"no-preference is not an instance value", func(o *MetadataOptions) { o.HttpTokens = NoPreference }, false},
		{"empty tokens", func(o *MetadataOptions) { o.HttpTokens = "" }, false},
		{"endpoint", func(o *MetadataOptions) { o.HttpEndpoint = "on" }, false},
		{"ipv6", func(o *MetadataOptions) { o.HttpProtocolIPv6 = "yes" }, false},
		{"tags", func(o *MetadataOptions) { o.InstanceMetadataTags = "Enabled" }, false},
	}
	for _, tc := range opts {
		t.Run("instance/"+tc.name, func(t *testing.T) {
			o := good
			tc.f(&o)
			if err := o.Validate(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", o, err, tc.ok)
			}
		})
	}
	acct := []struct {
		name string
		f    func(*AccountDefaults)
		ok   bool
	}{
		{"no preference anywhere", func(*AccountDefaults) {}, true},
		{"hop limit -1 is no preference", func(d *AccountDefaults) { d.HttpPutResponseHopLimit = -1 }, true},
		{"hop limit 0", func(d *AccountDefaults) { d.HttpPutResponseHopLimit = 0 }, false},
		{"hop limit 65", func(d *AccountDefaults) { d.HttpPutResponseHopLimit = 65 }, false},
		{"tokens required", func(d *AccountDefaults) { d.HttpTokens = Required }, true},
		{"tokens bad", func(d *AccountDefaults) { d.HttpTokens = "always" }, false},
		{"enforced bad", func(d *AccountDefaults) { d.HttpTokensEnforced = Required }, false},
		{"endpoint bad", func(d *AccountDefaults) { d.HttpEndpoint = Optional }, false},
		{"tags bad", func(d *AccountDefaults) { d.InstanceMetadataTags = "" }, false},
	}
	for _, tc := range acct {
		t.Run("account/"+tc.name, func(t *testing.T) {
			d := DefaultAccountDefaults()
			tc.f(&d)
			if err := d.Validate(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", d, err, tc.ok)
			}
		})
	}
}

func TestValidMetadataTagKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"Name": true, "env:prod": true, "a+b-c=d.e,f_g:h@i": true, "0": true,
		"": false, ".": false, "..": false, "_index": false, "a b": false, "a/b": false, "é": false, "a*": false,
	} {
		if got := ValidMetadataTagKey(key); got != ok {
			t.Errorf("ValidMetadataTagKey(%q) = %v, want %v", key, got, ok)
		}
	}
}
