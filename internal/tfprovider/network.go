package tfprovider

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// This file holds the resources for what the control plane learns to
// manage beside instances: key pairs, VPCs, subnets and Elastic IPs, with
// aws_key_pair's, aws_vpc's, aws_subnet's and aws_eip's names. They use
// the AWS SDK's EC2 operations for them (ImportKeyPair, CreateVpc,
// CreateSubnet, AllocateAddress ...); a control plane without those
// actions answers InvalidAction, which surfaces as such.

// clientHolder is the Configure every resource here shares.
type clientHolder struct {
	client *apiclient.Client
}

func (h *clientHolder) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	cl, ok := clientFrom(req.ProviderData)
	if !ok {
		resp.Diagnostics.AddError("unexpected provider data", fmt.Sprintf("got %T, want *apiclient.Client", req.ProviderData))
		return
	}
	h.client = cl
}

func (h *clientHolder) ready(diags interface{ HasError() bool }, add func()) bool {
	if h.client == nil {
		add()
		return false
	}
	return !diags.HasError()
}

var (
	keepString    = []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	replaceString = []planmodifier.String{stringplanmodifier.RequiresReplace()}
)

func tagsAttribute() schema.MapAttribute {
	return schema.MapAttribute{ElementType: types.StringType, Optional: true, Description: "Tags."}
}

// ---- frontdesk_key_pair ----

type keyPairModel struct {
	ID          types.String `tfsdk:"id"`
	KeyName     types.String `tfsdk:"key_name"`
	PublicKey   types.String `tfsdk:"public_key"`
	KeyPairID   types.String `tfsdk:"key_pair_id"`
	Fingerprint types.String `tfsdk:"fingerprint"`
	Tags        types.Map    `tfsdk:"tags"`
}

type keyPairResource struct{ clientHolder }

func newKeyPairResource() resource.Resource { return &keyPairResource{} }

func (r *keyPairResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_key_pair"
}

func (r *keyPairResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "An imported key pair (as aws_key_pair); instances launched with its key_name serve its public key.",
		Attributes: map[string]schema.Attribute{
			"id":          schema.StringAttribute{Computed: true, Description: "The key name.", PlanModifiers: keepString},
			"key_name":    schema.StringAttribute{Required: true, Description: "Key name.", PlanModifiers: replaceString},
			"public_key":  schema.StringAttribute{Required: true, Description: "OpenSSH public key.", PlanModifiers: replaceString},
			"key_pair_id": schema.StringAttribute{Computed: true, Description: "key-… id.", PlanModifiers: keepString},
			"fingerprint": schema.StringAttribute{Computed: true, Description: "Key fingerprint.", PlanModifiers: keepString},
			"tags":        tagsAttribute(),
		},
	}
}

func (r *keyPairResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan keyPairModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	specs, d := tagSpec(ctx, ec2types.ResourceTypeKeyPair, plan.Tags)
	resp.Diagnostics.Append(d...)
	_, err := r.client.EC2().ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName: aws.String(plan.KeyName.ValueString()), PublicKeyMaterial: []byte(plan.PublicKey.ValueString()), TagSpecifications: specs,
	})
	if err != nil {
		resp.Diagnostics.Append(apiError("importing key pair "+plan.KeyName.ValueString(), err))
		return
	}
	r.refresh(ctx, &plan, &resp.State, &resp.Diagnostics)
}

func (r *keyPairResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state keyPairModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	r.refresh(ctx, &state, &resp.State, &resp.Diagnostics)
}

func (r *keyPairResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior keyPairModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	if !syncTags(ctx, r.client.EC2(), "key pair "+prior.KeyName.ValueString(), prior.KeyPairID.ValueString(), prior.Tags, plan.Tags, &resp.Diagnostics) {
		return
	}
	r.refresh(ctx, &plan, &resp.State, &resp.Diagnostics)
}

func (r *keyPairResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state keyPairModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	_, err := r.client.EC2().DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(state.KeyName.ValueString())})
	if err != nil && apiclient.ErrorCode(err) != "InvalidKeyPair.NotFound" {
		resp.Diagnostics.Append(apiError("deleting key pair "+state.KeyName.ValueString(), err))
	}
}

