package controlplane

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func (e *env) describeOne(id string) types.Instance {
	e.t.Helper()
	out, err := e.client.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Reservations[0].Instances[0]
}

func TestModifyInstanceMetadataOptionsPendingThenApplied(t *testing.T) {
	e := newEnv(t, nil)
	id := *e.launch("192.0.2.1", nil).InstanceId
	e.applied.Store(e.revision())
	if st := e.describeOne(id).MetadataOptions.State; st != types.InstanceMetadataOptionsStateApplied {
		t.Fatalf("before modification: %s", st)
	}

	out, err := e.client.ModifyInstanceMetadataOptions(context.Background(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(id), HttpTokens: types.HttpTokensStateOptional, HttpPutResponseHopLimit: aws.Int32(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	o := out.InstanceMetadataOptions
	if *out.InstanceId != id || o.State != types.InstanceMetadataOptionsStatePending || o.HttpTokens != types.HttpTokensStateOptional ||
		*o.HttpPutResponseHopLimit != 2 || o.HttpEndpoint != types.InstanceMetadataEndpointStateEnabled {
		t.Fatalf("answer %+v", o)
	}
	if st := e.describeOne(id).MetadataOptions.State; st != types.InstanceMetadataOptionsStatePending {
		t.Fatalf("before the data plane caught up: %s", st)
	}
	e.applied.Store(e.revision())
	d := e.describeOne(id).MetadataOptions
	if d.State != types.InstanceMetadataOptionsStateApplied || d.HttpTokens != types.HttpTokensStateOptional || *d.HttpPutResponseHopLimit != 2 {
		t.Fatalf("after the data plane caught up: %+v", d)
	}

	// Omitted fields keep their value.
	if _, err := e.client.ModifyInstanceMetadataOptions(context.Background(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(id), HttpEndpoint: types.InstanceMetadataEndpointStateDisabled,
	}); err != nil {
		t.Fatal(err)
	}
	got := e.stored(id).MetadataOptions
	want := imds.MetadataOptions{HttpTokens: "optional", HttpEndpoint: "disabled", HttpPutResponseHopLimit: 2, HttpProtocolIPv6: "disabled", InstanceMetadataTags: "disabled"}
	if got != want {
		t.Fatalf("stored %+v, want %+v", got, want)
	}
}

func TestModifyInstanceMetadataOptionsErrors(t *testing.T) {
	e := newEnv(t, nil)
	id := *e.launch("192.0.2.1", func(in *ec2.RunInstancesInput) { in.TagSpecifications = tagSpec("bad key", "v") }).InstanceId
	gone := *e.launch("192.0.2.2", nil).InstanceId
	if _, err := e.client.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{gone}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   *ec2.ModifyInstanceMetadataOptionsInput
		want string
	}{
		{"missing_instance_id", &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String("")}, "MissingParameter"},
		{"malformed_instance_id", &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String("i-nothex")}, "InvalidInstanceID.Malformed"},
		{"unknown_instance", &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String("i-0123456789abcdef0")}, "InvalidInstanceID.NotFound"},
		{"terminated_instance", &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(gone)}, "IncorrectInstanceState"},
		{"bad_tokens_value", &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpTokens: "maybe"}, "InvalidParameterValue"},
		{"hop_limit_zero", &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpPutResponseHopLimit: aws.Int32(0)}, "InvalidParameterValue"},
		{"enabling_tags_with_unservable_key", &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), InstanceMetadataTags: types.InstanceMetadataTagsStateEnabled}, "InvalidParameterValue"},
		{"dry_run", &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), DryRun: aws.Bool(true), HttpTokens: types.HttpTokensStateOptional}, "DryRunOperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.revision()
			_, err := e.client.ModifyInstanceMetadataOptions(context.Background(), tt.in)
			if got := code(t, err); got != tt.want {
				t.Fatalf("got %q (%v), want %q", got, err, tt.want)
			}
			if e.revision() != before {
				t.Errorf("a refused modification wrote to the store")
			}
		})
	}
}

