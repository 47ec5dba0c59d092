package tfprovider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// appliedTimeout bounds the wait for the data plane to serve new metadata
// options (DescribeInstances says "applied"): a daemon that never catches
// up is an error, not a hang.
const appliedTimeout = 2 * time.Minute

// pollInterval is how often a wait asks the control plane again.
const pollInterval = 100 * time.Millisecond

// instanceModel is frontdesk_instance: aws_instance's names wherever the
// meaning is the same.
type instanceModel struct {
	ID                 types.String `tfsdk:"id"`
	AMI                types.String `tfsdk:"ami"`
	InstanceType       types.String `tfsdk:"instance_type"`
	PrivateIP          types.String `tfsdk:"private_ip"`
	IPv6Addresses      types.List   `tfsdk:"ipv6_addresses"`
	SubnetID           types.String `tfsdk:"subnet_id"`
	KeyName            types.String `tfsdk:"key_name"`
	IAMInstanceProfile types.String `tfsdk:"iam_instance_profile"`
	UserData           types.String `tfsdk:"user_data"`
	UserDataBase64     types.String `tfsdk:"user_data_base64"`
	Tags               types.Map    `tfsdk:"tags"`
	HostID             types.String `tfsdk:"host_id"`
	PrivateDNS         types.String `tfsdk:"private_dns"`
	VPCID              types.String `tfsdk:"vpc_id"`
	InstanceState      types.String `tfsdk:"instance_state"`
	MetadataOptions    types.List   `tfsdk:"metadata_options"`
}

// metadataOptionsModel is one metadata_options block.
type metadataOptionsModel struct {
	HttpTokens              types.String `tfsdk:"http_tokens"`
	HttpPutResponseHopLimit types.Int64  `tfsdk:"http_put_response_hop_limit"`
	HttpEndpoint            types.String `tfsdk:"http_endpoint"`
	InstanceMetadataTags    types.String `tfsdk:"instance_metadata_tags"`
	HttpProtocolIPv6        types.String `tfsdk:"http_protocol_ipv6"`
}

// metadataOptionsType is the object type of a metadata_options element.
var metadataOptionsType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"http_tokens":                 types.StringType,
	"http_put_response_hop_limit": types.Int64Type,
	"http_endpoint":               types.StringType,
	"instance_metadata_tags":      types.StringType,
	"http_protocol_ipv6":          types.StringType,
}}

type instanceResource struct {
	client *apiclient.Client
}

var (
	_ resource.ResourceWithConfigure   = (*instanceResource)(nil)
	_ resource.ResourceWithImportState = (*instanceResource)(nil)
)

func newInstanceResource() resource.Resource { return &instanceResource{} }

func (r *instanceResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_instance"
}

func (r *instanceResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	cl, ok := clientFrom(req.ProviderData)
	if !ok {
		resp.Diagnostics.AddError("unexpected provider data", fmt.Sprintf("got %T, want *apiclient.Client", req.ProviderData))
		return
	}
	r.client = cl
}