func (r *keyPairResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("key_name"), req.ID)...)
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func (r *keyPairResource) refresh(ctx context.Context, m *keyPairModel, st stateSetter, diags diagAppender) {
	out, err := r.client.EC2().DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{m.KeyName.ValueString()}, IncludePublicKey: aws.Bool(true)})
	if apiclient.ErrorCode(err) == "InvalidKeyPair.NotFound" || err == nil && len(out.KeyPairs) == 0 {
		st.RemoveResource(ctx)
		return
	}
	if err != nil {
		diags.Append(apiError("reading key pair "+m.KeyName.ValueString(), err))
		return
	}
	k := out.KeyPairs[0]
	m.ID = types.StringValue(aws.ToString(k.KeyName))
	m.KeyPairID = types.StringValue(aws.ToString(k.KeyPairId))
	m.Fingerprint = types.StringValue(aws.ToString(k.KeyFingerprint))
	if pk := aws.ToString(k.PublicKey); pk != "" && m.PublicKey.IsNull() {
		m.PublicKey = types.StringValue(pk) // import
	}
	tags, d := tagsValue(k.Tags, m.Tags)
	diags.Append(d...)
	m.Tags = tags
	diags.Append(st.Set(ctx, m)...)
}

// ---- frontdesk_vpc ----

type vpcModel struct {
	ID        types.String `tfsdk:"id"`
	CidrBlock types.String `tfsdk:"cidr_block"`
	Tags      types.Map    `tfsdk:"tags"`
}

type vpcResource struct{ clientHolder }

func newVPCResource() resource.Resource { return &vpcResource{} }

func (r *vpcResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_vpc"
}

func (r *vpcResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A VPC (as aws_vpc).",
		Attributes: map[string]schema.Attribute{
			"id":         schema.StringAttribute{Computed: true, Description: "vpc-… id.", PlanModifiers: keepString},
			"cidr_block": schema.StringAttribute{Required: true, Description: "IPv4 CIDR block.", PlanModifiers: replaceString},
			"tags":       tagsAttribute(),
		},
	}
}

func (r *vpcResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan vpcModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	specs, d := tagSpec(ctx, ec2types.ResourceTypeVpc, plan.Tags)
	resp.Diagnostics.Append(d...)
	out, err := r.client.EC2().CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(plan.CidrBlock.ValueString()), TagSpecifications: specs})
	if err != nil {
		resp.Diagnostics.Append(apiError("creating VPC "+plan.CidrBlock.ValueString(), err))
		return
	}
	plan.ID = types.StringValue(aws.ToString(out.Vpc.VpcId))
	r.refresh(ctx, &plan, &resp.State, &resp.Diagnostics)
}

func (r *vpcResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state vpcModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	r.refresh(ctx, &state, &resp.State, &resp.Diagnostics)
}

func (r *vpcResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior vpcModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	if !syncTags(ctx, r.client.EC2(), "VPC "+prior.ID.ValueString(), prior.ID.ValueString(), prior.Tags, plan.Tags, &resp.Diagnostics) {
		return
	}
	plan.ID = prior.ID
	r.refresh(ctx, &plan, &resp.State, &resp.Diagnostics)
}

func (r *vpcResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state vpcModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	_, err := r.client.EC2().DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(state.ID.ValueString())})
	if err != nil && apiclient.ErrorCode(err) != "InvalidVpcID.NotFound" {
		resp.Diagnostics.Append(apiError("deleting VPC "+state.ID.ValueString(), err))
	}
}

func (r *vpcResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func (r *vpcResource) refresh(ctx context.Context, m *vpcModel, st stateSetter, diags diagAppender) {
	out, err := r.client.EC2().DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{m.ID.ValueString()}})
	if apiclient.ErrorCode(err) == "InvalidVpcID.NotFound" || err == nil && len(out.Vpcs) == 0 {
		st.RemoveResource(ctx)
		return
	}
	if err != nil {
		diags.Append(apiError("reading VPC "+m.ID.ValueString(), err))
		return
	}
	v := out.Vpcs[0]
	m.CidrBlock = types.StringValue(aws.ToString(v.CidrBlock))
	tags, d := tagsValue(v.Tags, m.Tags)
	diags.Append(d...)
	m.Tags = tags
	diags.Append(st.Set(ctx, m)...)
}

// ---- frontdesk_subnet ----

type subnetModel struct {
	ID               types.String `tfsdk:"id"`
	VpcID            types.String `tfsdk:"vpc_id"`
	CidrBlock        types.String `tfsdk:"cidr_block"`
	AvailabilityZone types.String `tfsdk:"availability_zone"`
	Tags             types.Map    `tfsdk:"tags"`
}

type subnetResource struct{ clientHolder }

func newSubnetResource() resource.Resource { return &subnetResource{} }

func (r *subnetResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_subnet"
}