func TestInstanceMetadataDefaults(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	get := func() *types.InstanceMetadataDefaultsResponse {
		t.Helper()
		out, err := e.client.GetInstanceMetadataDefaults(ctx, &ec2.GetInstanceMetadataDefaultsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return out.AccountLevel
	}
	if d := get(); d.HttpTokens != "" || d.HttpPutResponseHopLimit != nil || d.HttpEndpoint != "" || d.InstanceMetadataTags != "" {
		t.Fatalf("a new account has preferences: %+v", d)
	}
	out, err := e.client.ModifyInstanceMetadataDefaults(ctx, &ec2.ModifyInstanceMetadataDefaultsInput{
		HttpTokens: types.MetadataDefaultHttpTokensStateOptional, HttpPutResponseHopLimit: aws.Int32(4),
		InstanceMetadataTags: types.DefaultInstanceMetadataTagsStateEnabled,
	})
	if err != nil || !*out.Return {
		t.Fatalf("modify: %v", err)
	}
	d := get()
	if d.HttpTokens != types.HttpTokensStateOptional || *d.HttpPutResponseHopLimit != 4 || d.InstanceMetadataTags != types.InstanceMetadataTagsStateEnabled || d.HttpEndpoint != "" {
		t.Fatalf("defaults %+v", d)
	}

	// Precedence: the request beats the account default, which beats the
	// product default.
	acct := e.stored(*e.launch("192.0.2.1", nil).InstanceId).MetadataOptions
	if acct.HttpTokens != "optional" || acct.HttpPutResponseHopLimit != 4 || acct.InstanceMetadataTags != "enabled" || acct.HttpEndpoint != "enabled" {
		t.Errorf("launch with account defaults: %+v", acct)
	}
	req := e.stored(*e.launch("192.0.2.2", func(in *ec2.RunInstancesInput) {
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(1)}
	}).InstanceId).MetadataOptions
	if req.HttpTokens != "required" || req.HttpPutResponseHopLimit != 1 || req.InstanceMetadataTags != "enabled" {
		t.Errorf("launch with request options: %+v", req)
	}

	// no-preference and -1 clear a setting; omitted settings stay.
	if _, err := e.client.ModifyInstanceMetadataDefaults(ctx, &ec2.ModifyInstanceMetadataDefaultsInput{
		HttpTokens: types.MetadataDefaultHttpTokensStateNoPreference, HttpPutResponseHopLimit: aws.Int32(-1),
	}); err != nil {
		t.Fatal(err)
	}
	d = get()
	if d.HttpTokens != "" || d.HttpPutResponseHopLimit != nil || d.InstanceMetadataTags != types.InstanceMetadataTagsStateEnabled {
		t.Fatalf("after clearing: %+v", d)
	}
	cleared := e.stored(*e.launch("192.0.2.3", nil).InstanceId).MetadataOptions
	if cleared.HttpTokens != "required" || cleared.HttpPutResponseHopLimit != 1 {
		t.Errorf("launch after clearing: %+v", cleared)
	}

	for _, bad := range []*ec2.ModifyInstanceMetadataDefaultsInput{
		{HttpPutResponseHopLimit: aws.Int32(0)},
		{HttpPutResponseHopLimit: aws.Int32(65)},
		{HttpTokens: "sometimes"},
	} {
		_, err := e.client.ModifyInstanceMetadataDefaults(ctx, bad)
		if got := code(t, err); got != "InvalidParameterValue" {
			t.Errorf("%+v: got %q", bad, got)
		}
	}
}

func TestHttpTokensEnforced(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	legacy := *e.launch("192.0.2.1", func(in *ec2.RunInstancesInput) {
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateOptional}
	}).InstanceId
	modern := *e.launch("192.0.2.2", nil).InstanceId
	if _, err := e.client.ModifyInstanceMetadataDefaults(ctx, &ec2.ModifyInstanceMetadataDefaultsInput{
		HttpTokensEnforced: types.DefaultHttpTokensEnforcedStateEnabled,
	}); err != nil {
		t.Fatal(err)
	}
	out, err := e.client.GetInstanceMetadataDefaults(ctx, &ec2.GetInstanceMetadataDefaultsInput{})
	if err != nil || out.AccountLevel.HttpTokensEnforced != types.HttpTokensEnforcedStateEnabled {
		t.Fatalf("enforced not shown: %v %+v", err, out)
	}

	t.Run("launch_with_optional_is_refused", func(t *testing.T) {
		_, err := e.client.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), PrivateIpAddress: aws.String("192.0.2.3"),
			MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateOptional},
		})
		if got := code(t, err); got != "UnsupportedOperation" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("launch_with_defaults_is_allowed", func(t *testing.T) {
		e.launch("192.0.2.4", nil)
	})
	t.Run("modification_to_optional_is_refused", func(t *testing.T) {
		_, err := e.client.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(modern), HttpTokens: types.HttpTokensStateOptional})
		if got := code(t, err); got != "UnsupportedOperation" {
			t.Fatalf("got %q", got)
		}
		if e.stored(modern).MetadataOptions.HttpTokens != "required" {
			t.Fatal("refused modification was stored")
		}
	})
	t.Run("modification_leaving_legacy_optional_is_refused", func(t *testing.T) {
		_, err := e.client.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(legacy), HttpPutResponseHopLimit: aws.Int32(2)})
		if got := code(t, err); got != "UnsupportedOperation" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("requiring_tokens_on_legacy_instance_is_allowed", func(t *testing.T) {
		if _, err := e.client.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(legacy), HttpTokens: types.HttpTokensStateRequired}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("account_default_optional_does_not_bypass_enforcement", func(t *testing.T) {
		if _, err := e.client.ModifyInstanceMetadataDefaults(ctx, &ec2.ModifyInstanceMetadataDefaultsInput{HttpTokens: types.MetadataDefaultHttpTokensStateOptional}); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), PrivateIpAddress: aws.String("192.0.2.5"),
		})
		if got := code(t, err); got != "UnsupportedOperation" {
			t.Fatalf("got %q", got)
		}
	})
}
