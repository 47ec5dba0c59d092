package tfprovider

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// noPreference is EC2's "no account default" value; hopNoPreference is its
// hop-limit form.
const (
	noPreference    = "no-preference"
	hopNoPreference = -1
)

// defaultsModel is frontdesk_instance_metadata_defaults, as
// aws_ec2_instance_metadata_defaults.
type defaultsModel struct {
	ID                      types.String `tfsdk:"id"`
	HttpTokens              types.String `tfsdk:"http_tokens"`
	HttpPutResponseHopLimit types.Int64  `tfsdk:"http_put_response_hop_limit"`
	HttpEndpoint            types.String `tfsdk:"http_endpoint"`
	InstanceMetadataTags    types.String `tfsdk:"instance_metadata_tags"`
	HttpTokensEnforced      types.String `tfsdk:"http_tokens_enforced"`
}

type defaultsResource struct {
	client *apiclient.Client
}

var (
	_ resource.ResourceWithConfigure   = (*defaultsResource)(nil)
	_ resource.ResourceWithImportState = (*defaultsResource)(nil)
)

func newMetadataDefaultsResource() resource.Resource { return &defaultsResource{} }

func (r *defaultsResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_instance_metadata_defaults"
}

func (r *defaultsResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	cl, ok := clientFrom(req.ProviderData)
	if !ok {
		resp.Diagnostics.AddError("unexpected provider data", fmt.Sprintf("got %T, want *apiclient.Client", req.ProviderData))
		return
	}
	r.client = cl
}

func (r *defaultsResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	choice := func(desc string, values ...string) schema.StringAttribute {
		return schema.StringAttribute{
			Optional: true, Computed: true, Description: desc,
			Default:    stringdefault.StaticString(noPreference),
			Validators: []validator.String{stringvalidator.OneOf(append(values, noPreference)...)},
		}
	}
	resp.Schema = schema.Schema{
		Description: "The account-level metadata defaults new instances launch with (one per control plane). " +
			"Destroying it sets every default back to no-preference. Existing instances keep their options.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, Description: "The region the defaults belong to.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"http_tokens":            choice("required, optional or no-preference.", "required", "optional"),
			"http_endpoint":          choice("enabled, disabled or no-preference.", "enabled", "disabled"),
			"instance_metadata_tags": choice("enabled, disabled or no-preference.", "enabled", "disabled"),
			"http_tokens_enforced": choice("enabled (instances may not launch or be changed to HttpTokens=optional), "+
				"disabled or no-preference.", "enabled", "disabled"),
			"http_put_response_hop_limit": schema.Int64Attribute{
				Optional: true, Computed: true, Description: "1-64, or -1 for no preference.",
				Default: int64default.StaticInt64(hopNoPreference),
				Validators: []validator.Int64{int64validator.Any(
					int64validator.Between(1, 64), int64validator.OneOf(hopNoPreference))},
			},
		},
	}
}

func (r *defaultsResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan defaultsModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, plan, &resp.State, &resp.Diagnostics)
}

func (r *defaultsResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan defaultsModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, plan, &resp.State, &resp.Diagnostics)
}

// apply sends every setting of plan (unset ones are no-preference, so a
// setting removed from the configuration is cleared) and records what the
// control plane then says.
func (r *defaultsResource) apply(ctx context.Context, plan defaultsModel, state *tfsdk.State, diags *diag.Diagnostics) {
	if r.client == nil {
		diags.Append(notConfigured())
		return
	}
	_, err := r.client.EC2().ModifyInstanceMetadataDefaults(ctx, &ec2.ModifyInstanceMetadataDefaultsInput{
		HttpTokens:              ec2types.MetadataDefaultHttpTokensState(plan.HttpTokens.ValueString()),
		HttpEndpoint:            ec2types.DefaultInstanceMetadataEndpointState(plan.HttpEndpoint.ValueString()),
		InstanceMetadataTags:    ec2types.DefaultInstanceMetadataTagsState(plan.InstanceMetadataTags.ValueString()),
		HttpTokensEnforced:      ec2types.DefaultHttpTokensEnforcedState(plan.HttpTokensEnforced.ValueString()),
		HttpPutResponseHopLimit: aws.Int32(int32(plan.HttpPutResponseHopLimit.ValueInt64())),
	})
	if err != nil {
		diags.Append(apiError("modifying instance metadata defaults", err))
		return
	}
	got, err := r.read(ctx)
	if err != nil {
		diags.Append(apiError("reading instance metadata defaults", err))
		return
	}
	diags.Append(state.Set(ctx, got)...)
}

func (r *defaultsResource) Read(ctx context.Context, _ resource.ReadRequest, resp *resource.ReadResponse) {
	if r.client == nil {
		resp.Diagnostics.Append(notConfigured())
		return
	}
	got, err := r.read(ctx)
	if err != nil {
		resp.Diagnostics.Append(apiError("reading instance metadata defaults", err))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, got)...)
}

// Delete clears every default, as the AWS provider does.
func (r *defaultsResource) Delete(ctx context.Context, _ resource.DeleteRequest, resp *resource.DeleteResponse) {
	if r.client == nil {
		resp.Diagnostics.Append(notConfigured())
		return
	}
	_, err := r.client.EC2().ModifyInstanceMetadataDefaults(ctx, &ec2.ModifyInstanceMetadataDefaultsInput{
		HttpTokens:              ec2types.MetadataDefaultHttpTokensStateNoPreference,
		HttpEndpoint:            ec2types.DefaultInstanceMetadataEndpointStateNoPreference,
		InstanceMetadataTags:    ec2types.DefaultInstanceMetadataTagsStateNoPreference,
		HttpTokensEnforced:      ec2types.DefaultHttpTokensEnforcedStateNoPreference,
		HttpPutResponseHopLimit: aws.Int32(hopNoPreference),
	})
	if err != nil {
		resp.Diagnostics.Append(apiError("clearing instance metadata defaults", err))
	}
}

// ImportState takes any id (the region, by convention): there is one set
// of defaults per control plane.
func (r *defaultsResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// read is the account's defaults, a setting without preference shown as
// no-preference (-1 for the hop limit).
func (r *defaultsResource) read(ctx context.Context) (defaultsModel, error) {
	out, err := r.client.EC2().GetInstanceMetadataDefaults(ctx, &ec2.GetInstanceMetadataDefaultsInput{})
	if err != nil {
		return defaultsModel{}, err
	}
	a := out.AccountLevel
	if a == nil {
		a = &ec2types.InstanceMetadataDefaultsResponse{}
	}
	pref := func(v string) types.String {
		if v == "" {
			return types.StringValue(noPreference)
		}
		return types.StringValue(v)
	}
	hop := int64(hopNoPreference)
	if a.HttpPutResponseHopLimit != nil && *a.HttpPutResponseHopLimit > 0 {
		hop = int64(*a.HttpPutResponseHopLimit)
	}
	return defaultsModel{
		ID:                      types.StringValue(r.client.Region()),
		HttpTokens:              pref(string(a.HttpTokens)),
		HttpEndpoint:            pref(string(a.HttpEndpoint)),
		InstanceMetadataTags:    pref(string(a.InstanceMetadataTags)),
		HttpTokensEnforced:      pref(string(a.HttpTokensEnforced)),
		HttpPutResponseHopLimit: types.Int64Value(hop),
	}, nil
}
