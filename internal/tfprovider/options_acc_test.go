//go:build integration

package tfprovider_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// TestAccInstanceOptionalArguments covers the arguments the lifecycle test
// leaves alone: IPv6 addresses, a subnet made by frontdesk_vpc and frontdesk_subnet, base64 user data, an
// instance first launched without a metadata_options block (the block
// added later is an in-place update), and tags removed altogether.
func TestAccInstanceOptionalArguments(t *testing.T) {
	setupTofu(t)
	d := startDaemon(t)
	const res = "frontdesk_instance.v6"
	const addr = "127.0.0.61"
	userData := []byte{0x1f, 0x8b, 0x08, 0x00, 'b', 'i', 'n'} // binary, as gzip'd cloud-config is
	ud64 := base64.StdEncoding.EncodeToString(userData)
	config := func(block, tags string) string {
		return d.providerBlock() + fmt.Sprintf(`
resource "frontdesk_vpc" "v" {
  cidr_block = "127.0.0.0/24"
}

resource "frontdesk_subnet" "s" {
  vpc_id     = frontdesk_vpc.v.id
  cidr_block = "127.0.0.0/26"
}

resource "frontdesk_instance" "in_subnet" {
  ami        = %q
  private_ip = "127.0.0.62"
  subnet_id  = frontdesk_subnet.s.id
}

resource "frontdesk_instance" "v6" {
  ami              = %q
  private_ip       = %q
  ipv6_addresses   = ["::1"]
  user_data_base64 = %q
%s
%s
}
`, ami, ami, addr, ud64, tags, block)
	}
	var id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers(),
		Steps: []resource.TestStep{
			{
				Config: config("", `  tags = { Name = "v6" }`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("ipv6_addresses"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("::1")})),
					statecheck.CompareValuePairs("frontdesk_instance.in_subnet", tfjsonpath.New("subnet_id"), "frontdesk_subnet.s", tfjsonpath.New("id"), compare.ValuesSame()),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("metadata_options"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("host_id"), knownvalue.Null()),
				},
				Check: func(s *terraform.State) error {
					id = s.RootModule().Resources[res].Primary.ID
					return nil
				},
			},
			{
				Config: config(`
  metadata_options {
    http_tokens                 = "optional"
    http_put_response_hop_limit = 2
  }`, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_put_response_hop_limit"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_protocol_ipv6"), knownvalue.StringExact("disabled")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("tags"), knownvalue.Null()),
				},
				Check: func(s *terraform.State) error {
					if got := s.RootModule().Resources[res].Primary.ID; got != id {
						return fmt.Errorf("instance id %s, want %s (in place)", got, id)
					}
					status, body := d.guestGet(t, addr, "/latest/user-data")
					if status != http.StatusOK || body != string(userData) {
						return fmt.Errorf("user-data: %d %q, want 200 %q", status, body, userData)
					}
					status, body = d.guestGet(t, addr, "/latest/meta-data/tags/instance")
					if status != http.StatusNotFound {
						return fmt.Errorf("tags/instance with instance_metadata_tags disabled: %d %q, want 404", status, body)
					}
					return nil
				},
			},
			{
				ResourceName:            res,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"user_data_base64"},
			},
		},
	})
}
