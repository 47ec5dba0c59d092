package tfprovider

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// tagMap is a tags attribute as a Go map (empty for null or unknown).
func tagMap(ctx context.Context, m types.Map) (map[string]string, diag.Diagnostics) {
	out := map[string]string{}
	if m.IsNull() || m.IsUnknown() {
		return out, nil
	}
	diags := m.ElementsAs(ctx, &out, false)
	return out, diags
}

// sortedKeys makes requests deterministic, for logs and tests.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// base64Validator checks user_data_base64 at plan time, before the control
// plane would refuse it.
type base64Validator struct{}

func (base64Validator) Description(context.Context) string { return "must be valid base64" }

func (v base64Validator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (base64Validator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := base64.StdEncoding.DecodeString(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "invalid base64", fmt.Sprintf("%s is not valid base64: %v", req.Path, err))
	}
}

// tagSpec is TagSpecifications for a Create call (nil without tags).
func tagSpec(ctx context.Context, rt ec2types.ResourceType, m types.Map) ([]ec2types.TagSpecification, diag.Diagnostics) {
	tags, diags := tagMap(ctx, m)
	if len(tags) == 0 {
		return nil, diags
	}
	spec := ec2types.TagSpecification{ResourceType: rt}
	for _, k := range sortedKeys(tags) {
		spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return []ec2types.TagSpecification{spec}, diags
}

// tagsValue is what the control plane says a resource's tags are, null
// when it has none and prior was null too (a plan after apply is empty).
func tagsValue(tags []ec2types.Tag, prior types.Map) (types.Map, diag.Diagnostics) {
	if len(tags) == 0 && (prior.IsNull() || prior.IsUnknown()) {
		return types.MapNull(types.StringType), nil
	}
	m := map[string]attr.Value{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = types.StringValue(aws.ToString(t.Value))
	}
	return types.MapValue(types.StringType, m)
}
