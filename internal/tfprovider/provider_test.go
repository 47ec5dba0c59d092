package tfprovider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// The framework checks schemas when Terraform asks for them; a mistake
// (a computed attribute with a default missing, a validator on the wrong
// type) is a diagnostic here rather than at a user's first plan.
func TestProviderSchemaIsValid(t *testing.T) {
	srv, err := providerserver.NewProtocol6WithError(New("test", Options{})())()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Errorf("schema diagnostic: %s: %s", d.Summary, d.Detail)
	}
	want := map[string][]string{
		"frontdesk_instance": {"ami", "instance_type", "private_ip", "ipv6_addresses", "subnet_id", "key_name",
			"iam_instance_profile", "user_data", "user_data_base64", "tags", "host_id", "id"},
		"frontdesk_instance_metadata_defaults": {"http_tokens", "http_put_response_hop_limit", "http_endpoint", "instance_metadata_tags"},
		"frontdesk_key_pair":                   {"key_name", "public_key", "key_pair_id", "fingerprint", "tags"},
		"frontdesk_vpc":                        {"cidr_block", "tags"},
		"frontdesk_subnet":                     {"vpc_id", "cidr_block", "availability_zone", "tags"},
		"frontdesk_eip":                        {"instance", "public_ip", "allocation_id", "association_id", "tags"},
	}
	for name, attrs := range want {
		s, ok := resp.ResourceSchemas[name]
		if !ok {
			t.Errorf("no resource %s", name)
			continue
		}
		have := map[string]bool{}
		for _, a := range s.Block.Attributes {
			have[a.Name] = true
		}
		for _, a := range attrs {
			if !have[a] {
				t.Errorf("%s has no attribute %s (aws_instance's name)", name, a)
			}
		}
	}
	inst := resp.ResourceSchemas["frontdesk_instance"]
	var block *tfprotov6.SchemaNestedBlock
	for _, b := range inst.Block.BlockTypes {
		if b.TypeName == "metadata_options" {
			block = b
		}
	}
	if block == nil {
		t.Fatal("frontdesk_instance has no metadata_options block")
	}
	var got []string
	for _, a := range block.Block.Attributes {
		got = append(got, a.Name)
	}
	if s := strings.Join(got, ","); s != "http_endpoint,http_protocol_ipv6,http_put_response_hop_limit,http_tokens,instance_metadata_tags" {
		t.Errorf("metadata_options attributes %s", s)
	}
	if _, ok := resp.DataSourceSchemas["frontdesk_instance"]; !ok {
		t.Error("no data source frontdesk_instance")
	}
}

func TestAPIErrorShowsEC2CodeAndMessage(t *testing.T) {
	err := fmt.Errorf("operation error: %w", &apiclient.APIError{StatusCode: 400, Code: "InvalidIPAddress.InUse", Message: "Address 127.0.0.5 is in use."})
	d := apiError("creating frontdesk instance", err)
	if d.Summary() != "creating frontdesk instance" {
		t.Errorf("summary %q", d.Summary())
	}
	if !strings.HasPrefix(d.Detail(), "InvalidIPAddress.InUse: Address 127.0.0.5 is in use.\n") {
		t.Errorf("detail %q does not start with EC2's code and message", d.Detail())
	}
	plain := apiError("reading", errors.New("dial tcp: connection refused"))
	if plain.Detail() != "dial tcp: connection refused" {
		t.Errorf("non-API error detail %q", plain.Detail())
	}
}

func TestProfileNameFromARN(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:iam::123456789012:instance-profile/web-role":        "web-role",
		"arn:aws:iam::123456789012:instance-profile/team/a/web-role": "web-role",
		"arn:aws-us-gov:iam::123456789012:instance-profile/gov-role": "gov-role",
		"not-an-arn": "not-an-arn",
	} {
		if got := profileName(arn); got != want {
			t.Errorf("profileName(%q) = %q, want %q", arn, got, want)
		}
	}
}

// An empty value from the control plane stays in the form the
// configuration gave it, so that the plan after apply is empty.
func TestEmptyKeepsTheConfiguredForm(t *testing.T) {
	cases := []struct {
		name  string
		v     string
		prior types.String
		want  types.String
	}{
		{"value_wins", "node-a", types.StringNull(), types.StringValue("node-a")},
		{"empty_after_null_is_null", "", types.StringNull(), types.StringNull()},
		{"empty_after_unknown_is_null", "", types.StringUnknown(), types.StringNull()},
		{"empty_after_empty_stays_empty", "", types.StringValue(""), types.StringValue("")},
		{"empty_after_a_value_is_null", "", types.StringValue("node-a"), types.StringNull()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := emptyAsNull(tc.v, tc.prior); !got.Equal(tc.want) {
				t.Errorf("emptyAsNull(%q, %v) = %v, want %v", tc.v, tc.prior, got, tc.want)
			}
		})
	}
}