func (r *instanceResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	enabledDisabled := []validator.String{stringvalidator.OneOf("enabled", "disabled")}
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace(), stringplanmodifier.UseStateForUnknown()}
	// Inside metadata_options, a null prior value means there was no block
	// before: the setting is then the control plane's to choose (unknown),
	// not null.
	keepNonNull := []planmodifier.String{stringplanmodifier.UseNonNullStateForUnknown()}
	resp.Schema = schema.Schema{
		Description: "An instance registered with frontdesk: the metadata, credentials and identity its guest gets " +
			"from 169.254.169.254. Arguments are named as on aws_instance. Changing metadata_options, tags, user data, " +
			"iam_instance_profile or host_id updates the instance in place; changing ami, instance_type, key_name or an address replaces it.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, Description: "Instance id (i-…).",
				PlanModifiers: keep,
			},
			"ami": schema.StringAttribute{
				Required: true, Description: "Image id (ami-…) the guest sees as ami-id.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"instance_type": schema.StringAttribute{
				Optional: true, Computed: true, Description: "Instance type (default t3.micro).",
				PlanModifiers: replace,
			},
			"private_ip": schema.StringAttribute{
				Optional: true, Computed: true,
				Description: "Primary IPv4 address: frontdesk identifies the guest by it. " +
					"Left out, the control plane allocates one from its allocation subnet, if it has one.",
				PlanModifiers: replace,
			},
			"ipv6_addresses": schema.ListAttribute{
				ElementType: types.StringType, Optional: true, Computed: true,
				Description:   "IPv6 addresses of the primary interface.",
				PlanModifiers: []planmodifier.List{listplanmodifier.RequiresReplace(), listplanmodifier.UseStateForUnknown()},
			},
			"subnet_id": schema.StringAttribute{
				Optional: true, Computed: true, Description: "Subnet id (default: derived from the address).",
				PlanModifiers: replace,
			},
			"key_name": schema.StringAttribute{
				Optional: true, Description: "Key pair served as public-keys/0.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"iam_instance_profile": schema.StringAttribute{
				Optional: true, Description: "Instance profile name; its role's credentials are served to the guest.",
			},
			"user_data": schema.StringAttribute{
				Optional: true, Description: "User data as text (sent base64-encoded).",
				Validators: []validator.String{stringvalidator.ConflictsWith(path.MatchRoot("user_data_base64"))},
			},
			"user_data_base64": schema.StringAttribute{
				Optional: true, Description: "User data, base64-encoded (for binary user data).",
				Validators: []validator.String{base64Validator{}},
			},
			"tags": schema.MapAttribute{
				ElementType: types.StringType, Optional: true, Description: "Tags of the instance.",
			},
			"host_id": schema.StringAttribute{
				Optional: true, Computed: true,
				Description:   "Placement host: in fleet mode, the frontdesk node that serves the instance. Changing it moves the instance in place.",
				PlanModifiers: keep,
			},
			"private_dns": schema.StringAttribute{
				Computed: true, Description: "Private DNS name.", PlanModifiers: keep,
			},
			"vpc_id": schema.StringAttribute{
				Computed: true, Description: "VPC id.", PlanModifiers: keep,
			},
			"instance_state": schema.StringAttribute{
				Computed: true, Description: "Instance state (running).", PlanModifiers: keep,
			},
		},
		Blocks: map[string]schema.Block{
			"metadata_options": schema.ListNestedBlock{
				Description: "Instance metadata service options. Settings left out are the control plane's " +
					"(account defaults, else EC2's) and are shown after apply. Without the block, the options are not managed.",
				Validators: []validator.List{listvalidator.SizeAtMost(1)},
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"http_tokens": schema.StringAttribute{
						Optional: true, Computed: true,
						Description:   "required (IMDSv2 only: tokenless calls get 401) or optional.",
						Validators:    []validator.String{stringvalidator.OneOf("required", "optional")},
						PlanModifiers: keepNonNull,
					},
					"http_put_response_hop_limit": schema.Int64Attribute{
						Optional: true, Computed: true,
						Description:   "IP TTL of the token response, 1-64.",
						Validators:    []validator.Int64{int64validator.Between(1, 64)},
						PlanModifiers: []planmodifier.Int64{int64planmodifier.UseNonNullStateForUnknown()},
					},
					"http_endpoint": schema.StringAttribute{
						Optional: true, Computed: true, Description: "enabled or disabled (the guest gets 403).",
						Validators: enabledDisabled, PlanModifiers: keepNonNull,
					},
					"instance_metadata_tags": schema.StringAttribute{
						Optional: true, Computed: true, Description: "enabled serves the tags under meta-data/tags/instance.",
						Validators: enabledDisabled, PlanModifiers: keepNonNull,
					},
					"http_protocol_ipv6": schema.StringAttribute{
						Optional: true, Computed: true, Description: "enabled serves the IPv6 endpoint.",
						Validators: enabledDisabled, PlanModifiers: keepNonNull,
					},
				}},
			},
		},
	}
}

