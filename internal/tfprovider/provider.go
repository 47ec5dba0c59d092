// Package tfprovider is frontdesk's Terraform and OpenTofu provider, built
// on terraform-plugin-framework. It manages instances and the account's
// metadata defaults through the control plane's EC2 API, with the same
// client (internal/apiclient) and the same credential discovery as the
// frontdesk CLI, and with arguments named as on the AWS provider's
// aws_instance and aws_ec2_instance_metadata_defaults.
package tfprovider

import (
	"context"
	"net/http"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// TypeName is the provider's local name: resources are frontdesk_*.
const TypeName = "frontdesk"

// Options are the optional knobs of the provider; the zero value works.
type Options struct {
	// Getenv reads the environment for credential and endpoint discovery
	// (default: nothing is set). main passes os.Getenv.
	Getenv func(string) string
	// HTTPClient sends the control-plane requests (default: apiclient's).
	HTTPClient *http.Client
}

// New returns a constructor of the provider, as providerserver wants it.
// version is reported to Terraform.
func New(version string, opts Options) func() provider.Provider {
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	return func() provider.Provider {
		return &frontdeskProvider{version: version, opts: opts}
	}
}

type frontdeskProvider struct {
	version string
	opts    Options
}

// providerModel is the provider block.
type providerModel struct {
	Endpoint  types.String `tfsdk:"endpoint"`
	Region    types.String `tfsdk:"region"`
	DataDir   types.String `tfsdk:"data_dir"`
	AccessKey types.String `tfsdk:"access_key"`
	SecretKey types.String `tfsdk:"secret_key"`
	Token     types.String `tfsdk:"token"`
}

func (p *frontdeskProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = TypeName
	resp.Version = p.version
}

func (p *frontdeskProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Manages frontdesk instances and metadata defaults through frontdesk's control plane (its EC2 Query API). " +
			"Unset arguments are found as the frontdesk CLI finds them.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Optional:    true,
				Description: "Control plane URL. Default: $FRONTDESK_ENDPOINT, else " + apiclient.DefaultEndpoint + ".",
			},
			"region": schema.StringAttribute{
				Optional:    true,
				Description: "Region the control plane is configured with (signatures are scoped to it). Default: " + apiclient.DefaultRegion + ".",
			},
			"data_dir": schema.StringAttribute{
				Optional: true,
				Description: "frontdesk data directory whose " + apiclient.AdminCredentialsFile + " to use when it holds one. " +
					"Default: $FRONTDESK_DATA_DIR, else " + apiclient.DefaultDataDir + ". Without that file: " +
					"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then profile $AWS_PROFILE of the shared credentials file.",
			},
			"access_key": schema.StringAttribute{
				Optional:    true,
				Description: "Access key id of the control plane's admin key; overrides discovery (with secret_key).",
			},
			"secret_key": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Secret access key that goes with access_key.",
			},
			"token": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Session token that goes with access_key, if any.",
			},
		},
	}
}

func (p *frontdeskProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for name, v := range map[string]types.String{
		"endpoint": cfg.Endpoint, "region": cfg.Region, "data_dir": cfg.DataDir,
		"access_key": cfg.AccessKey, "secret_key": cfg.SecretKey, "token": cfg.Token,
	} {
		if v.IsUnknown() {
			// A value known only after apply (another resource's output):
			// resources must wait for a later run to reach the control plane.
			resp.Diagnostics.AddWarning("frontdesk provider "+name+" is not known yet",
				"The provider cannot reach the control plane until "+name+" is known; apply the resources it depends on first.")
			return
		}
	}
	if cfg.AccessKey.ValueString() != "" && cfg.SecretKey.ValueString() == "" ||
		cfg.AccessKey.ValueString() == "" && cfg.SecretKey.ValueString() != "" {
		resp.Diagnostics.AddError("incomplete frontdesk credentials", "access_key and secret_key must be given together.")
		return
	}
	s := apiclient.Settings{
		Endpoint:        cfg.Endpoint.ValueString(),
		Region:          cfg.Region.ValueString(),
		DataDir:         cfg.DataDir.ValueString(),
		AccessKeyID:     cfg.AccessKey.ValueString(),
		SecretAccessKey: cfg.SecretKey.ValueString(),
		SessionToken:    cfg.Token.ValueString(),
	}
	cl, _, err := apiclient.Connect(ctx, s, p.opts.Getenv, apiclient.Options{HTTPClient: p.opts.HTTPClient})
	if err != nil {
		resp.Diagnostics.AddError("frontdesk credentials not found", err.Error())
		return
	}
	resp.ResourceData = cl
	resp.DataSourceData = cl
}

func (p *frontdeskProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newInstanceResource,
		newMetadataDefaultsResource,
		newKeyPairResource,
		newVPCResource,
		newSubnetResource,
		newEIPResource,
	}
}

func (p *frontdeskProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newInstanceDataSource,
	}
}

// clientFrom is the client Configure handed over, or nil when the provider
// is not configured yet (validation runs before Configure).
func clientFrom(data any) (*apiclient.Client, bool) {
	if data == nil {
		return nil, true
	}
	cl, ok := data.(*apiclient.Client)
	return cl, ok
}