func (r *subnetResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A subnet of a VPC (as aws_subnet).",
		Attributes: map[string]schema.Attribute{
			"id":         schema.StringAttribute{Computed: true, Description: "subnet-… id.", PlanModifiers: keepString},
			"vpc_id":     schema.StringAttribute{Required: true, Description: "VPC id.", PlanModifiers: replaceString},
			"cidr_block": schema.StringAttribute{Required: true, Description: "IPv4 CIDR block.", PlanModifiers: replaceString},
			"availability_zone": schema.StringAttribute{
				Optional: true, Computed: true, Description: "Availability zone.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace(), stringplanmodifier.UseStateForUnknown()},
			},
			"tags": tagsAttribute(),
		},
	}
}

func (r *subnetResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan subnetModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	specs, d := tagSpec(ctx, ec2types.ResourceTypeSubnet, plan.Tags)
	resp.Diagnostics.Append(d...)
	in := &ec2.CreateSubnetInput{VpcId: aws.String(plan.VpcID.ValueString()), CidrBlock: aws.String(plan.CidrBlock.ValueString()), TagSpecifications: specs}
	if az := known(plan.AvailabilityZone); az != "" {
		in.AvailabilityZone = aws.String(az)
	}
	out, err := r.client.EC2().CreateSubnet(ctx, in)
	if err != nil {
		resp.Diagnostics.Append(apiError("creating subnet "+plan.CidrBlock.ValueString(), err))
		return
	}
	plan.ID = types.StringValue(aws.ToString(out.Subnet.SubnetId))
	r.refresh(ctx, &plan, &resp.State, &resp.Diagnostics)
}

func (r *subnetResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state subnetModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	r.refresh(ctx, &state, &resp.State, &resp.Diagnostics)
}

func (r *subnetResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior subnetModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	if !syncTags(ctx, r.client.EC2(), "subnet "+prior.ID.ValueString(), prior.ID.ValueString(), prior.Tags, plan.Tags, &resp.Diagnostics) {
		return
	}
	plan.ID = prior.ID
	r.refresh(ctx, &plan, &resp.State, &resp.Diagnostics)
}

func (r *subnetResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state subnetModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	_, err := r.client.EC2().DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(state.ID.ValueString())})
	if err != nil && apiclient.ErrorCode(err) != "InvalidSubnetID.NotFound" {
		resp.Diagnostics.Append(apiError("deleting subnet "+state.ID.ValueString(), err))
	}
}

func (r *subnetResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func (r *subnetResource) refresh(ctx context.Context, m *subnetModel, st stateSetter, diags diagAppender) {
	out, err := r.client.EC2().DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{m.ID.ValueString()}})
	if apiclient.ErrorCode(err) == "InvalidSubnetID.NotFound" || err == nil && len(out.Subnets) == 0 {
		st.RemoveResource(ctx)
		return
	}
	if err != nil {
		diags.Append(apiError("reading subnet "+m.ID.ValueString(), err))
		return
	}
	s := out.Subnets[0]
	m.VpcID = types.StringValue(aws.ToString(s.VpcId))
	m.CidrBlock = types.StringValue(aws.ToString(s.CidrBlock))
	m.AvailabilityZone = types.StringValue(aws.ToString(s.AvailabilityZone))
	tags, d := tagsValue(s.Tags, m.Tags)
	diags.Append(d...)
	m.Tags = tags
	diags.Append(st.Set(ctx, m)...)
}

// ---- frontdesk_eip ----

type eipModel struct {
	ID            types.String `tfsdk:"id"`
	Instance      types.String `tfsdk:"instance"`
	PublicIP      types.String `tfsdk:"public_ip"`
	AllocationID  types.String `tfsdk:"allocation_id"`
	AssociationID types.String `tfsdk:"association_id"`
	Tags          types.Map    `tfsdk:"tags"`
}

type eipResource struct{ clientHolder }

func newEIPResource() resource.Resource { return &eipResource{} }

func (r *eipResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_eip"
}

func (r *eipResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "An Elastic IP (as aws_eip), optionally associated with an instance, whose public-ipv4 it then is.",
		Attributes: map[string]schema.Attribute{
			"id":             schema.StringAttribute{Computed: true, Description: "Allocation id (eipalloc-…).", PlanModifiers: keepString},
			"instance":       schema.StringAttribute{Optional: true, Description: "Instance to associate with (changes in place)."},
			"public_ip":      schema.StringAttribute{Computed: true, Description: "The address.", PlanModifiers: keepString},
			"allocation_id":  schema.StringAttribute{Computed: true, Description: "Allocation id.", PlanModifiers: keepString},
			"association_id": schema.StringAttribute{Computed: true, Description: "Association id (eipassoc-…), if associated."},
			"tags":           tagsAttribute(),
		},
	}
}