func (r *instanceResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if r.client == nil {
		resp.Diagnostics.Append(notConfigured())
		return
	}
	var plan instanceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	in, diags := runInput(ctx, plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := r.client.EC2().RunInstances(ctx, in)
	if err != nil {
		resp.Diagnostics.Append(apiError("creating frontdesk instance", err))
		return
	}
	if len(out.Instances) != 1 || out.Instances[0].InstanceId == nil {
		resp.Diagnostics.AddError("creating frontdesk instance", fmt.Sprintf("RunInstances answered %d instances, want 1", len(out.Instances)))
		return
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	// Saved before anything else can fail: the instance exists now, and
	// Terraform must know it to destroy or retry it.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
	inst, err := r.waitApplied(ctx, id)
	if err != nil {
		resp.Diagnostics.Append(apiError("waiting for frontdesk instance "+id+" to be served", err))
		return
	}
	state := plan
	state.ID = types.StringValue(id)
	resp.Diagnostics.Append(flattenInstance(ctx, inst, &state)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *instanceResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.client == nil {
		resp.Diagnostics.Append(notConfigured())
		return
	}
	var state instanceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	inst, err := describeInstance(ctx, r.client, state.ID.ValueString())
	if errors.Is(err, errGone) {
		// Terminated or unknown: Terraform plans to create it again.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(apiError("reading frontdesk instance "+state.ID.ValueString(), err))
		return
	}
	resp.Diagnostics.Append(flattenInstance(ctx, inst, &state)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *instanceResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	if r.client == nil {
		resp.Diagnostics.Append(notConfigured())
		return
	}
	var plan, prior instanceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := prior.ID.ValueString()
	ec := r.client.EC2()

	// Each change is its own EC2 action, as on AWS; one that fails stops
	// the update, and the next refresh records what did change. The
	// metadata options go last: waiting for the data plane to apply them
	// then also covers the changes before them (the data plane follows the
	// store in revision order), so the guest sees all of it once apply
	// returns. Tags go first, for the same reason and because enabling
	// instance_metadata_tags checks the keys the instance has then.
	if !r.updateTags(ctx, id, prior.Tags, plan.Tags, &resp.Diagnostics) {
		return
	}
	if newUD, oldUD := userDataBase64(plan), userDataBase64(prior); newUD != oldUD {
		_, err := ec.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
			InstanceId: aws.String(id),
			Attribute:  ec2types.InstanceAttributeNameUserData,
			Value:      aws.String(newUD),
		})
		if err != nil {
			resp.Diagnostics.Append(apiError("modifying user data of frontdesk instance "+id, err))
			return
		}
	}
	if !plan.IAMInstanceProfile.Equal(prior.IAMInstanceProfile) {
		if err := replaceProfile(ctx, ec, id, plan.IAMInstanceProfile.ValueString()); err != nil {
			resp.Diagnostics.Append(apiError("changing the instance profile of frontdesk instance "+id, err))
			return
		}
	}
	if !plan.HostID.IsUnknown() && !plan.HostID.Equal(prior.HostID) {
		_, err := ec.ModifyInstancePlacement(ctx, &ec2.ModifyInstancePlacementInput{
			InstanceId: aws.String(id),
			HostId:     aws.String(plan.HostID.ValueString()),
		})
		if err != nil {
			resp.Diagnostics.Append(apiError("moving frontdesk instance "+id, err))
			return
		}
	}
	planOpts, diags := metadataOptionsOf(ctx, plan.MetadataOptions)
	resp.Diagnostics.Append(diags...)
	priorOpts, diags := metadataOptionsOf(ctx, prior.MetadataOptions)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	optionsChanged := planOpts != nil && (priorOpts == nil || *planOpts != *priorOpts)
	if optionsChanged {
		o := optionsRequest(*planOpts)
		_, err := ec.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
			InstanceId:              aws.String(id),
			HttpTokens:              o.HttpTokens,
			HttpEndpoint:            o.HttpEndpoint,
			HttpProtocolIpv6:        o.HttpProtocolIpv6,
			InstanceMetadataTags:    o.InstanceMetadataTags,
			HttpPutResponseHopLimit: o.HttpPutResponseHopLimit,
		})
		if err != nil {
			resp.Diagnostics.Append(apiError("modifying metadata options of frontdesk instance "+id, err))
			return
		}
	}

	var inst *ec2types.Instance
	var err error
	if optionsChanged {
		inst, err = r.waitApplied(ctx, id)
	} else {
		inst, err = describeInstance(ctx, r.client, id)
	}
	if err != nil {
		resp.Diagnostics.Append(apiError("reading frontdesk instance "+id, err))
		return
	}
	state := plan
	resp.Diagnostics.Append(flattenInstance(ctx, inst, &state)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *instanceResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if r.client == nil {
		resp.Diagnostics.Append(notConfigured())
		return
	}
	var state instanceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := state.ID.ValueString()
	_, err := r.client.EC2().TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil && apiclient.ErrorCode(err) != "InvalidInstanceID.NotFound" {
		resp.Diagnostics.Append(apiError("terminating frontdesk instance "+id, err))
	}
}

// ImportState takes an instance id. The metadata_options block is filled
// in by the Read that follows, as the AWS provider does.
func (r *instanceResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
	empty := metadataOptionsModel{
		HttpTokens: types.StringNull(), HttpPutResponseHopLimit: types.Int64Null(), HttpEndpoint: types.StringNull(),
		InstanceMetadataTags: types.StringNull(), HttpProtocolIPv6: types.StringNull(),
	}
	l, diags := types.ListValueFrom(ctx, metadataOptionsType, []metadataOptionsModel{empty})
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("metadata_options"), l)...)
}

