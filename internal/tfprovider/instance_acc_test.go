//go:build integration

package tfprovider_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

const (
	addrA = "127.0.0.21" // the guest before the address change
	addrB = "127.0.0.22" // and after it
	ami   = "ami-0123456789abcdef0"
)

// instanceConfig is a frontdesk_instance with the settings that change
// between steps, plus the data source reading it back.
func instanceConfig(d *daemon, addr, tokens, userData, profile, host string, tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var tb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&tb, "    %s = %q\n", k, tags[k])
	}
	hostLine := ""
	if host != "" {
		hostLine = fmt.Sprintf("  host_id = %q\n", host)
	}
	return d.providerBlock() + fmt.Sprintf(`
resource "frontdesk_instance" "web" {
  ami                  = %q
  instance_type        = "t3.small"
  private_ip           = %q
  iam_instance_profile = %q
  user_data            = %q
%s
  tags = {
%s  }

  metadata_options {
    http_tokens = %q
  }
}

data "frontdesk_instance" "web" {
  instance_id = frontdesk_instance.web.id
}
`, ami, addr, profile, userData, hostLine, tb.String(), tokens)
}

// TestAccInstanceLifecycle is the "done when": apply with
// http_tokens=required and IMDSv1 gets 401; switch to optional, the update
// is in place and IMDSv1 gets 200; drift made outside shows in the plan;
// import; a new address replaces; destroy terminates. Every apply step is
// followed by terraform-plugin-testing's own plan, which must be empty.
func TestAccInstanceLifecycle(t *testing.T) {
	setupTofu(t)
	d := startDaemon(t)
	ctx := context.Background()
	const res = "frontdesk_instance.web"

	var firstID, secondID string
	seen := map[string]bool{}
	captureID := func(dst *string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			rs, ok := s.RootModule().Resources[res]
			if !ok {
				return fmt.Errorf("%s not in state", res)
			}
			*dst = rs.Primary.ID
			seen[rs.Primary.ID] = true
			return nil
		}
	}
	// guest checks what the data plane answers the instance's own IMDSv1
	// call for path.
	guest := func(src, p string, wantStatus int, wantBody func() string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			status, body := d.guestGet(t, src, p)
			if status != wantStatus {
				return fmt.Errorf("IMDSv1 GET %s from %s: status %d, want %d (body %q)", p, src, status, wantStatus, body)
			}
			if wantBody != nil && body != wantBody() {
				return fmt.Errorf("IMDSv1 GET %s from %s: body %q, want %q", p, src, body, wantBody())
			}
			return nil
		}
	}
	sameID := func() resource.TestCheckFunc {
		return func(s *terraform.State) error {
			if id := s.RootModule().Resources[res].Primary.ID; id != firstID {
				return fmt.Errorf("instance id %s, want %s: the update was not in place", id, firstID)
			}
			return nil
		}
	}
	describe := func(id string) (*ec2types.Instance, error) {
		out, err := d.client.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return nil, err
		}
		if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
			return nil, fmt.Errorf("DescribeInstances %s: %d reservations", id, len(out.Reservations))
		}
		return &out.Reservations[0].Instances[0], nil
	}
	onServer := func(check func(in *ec2types.Instance) error) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			in, err := describe(s.RootModule().Resources[res].Primary.ID)
			if err != nil {
				return err
			}
			return check(in)
		}
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers(),
		CheckDestroy: func(*terraform.State) error {
			if len(seen) != 2 {
				return fmt.Errorf("saw instances %v, want two (one before and one after the replacement)", seen)
			}
			for id := range seen {
				in, err := describe(id)
				if err != nil {
					return err
				}
				if in.State == nil || in.State.Name != ec2types.InstanceStateNameTerminated {
					return fmt.Errorf("instance %s is %v after destroy, want terminated", id, in.State)
				}
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				// Create: IMDSv2 required, so the guest's IMDSv1 call gets 401.
				Config: instanceConfig(d, addrA, "required", "#!/bin/sh\necho one\n", "web-role", "", map[string]string{"Name": "web"}),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionCreate),
					plancheck.ExpectUnknownValue(res, tfjsonpath.New("id")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^i-[0-9a-f]{17}$`))),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("private_ip"), knownvalue.StringExact(addrA)),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("instance_type"), knownvalue.StringExact("t3.small")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("instance_state"), knownvalue.StringExact("running")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_tokens"), knownvalue.StringExact("required")),
					// Settings left out come back from the control plane.
					statecheck.ExpectKnownValue(res, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_endpoint"), knownvalue.StringExact("enabled")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_put_response_hop_limit"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue("data.frontdesk_instance.web", tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_tokens"), knownvalue.StringExact("required")),
					statecheck.ExpectKnownValue("data.frontdesk_instance.web", tfjsonpath.New("iam_instance_profile"), knownvalue.StringExact("web-role")),
					statecheck.ExpectKnownValue("data.frontdesk_instance.web", tfjsonpath.New("private_ip"), knownvalue.StringExact(addrA)),
				},
				Check: resource.ComposeTestCheckFunc(
					captureID(&firstID),
					guest(addrA, "/latest/meta-data/instance-id", http.StatusUnauthorized, nil),
				),
			},
			{
				// In-place update of metadata options, tags, user data,
				// profile and host; the data plane then answers IMDSv1.
				Config: instanceConfig(d, addrA, "optional", "#!/bin/sh\necho two\n", "other-role", "node-a", map[string]string{"Name": "web", "Team": "ops"}),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_tokens"), knownvalue.StringExact("optional")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("host_id"), knownvalue.StringExact("node-a")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("tags"), knownvalue.MapExact(map[string]knownvalue.Check{
						"Name": knownvalue.StringExact("web"), "Team": knownvalue.StringExact("ops"),
					})),
				},
				Check: resource.ComposeTestCheckFunc(
					sameID(),
					guest(addrA, "/latest/meta-data/instance-id", http.StatusOK, func() string { return firstID }),
					guest(addrA, "/latest/user-data", http.StatusOK, func() string { return "#!/bin/sh\necho two\n" }),
					guest(addrA, "/latest/meta-data/iam/security-credentials/", http.StatusOK, func() string { return "other-role" }),
					onServer(func(in *ec2types.Instance) error {
						if got := aws.ToString(in.Placement.HostId); got != "node-a" {
							return fmt.Errorf("host %q on the server, want node-a", got)
						}
						if in.IamInstanceProfile == nil || !strings.HasSuffix(aws.ToString(in.IamInstanceProfile.Arn), "/other-role") {
							return fmt.Errorf("profile %v on the server, want other-role", in.IamInstanceProfile)
						}
						return nil
					}),
				),
			},
			{
				// Drift: an operator sets required and adds a tag outside
				// Terraform; the next plan wants to undo both.
				PreConfig: func() {
					_, err := d.client.EC2().ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
						InstanceId: aws.String(firstID), HttpTokens: ec2types.HttpTokensStateRequired,
					})
					if err != nil {
						t.Fatalf("ModifyInstanceMetadataOptions outside Terraform: %v", err)
					}
					_, err = d.client.EC2().CreateTags(ctx, &ec2.CreateTagsInput{
						Resources: []string{firstID}, Tags: []ec2types.Tag{{Key: aws.String("Owner"), Value: aws.String("someone")}},
					})
					if err != nil {
						t.Fatalf("CreateTags outside Terraform: %v", err)
					}
				},
				Config:             instanceConfig(d, addrA, "optional", "#!/bin/sh\necho two\n", "other-role", "node-a", map[string]string{"Name": "web", "Team": "ops"}),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(res, tfjsonpath.New("metadata_options").AtSliceIndex(0).AtMapKey("http_tokens"), knownvalue.StringExact("optional")),
				}},
			},
			{
				// Applying the same configuration undoes the drift in place.
				Config: instanceConfig(d, addrA, "optional", "#!/bin/sh\necho two\n", "other-role", "node-a", map[string]string{"Name": "web", "Team": "ops"}),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					sameID(),
					guest(addrA, "/latest/meta-data/instance-id", http.StatusOK, func() string { return firstID }),
					onServer(func(in *ec2types.Instance) error {
						for _, tag := range in.Tags {
							if aws.ToString(tag.Key) == "Owner" {
								return fmt.Errorf("tag Owner added outside Terraform is still there")
							}
						}
						return nil
					}),
				),
			},
			{
				// Import by instance id: everything but user data (which
				// the control plane does not show) is read back.
				ResourceName:            res,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"user_data"},
			},
			{
				// A new address is a new instance.
				Config: instanceConfig(d, addrB, "optional", "#!/bin/sh\necho two\n", "other-role", "node-a", map[string]string{"Name": "web", "Team": "ops"}),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: resource.ComposeTestCheckFunc(
					captureID(&secondID),
					func(*terraform.State) error {
						if secondID == firstID {
							return fmt.Errorf("instance id %s unchanged after an address change", firstID)
						}
						in, err := describe(firstID)
						if err != nil {
							return err
						}
						if in.State.Name != ec2types.InstanceStateNameTerminated {
							return fmt.Errorf("replaced instance %s is %s, want terminated", firstID, in.State.Name)
						}
						return nil
					},
					guest(addrB, "/latest/meta-data/instance-id", http.StatusOK, func() string { return secondID }),
				),
			},
		},
	})
}

// TestAccInstanceErrors: the control plane's refusals reach the user with
// EC2's code and message.
func TestAccInstanceErrors(t *testing.T) {
	setupTofu(t)
	d := startDaemon(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers(),
		Steps: []resource.TestStep{
			{
				Config: d.providerBlock() + `
resource "frontdesk_instance" "bad" {
  ami        = "not-an-ami"
  private_ip = "127.0.0.31"
}
`,
				ExpectError: regexp.MustCompile(`InvalidAMIID\.Malformed: Invalid id: "not-an-ami"`),
			},
			{
				Config: d.providerBlock() + `
resource "frontdesk_instance" "one" {
  ami        = "` + ami + `"
  private_ip = "127.0.0.31"
}

resource "frontdesk_instance" "two" {
  ami        = "` + ami + `"
  private_ip = "127.0.0.31"
  depends_on = [frontdesk_instance.one]
}
`,
				ExpectError: regexp.MustCompile(`InvalidIPAddress\.InUse: Address 127\.0\.0\.31 is in use`),
			},
		},
	})
}
