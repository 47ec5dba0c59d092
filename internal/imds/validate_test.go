package imds

import (
	"errors"
	"strings"
	"testing"
)

func validInstance() *Instance {
	return &Instance{
		InstanceID: "i-0123456789abcdef0", AccountID: "123456789012", State: StateRunning,
		MetadataOptions: MetadataOptions{HttpTokens: Required, HttpEndpoint: Enabled, HttpPutResponseHopLimit: 1,
			HttpProtocolIPv6: Disabled, InstanceMetadataTags: Disabled},
		NetworkInterfaces: []NetworkInterface{{MAC: "02:00:00:00:00:01", PrivateIPv4s: []string{"192.0.2.10"}, IPv6s: []string{"2001:db8::10"}}},
	}
}

func TestInstanceValidate(t *testing.T) {
	tests := []struct {
		name string
		f    func(*Instance)
		want string // "" for valid; else a part of the error
	}{
		{"a valid instance", func(*Instance) {}, ""},
		{"8-digit id", func(in *Instance) { in.InstanceID = "i-01234567" }, ""},
		{"id with upper case", func(in *Instance) { in.InstanceID = "i-0123456789ABCDEF0" }, "instance id"},
		{"id of 10 digits", func(in *Instance) { in.InstanceID = "i-0123456789" }, "instance id"},
		{"account of 11 digits", func(in *Instance) { in.AccountID = "12345678901" }, "account id"},
		{"unknown state", func(in *Instance) { in.State = "rebooting" }, "state"},
		{"bad options", func(in *Instance) { in.MetadataOptions.HttpTokens = "maybe" }, "HttpTokens"},
		{"user data at the limit", func(in *Instance) { in.UserData = make([]byte, MaxUserData) }, ""},
		{"user data over the limit", func(in *Instance) { in.UserData = make([]byte, MaxUserData+1) }, "user data"},
		{"upper-case MAC", func(in *Instance) { in.NetworkInterfaces[0].MAC = "02:00:00:00:00:AB" }, "MAC"},
		{"two interfaces at index 0", func(in *Instance) {
			in.NetworkInterfaces = append(in.NetworkInterfaces, NetworkInterface{MAC: "02:00:00:00:00:02"})
		}, "device index"},
		{"one MAC twice", func(in *Instance) {
			in.NetworkInterfaces = append(in.NetworkInterfaces, NetworkInterface{DeviceIndex: 1, MAC: "02:00:00:00:00:01"})
		}, "MAC"},
		{"one address on two interfaces", func(in *Instance) {
			in.NetworkInterfaces = append(in.NetworkInterfaces, NetworkInterface{DeviceIndex: 1, MAC: "02:00:00:00:00:02", PrivateIPv4s: []string{"192.0.2.10"}})
		}, "used twice"},
		{"an IPv6 address as IPv4", func(in *Instance) { in.NetworkInterfaces[0].PrivateIPv4s = []string{"2001:db8::1"} }, "private IPv4"},
		{"a non-canonical IPv6 address", func(in *Instance) { in.NetworkInterfaces[0].IPv6s = []string{"2001:0db8::10"} }, "IPv6"},
		{"a mapped IPv4 as IPv6", func(in *Instance) { in.NetworkInterfaces[0].IPv6s = []string{"::ffff:192.0.2.1"} }, "IPv6"},
		{"a bad public address", func(in *Instance) { in.NetworkInterfaces[0].PublicIPv4 = "203.0.113" }, "public IPv4"},
		{"tag keys unchecked while tags are not served", func(in *Instance) { in.Tags = []Tag{{Key: "a b"}} }, ""},
		{"a bad tag key while tags are served", func(in *Instance) {
			in.MetadataOptions.InstanceMetadataTags = Enabled
			in.Tags = []Tag{{Key: "a b"}}
		}, "tag key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := validInstance()
			tc.f(in)
			err := in.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalid about %q", err, tc.want)
			}
		})
	}
}