// runInput builds RunInstances from a plan: only what the configuration
// gives, so the control plane's defaults fill the rest.
func runInput(ctx context.Context, plan instanceModel) (*ec2.RunInstancesInput, diag.Diagnostics) {
	var diags diag.Diagnostics
	in := &ec2.RunInstancesInput{
		ImageId:  aws.String(plan.AMI.ValueString()),
		MinCount: aws.Int32(1),
		MaxCount: aws.Int32(1),
	}
	if v := known(plan.InstanceType); v != "" {
		in.InstanceType = ec2types.InstanceType(v)
	}
	if v := known(plan.PrivateIP); v != "" {
		in.PrivateIpAddress = aws.String(v)
	}
	if !plan.IPv6Addresses.IsNull() && !plan.IPv6Addresses.IsUnknown() {
		var addrs []string
		diags.Append(plan.IPv6Addresses.ElementsAs(ctx, &addrs, false)...)
		for _, a := range addrs {
			in.Ipv6Addresses = append(in.Ipv6Addresses, ec2types.InstanceIpv6Address{Ipv6Address: aws.String(a)})
		}
	}
	if v := known(plan.SubnetID); v != "" {
		in.SubnetId = aws.String(v)
	}
	if v := known(plan.KeyName); v != "" {
		in.KeyName = aws.String(v)
	}
	if v := known(plan.IAMInstanceProfile); v != "" {
		in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String(v)}
	}
	if ud := userDataBase64(plan); ud != "" {
		in.UserData = aws.String(ud)
	}
	if v := known(plan.HostID); v != "" {
		in.Placement = &ec2types.Placement{HostId: aws.String(v)}
	}
	tags, d := tagMap(ctx, plan.Tags)
	diags.Append(d...)
	if len(tags) > 0 {
		spec := ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeInstance}
		for _, k := range sortedKeys(tags) {
			spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
		in.TagSpecifications = []ec2types.TagSpecification{spec}
	}
	opts, d := metadataOptionsOf(ctx, plan.MetadataOptions)
	diags.Append(d...)
	if opts != nil {
		in.MetadataOptions = optionsRequest(*opts)
	}
	return in, diags
}

// optionsRequest sends the settings that are known; unknown ones (not in
// the configuration, no prior state) are the control plane's to choose.
func optionsRequest(m metadataOptionsModel) *ec2types.InstanceMetadataOptionsRequest {
	r := &ec2types.InstanceMetadataOptionsRequest{
		HttpTokens:           ec2types.HttpTokensState(known(m.HttpTokens)),
		HttpEndpoint:         ec2types.InstanceMetadataEndpointState(known(m.HttpEndpoint)),
		HttpProtocolIpv6:     ec2types.InstanceMetadataProtocolState(known(m.HttpProtocolIPv6)),
		InstanceMetadataTags: ec2types.InstanceMetadataTagsState(known(m.InstanceMetadataTags)),
	}
	if !m.HttpPutResponseHopLimit.IsNull() && !m.HttpPutResponseHopLimit.IsUnknown() {
		r.HttpPutResponseHopLimit = aws.Int32(int32(m.HttpPutResponseHopLimit.ValueInt64()))
	}
	return r
}

// metadataOptionsOf is the one metadata_options block of l, or nil.
func metadataOptionsOf(ctx context.Context, l types.List) (*metadataOptionsModel, diag.Diagnostics) {
	if l.IsNull() || l.IsUnknown() || len(l.Elements()) == 0 {
		return nil, nil
	}
	var ms []metadataOptionsModel
	diags := l.ElementsAs(ctx, &ms, false)
	if diags.HasError() || len(ms) == 0 {
		return nil, diags
	}
	return &ms[0], diags
}

