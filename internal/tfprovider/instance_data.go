package tfprovider

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// instanceDataModel is the frontdesk_instance data source, as the
// aws_instance data source: one live instance found by id or by tags.
type instanceDataModel struct {
	ID                 types.String `tfsdk:"id"`
	InstanceID         types.String `tfsdk:"instance_id"`
	InstanceTags       types.Map    `tfsdk:"instance_tags"`
	AMI                types.String `tfsdk:"ami"`
	InstanceType       types.String `tfsdk:"instance_type"`
	PrivateIP          types.String `tfsdk:"private_ip"`
	IPv6Addresses      types.List   `tfsdk:"ipv6_addresses"`
	SubnetID           types.String `tfsdk:"subnet_id"`
	VPCID              types.String `tfsdk:"vpc_id"`
	PrivateDNS         types.String `tfsdk:"private_dns"`
	KeyName            types.String `tfsdk:"key_name"`
	IAMInstanceProfile types.String `tfsdk:"iam_instance_profile"`
	Tags               types.Map    `tfsdk:"tags"`
	HostID             types.String `tfsdk:"host_id"`
	InstanceState      types.String `tfsdk:"instance_state"`
	MetadataOptions    types.List   `tfsdk:"metadata_options"`
}

type instanceDataSource struct {
	client *apiclient.Client
}

var (
	_ datasource.DataSourceWithConfigure        = (*instanceDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*instanceDataSource)(nil)
)

func newInstanceDataSource() datasource.DataSource { return &instanceDataSource{} }

func (d *instanceDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_instance"
}

func (d *instanceDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	cl, ok := clientFrom(req.ProviderData)
	if !ok {
		resp.Diagnostics.AddError("unexpected provider data", fmt.Sprintf("got %T, want *apiclient.Client", req.ProviderData))
		return
	}
	d.client = cl
}

func (d *instanceDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, Description: desc}
	}
	resp.Schema = schema.Schema{
		Description: "One running frontdesk instance, found by instance_id or by instance_tags (exactly one must match), " +
			"with its metadata options as the data plane enforces them.",
		Attributes: map[string]schema.Attribute{
			"id":          computed("Instance id."),
			"instance_id": schema.StringAttribute{Optional: true, Description: "Instance id to look up."},
			"instance_tags": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				Description: "Tags the instance must have (each key with exactly that value).",
			},
			"ami":                  computed("Image id."),
			"instance_type":        computed("Instance type."),
			"private_ip":           computed("Primary IPv4 address."),
			"ipv6_addresses":       schema.ListAttribute{ElementType: types.StringType, Computed: true, Description: "IPv6 addresses of the primary interface."},
			"subnet_id":            computed("Subnet id."),
			"vpc_id":               computed("VPC id."),
			"private_dns":          computed("Private DNS name."),
			"key_name":             computed("Key pair name."),
			"iam_instance_profile": computed("Instance profile name."),
			"tags":                 schema.MapAttribute{ElementType: types.StringType, Computed: true, Description: "Tags."},
			"host_id":              computed("Placement host."),
			"instance_state":       computed("Instance state."),
			"metadata_options": schema.ListNestedAttribute{
				Computed:    true,
				Description: "Metadata options (one element, as aws_instance's metadata_options[0]).",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"http_tokens":                 computed("required or optional."),
					"http_put_response_hop_limit": schema.Int64Attribute{Computed: true, Description: "Hop limit."},
					"http_endpoint":               computed("enabled or disabled."),
					"instance_metadata_tags":      computed("enabled or disabled."),
					"http_protocol_ipv6":          computed("enabled or disabled."),
				}},
			},
		},
	}
}

func (d *instanceDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		datasourcevalidator.AtLeastOneOf(path.MatchRoot("instance_id"), path.MatchRoot("instance_tags")),
	}
}

func (d *instanceDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if d.client == nil {
		resp.Diagnostics.Append(notConfigured())
		return
	}
	var cfg instanceDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	in := &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}},
	}
	if id := known(cfg.InstanceID); id != "" {
		in.InstanceIds = []string{id}
	}
	tags, diags := tagMap(ctx, cfg.InstanceTags)
	resp.Diagnostics.Append(diags...)
	for _, k := range sortedKeys(tags) {
		in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	var found []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(d.client.EC2(), in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			resp.Diagnostics.Append(apiError("looking up frontdesk instance", err))
			return
		}
		for _, r := range page.Reservations {
			found = append(found, r.Instances...)
		}
	}
	if len(found) != 1 {
		resp.Diagnostics.AddError("looking up frontdesk instance",
			fmt.Sprintf("%d running instances match; the data source needs exactly one (narrow instance_tags or give instance_id)", len(found)))
		return
	}
	// The resource's flattening, with an empty block to fill in and null
	// prior values (empty values come back null).
	m := instanceModel{
		IPv6Addresses: types.ListNull(types.StringType),
		Tags:          types.MapNull(types.StringType),
		MetadataOptions: types.ListValueMust(metadataOptionsType, []attr.Value{types.ObjectValueMust(metadataOptionsType.AttrTypes, map[string]attr.Value{
			"http_tokens": types.StringNull(), "http_put_response_hop_limit": types.Int64Null(), "http_endpoint": types.StringNull(),
			"instance_metadata_tags": types.StringNull(), "http_protocol_ipv6": types.StringNull(),
		})}),
	}
	resp.Diagnostics.Append(flattenInstance(ctx, &found[0], &m)...)
	out := instanceDataModel{
		ID: m.ID, InstanceID: m.ID, InstanceTags: cfg.InstanceTags,
		AMI: m.AMI, InstanceType: m.InstanceType, PrivateIP: m.PrivateIP, IPv6Addresses: m.IPv6Addresses,
		SubnetID: m.SubnetID, VPCID: m.VPCID, PrivateDNS: m.PrivateDNS, KeyName: m.KeyName,
		IAMInstanceProfile: m.IAMInstanceProfile, Tags: m.Tags, HostID: m.HostID, InstanceState: m.InstanceState,
		MetadataOptions: m.MetadataOptions,
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
}