func (r *eipResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan eipModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	specs, d := tagSpec(ctx, ec2types.ResourceTypeElasticIp, plan.Tags)
	resp.Diagnostics.Append(d...)
	out, err := r.client.EC2().AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc, TagSpecifications: specs})
	if err != nil {
		resp.Diagnostics.Append(apiError("allocating an Elastic IP", err))
		return
	}
	plan.ID = types.StringValue(aws.ToString(out.AllocationId))
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), plan.ID)...)
	if inst := known(plan.Instance); inst != "" {
		if err := r.associate(ctx, plan.ID.ValueString(), inst); err != nil {
			resp.Diagnostics.Append(apiError("associating Elastic IP "+plan.ID.ValueString()+" with "+inst, err))
			return
		}
	}
	r.refresh(ctx, &plan, &resp.State, &resp.Diagnostics)
}

func (r *eipResource) associate(ctx context.Context, allocID, instanceID string) error {
	_, err := r.client.EC2().AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(allocID), InstanceId: aws.String(instanceID)})
	return err
}

func (r *eipResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state eipModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	r.refresh(ctx, &state, &resp.State, &resp.Diagnostics)
}

func (r *eipResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior eipModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	id := prior.ID.ValueString()
	if !plan.Instance.Equal(prior.Instance) {
		if a := known(prior.AssociationID); a != "" {
			_, err := r.client.EC2().DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(a)})
			if err != nil && apiclient.ErrorCode(err) != "InvalidAssociationID.NotFound" {
				resp.Diagnostics.Append(apiError("disassociating Elastic IP "+id, err))
				return
			}
		}
		if inst := known(plan.Instance); inst != "" {
			if err := r.associate(ctx, id, inst); err != nil {
				resp.Diagnostics.Append(apiError("associating Elastic IP "+id+" with "+inst, err))
				return
			}
		}
	}
	if !syncTags(ctx, r.client.EC2(), "Elastic IP "+id, id, prior.Tags, plan.Tags, &resp.Diagnostics) {
		return
	}
	plan.ID = prior.ID
	r.refresh(ctx, &plan, &resp.State, &resp.Diagnostics)
}

func (r *eipResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state eipModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if !r.ready(resp.Diagnostics, func() { resp.Diagnostics.Append(notConfigured()) }) {
		return
	}
	id := state.ID.ValueString()
	if a := known(state.AssociationID); a != "" {
		_, err := r.client.EC2().DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(a)})
		if err != nil && apiclient.ErrorCode(err) != "InvalidAssociationID.NotFound" {
			resp.Diagnostics.Append(apiError("disassociating Elastic IP "+id, err))
			return
		}
	}
	_, err := r.client.EC2().ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: aws.String(id)})
	if err != nil && apiclient.ErrorCode(err) != "InvalidAllocationID.NotFound" {
		resp.Diagnostics.Append(apiError("releasing Elastic IP "+id, err))
	}
}

func (r *eipResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func (r *eipResource) refresh(ctx context.Context, m *eipModel, st stateSetter, diags diagAppender) {
	out, err := r.client.EC2().DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{m.ID.ValueString()}})
	if apiclient.ErrorCode(err) == "InvalidAllocationID.NotFound" || err == nil && len(out.Addresses) == 0 {
		st.RemoveResource(ctx)
		return
	}
	if err != nil {
		diags.Append(apiError("reading Elastic IP "+m.ID.ValueString(), err))
		return
	}
	a := out.Addresses[0]
	m.AllocationID = types.StringValue(aws.ToString(a.AllocationId))
	m.PublicIP = types.StringValue(aws.ToString(a.PublicIp))
	m.AssociationID = emptyAsNull(aws.ToString(a.AssociationId), types.StringNull())
	m.Instance = emptyAsNull(aws.ToString(a.InstanceId), m.Instance)
	tags, d := tagsValue(a.Tags, m.Tags)
	diags.Append(d...)
	m.Tags = tags
	diags.Append(st.Set(ctx, m)...)
}

// stateSetter is the part of *tfsdk.State a refresh writes to.
type stateSetter interface {
	Set(ctx context.Context, val any) diag.Diagnostics
	RemoveResource(ctx context.Context)
}

// diagAppender is *diag.Diagnostics.
type diagAppender interface {
	Append(in ...diag.Diagnostic)
}