// known is a string's value, "" when it is null or unknown.
func known(s types.String) string {
	if s.IsNull() || s.IsUnknown() {
		return ""
	}
	return s.ValueString()
}

// userDataBase64 is the user data to send, base64-encoded ("" for none).
func userDataBase64(m instanceModel) string {
	if v := known(m.UserDataBase64); v != "" {
		return v
	}
	if v := known(m.UserData); v != "" {
		return base64.StdEncoding.EncodeToString([]byte(v))
	}
	return ""
}

// errGone: the instance is terminated or unknown to the control plane.
var errGone = errors.New("instance is gone")

// describeInstance returns one instance as DescribeInstances shows it, or
// errGone when it is terminated or unknown.
func describeInstance(ctx context.Context, cl *apiclient.Client, id string) (*ec2types.Instance, error) {
	out, err := cl.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if apiclient.ErrorCode(err) == "InvalidInstanceID.NotFound" {
		return nil, errGone
	}
	if err != nil {
		return nil, err
	}
	for _, res := range out.Reservations {
		for i := range res.Instances {
			in := &res.Instances[i]
			if aws.ToString(in.InstanceId) != id {
				continue
			}
			if in.State != nil && in.State.Name == ec2types.InstanceStateNameTerminated {
				return nil, errGone
			}
			return in, nil
		}
	}
	return nil, errGone
}

// waitApplied waits until the data plane serves the instance's current
// metadata options (DescribeInstances says "applied"), as the AWS provider
// waits after changing them: once apply returns, the guest sees the new
// rules.
func (r *instanceResource) waitApplied(ctx context.Context, id string) (*ec2types.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, appliedTimeout)
	defer cancel()
	for {
		in, err := describeInstance(ctx, r.client, id)
		if err != nil {
			return nil, err
		}
		if in.MetadataOptions == nil || in.MetadataOptions.State == ec2types.InstanceMetadataOptionsStateApplied {
			return in, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("metadata options of %s still %q: %w", id, in.MetadataOptions.State, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// updateTags makes the instance's tags from into to.
func (r *instanceResource) updateTags(ctx context.Context, id string, from, to types.Map, diags *diag.Diagnostics) bool {
	return syncTags(ctx, r.client.EC2(), "frontdesk instance "+id, id, from, to, diags)
}

// syncTags makes resource id's tags from into to: DeleteTags for keys that
// go, CreateTags for keys that come or change. It reports success; what
// names the resource in diagnostics.
func syncTags(ctx context.Context, ec *ec2.Client, what, id string, from, to types.Map, diags *diag.Diagnostics) bool {
	old, d := tagMap(ctx, from)
	diags.Append(d...)
	cur, d := tagMap(ctx, to)
	diags.Append(d...)
	if diags.HasError() {
		return false
	}
	var gone []ec2types.Tag
	for _, k := range sortedKeys(old) {
		if _, ok := cur[k]; !ok {
			gone = append(gone, ec2types.Tag{Key: aws.String(k)})
		}
	}
	var set []ec2types.Tag
	for _, k := range sortedKeys(cur) {
		if v, ok := old[k]; !ok || v != cur[k] {
			set = append(set, ec2types.Tag{Key: aws.String(k), Value: aws.String(cur[k])})
		}
	}
	if len(gone) > 0 {
		if _, err := ec.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: gone}); err != nil {
			diags.Append(apiError("deleting tags of "+what, err))
			return false
		}
	}
	if len(set) > 0 {
		if _, err := ec.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: set}); err != nil {
			diags.Append(apiError("tagging "+what, err))
			return false
		}
	}
	return true
}

// replaceProfile disassociates the instance's profile, if any, and
// associates name unless it is "".
func replaceProfile(ctx context.Context, ec *ec2.Client, id, name string) error {
	out, err := ec.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}},
	})
	if err != nil {
		return err
	}
	for _, a := range out.IamInstanceProfileAssociations {
		if _, err := ec.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: a.AssociationId}); err != nil {
			return err
		}
	}
	if name == "" {
		return nil
	}
	_, err = ec.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId:         aws.String(id),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(name)},
	})
	return err
}

