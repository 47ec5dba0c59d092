//go:build integration

package tfprovider_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func defaultsConfig(d *daemon, tokens string) string {
	return d.providerBlock() + fmt.Sprintf(`
resource "frontdesk_instance_metadata_defaults" "account" {
  http_tokens                 = %q
  http_put_response_hop_limit = 3
}

# No metadata_options block: the instance takes the account defaults.
resource "frontdesk_instance" "legacy" {
  ami        = %q
  private_ip = "127.0.0.41"
  depends_on = [frontdesk_instance_metadata_defaults.account]
}

data "frontdesk_instance" "legacy" {
  instance_id = frontdesk_instance.legacy.id
}
`, tokens, ami)
}

// TestAccMetadataDefaults: the account defaults reach instances launched
// after them (and not those launched before, as on EC2), drift in them
// shows in the plan, and destroying the resource clears them.
func TestAccMetadataDefaults(t *testing.T) {
	setupTofu(t)
	d := startDaemon(t)
	ctx := context.Background()
	const res = "frontdesk_instance_metadata_defaults.account"
	const data = "data.frontdesk_instance.legacy"
	tokens := func(want string) statecheck.StateCheck {
		return statecheck.ExpectKnownValue(data, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_tokens"), knownvalue.StringExact(want))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers(),
		CheckDestroy: func(*terraform.State) error {
			out, err := d.client.EC2().GetInstanceMetadataDefaults(ctx, &ec2.GetInstanceMetadataDefaultsInput{})
			if err != nil {
				return err
			}
			a := out.AccountLevel
			if a != nil && (a.HttpTokens != "" || a.HttpPutResponseHopLimit != nil) {
				return fmt.Errorf("defaults after destroy: tokens %q hop %v, want none", a.HttpTokens, a.HttpPutResponseHopLimit)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: defaultsConfig(d, "required"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("http_tokens"), knownvalue.StringExact("required")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("http_endpoint"), knownvalue.StringExact("no-preference")),
					tokens("required"),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_put_response_hop_limit"), knownvalue.Int64Exact(3)),
				},
				Check: func(*terraform.State) error {
					if status, body := d.guestGet(t, "127.0.0.41", "/latest/meta-data/instance-id"); status != http.StatusUnauthorized {
						return fmt.Errorf("IMDSv1 under the required default: %d %q, want 401", status, body)
					}
					return nil
				},
			},
			{
				// Drift: the defaults changed outside Terraform.
				PreConfig: func() {
					_, err := d.client.EC2().ModifyInstanceMetadataDefaults(ctx, &ec2.ModifyInstanceMetadataDefaultsInput{
						HttpTokens: ec2types.MetadataDefaultHttpTokensStateOptional,
					})
					if err != nil {
						t.Fatalf("ModifyInstanceMetadataDefaults outside Terraform: %v", err)
					}
				},
				Config:             defaultsConfig(d, "required"),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionUpdate),
				}},
			},
			{
				// A new default leaves the running instance as it was.
				Config: defaultsConfig(d, "optional"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("frontdesk_instance.legacy", plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("http_tokens"), knownvalue.StringExact("optional")),
					tokens("required"),
				},
			},
		},
	})
}