// flattenInstance records what the control plane says about in into m.
// User data cannot be read back (frontdesk has no DescribeInstanceAttribute),
// so m keeps the configured value. Empty values keep the form the
// configuration gave them ("" or [] stay, otherwise null), so that a plan
// right after apply is empty.
func flattenInstance(ctx context.Context, in *ec2types.Instance, m *instanceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ID = types.StringValue(aws.ToString(in.InstanceId))
	m.AMI = types.StringValue(aws.ToString(in.ImageId))
	m.InstanceType = types.StringValue(string(in.InstanceType))
	m.PrivateIP = emptyAsNull(aws.ToString(in.PrivateIpAddress), m.PrivateIP)
	m.SubnetID = emptyAsNull(aws.ToString(in.SubnetId), m.SubnetID)
	m.KeyName = emptyAsNull(aws.ToString(in.KeyName), m.KeyName)
	m.PrivateDNS = types.StringValue(aws.ToString(in.PrivateDnsName))
	m.VPCID = types.StringValue(aws.ToString(in.VpcId))
	m.InstanceState = types.StringNull()
	if in.State != nil {
		m.InstanceState = types.StringValue(string(in.State.Name))
	}
	profile := ""
	if in.IamInstanceProfile != nil {
		profile = profileName(aws.ToString(in.IamInstanceProfile.Arn))
	}
	m.IAMInstanceProfile = emptyAsNull(profile, m.IAMInstanceProfile)
	host := ""
	if in.Placement != nil {
		host = aws.ToString(in.Placement.HostId)
	}
	m.HostID = emptyAsNull(host, m.HostID)

	var v6 []attr.Value
	for _, ni := range in.NetworkInterfaces {
		if ni.Attachment == nil || aws.ToInt32(ni.Attachment.DeviceIndex) != 0 {
			continue
		}
		for _, a := range ni.Ipv6Addresses {
			v6 = append(v6, types.StringValue(aws.ToString(a.Ipv6Address)))
		}
	}
	if len(v6) == 0 && (m.IPv6Addresses.IsNull() || m.IPv6Addresses.IsUnknown()) {
		m.IPv6Addresses = types.ListNull(types.StringType)
	} else {
		l, d := types.ListValue(types.StringType, v6)
		diags.Append(d...)
		m.IPv6Addresses = l
	}

	tags := map[string]attr.Value{}
	for _, t := range in.Tags {
		tags[aws.ToString(t.Key)] = types.StringValue(aws.ToString(t.Value))
	}
	if len(tags) == 0 && (m.Tags.IsNull() || m.Tags.IsUnknown()) {
		m.Tags = types.MapNull(types.StringType)
	} else {
		mv, d := types.MapValue(types.StringType, tags)
		diags.Append(d...)
		m.Tags = mv
	}

	// The block is filled only where the configuration has one (or on
	// import): a block Terraform did not see in the configuration would
	// show as a change in every plan.
	if len(m.MetadataOptions.Elements()) > 0 && in.MetadataOptions != nil {
		o := in.MetadataOptions
		mo := metadataOptionsModel{
			HttpTokens:              types.StringValue(string(o.HttpTokens)),
			HttpPutResponseHopLimit: types.Int64Value(int64(aws.ToInt32(o.HttpPutResponseHopLimit))),
			HttpEndpoint:            types.StringValue(string(o.HttpEndpoint)),
			InstanceMetadataTags:    types.StringValue(string(o.InstanceMetadataTags)),
			HttpProtocolIPv6:        types.StringValue(string(o.HttpProtocolIpv6)),
		}
		l, d := types.ListValueFrom(ctx, metadataOptionsType, []metadataOptionsModel{mo})
		diags.Append(d...)
		m.MetadataOptions = l
	}
	return diags
}

// emptyAsNull is v, except that "" is null unless prior was "" too.
func emptyAsNull(v string, prior types.String) types.String {
	if v == "" && (prior.IsNull() || prior.IsUnknown() || prior.ValueString() != "") {
		return types.StringNull()
	}
	return types.StringValue(v)
}

// profileName is the instance profile name in an instance-profile ARN
// (arn:aws:iam::ACCOUNT:instance-profile/PATH/NAME).
func profileName(arn string) string {
	_, rest, ok := strings.Cut(arn, ":instance-profile/")
	if !ok {
		return arn
	}
	return rest[strings.LastIndex(rest, "/")+1:]
}
