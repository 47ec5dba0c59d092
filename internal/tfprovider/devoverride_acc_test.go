//go:build integration

package tfprovider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestAccDevOverridesAsAUser is the "done when" the way a user
// gets there: the provider built as a binary, a CLI configuration with
// dev_overrides as the README shows, and plain tofu commands in a
// directory (no terraform-plugin-testing, no reattach).
func TestAccDevOverridesAsAUser(t *testing.T) {
	setupTofu(t)
	tofu := os.Getenv("TF_ACC_TERRAFORM_PATH")
	d := startDaemon(t)
	ctx := context.Background()

	pluginDir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "terraform-provider-frontdesk"),
		"github.com/frontdesk-imds/frontdesk/cmd/terraform-provider-frontdesk").CombinedOutput()
	if err != nil {
		t.Fatalf("go build the provider: %v\n%s", err, out)
	}
	cliConfig := writeFile(t, "tofurc", fmt.Sprintf(`
provider_installation {
  dev_overrides {
    "frontdesk-imds/frontdesk" = %q
  }
  direct {}
}
`, pluginDir))
	work := t.TempDir()
	home := t.TempDir()
	// The provider finds the endpoint and the admin credentials in the
	// environment, as the CLI does: the configuration names neither.
	env := []string{
		"PATH=/usr/bin:/bin", "HOME=" + home,
		"TF_CLI_CONFIG_FILE=" + cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		"FRONTDESK_ENDPOINT=" + d.apiURL, "FRONTDESK_DATA_DIR=" + d.dataDir,
	}
	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(tofu, append(args, "-no-color")...)
		cmd.Dir, cmd.Env = work, env
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		return buf.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("tofu %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	write := func(tokens string) {
		t.Helper()
		cfg := `
terraform {
  required_providers {
    frontdesk = { source = "frontdesk-imds/frontdesk" }
  }
}

provider "frontdesk" {}

resource "frontdesk_instance" "web" {
  ami        = "ami-0123456789abcdef0"
  private_ip = "127.0.0.51"

  metadata_options {
    http_tokens = "` + tokens + `"
  }
}

output "id" {
  value = frontdesk_instance.web.id
}
`
		if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	v1 := func() (int, string) { return d.guestGet(t, "127.0.0.51", "/latest/meta-data/instance-id") }

	write("required")
	must("apply", "-auto-approve", "-input=false")
	id := strings.TrimSpace(must("output", "-raw", "id"))
	if !strings.HasPrefix(id, "i-") {
		t.Fatalf("output id %q", id)
	}
	if status, body := v1(); status != http.StatusUnauthorized {
		t.Fatalf("IMDSv1 after apply with http_tokens=required: %d %q, want 401", status, body)
	}

	write("optional")
	plan := must("plan", "-input=false")
	if !strings.Contains(plan, "updated in-place") || !strings.Contains(plan, `~ http_tokens`) {
		t.Fatalf("plan for http_tokens=optional is not an in-place update:\n%s", plan)
	}
	must("apply", "-auto-approve", "-input=false")
	if status, body := v1(); status != http.StatusOK || body != id {
		t.Fatalf("IMDSv1 after apply with http_tokens=optional: %d %q, want 200 %q", status, body, id)
	}
	if again := strings.TrimSpace(must("output", "-raw", "id")); again != id {
		t.Fatalf("instance id %s after the update, want %s (in place)", again, id)
	}

	// A second plan has nothing to do: exit status 0 with -detailed-exitcode
	// (2 would mean changes).
	if out, err := run("plan", "-detailed-exitcode", "-input=false"); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			t.Fatalf("second plan has changes:\n%s", out)
		}
		t.Fatalf("second plan: %v\n%s", err, out)
	}

	must("destroy", "-auto-approve", "-input=false")
	got, err := d.client.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Reservations) != 1 || len(got.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances %s after destroy: %d reservations", id, len(got.Reservations))
	}
	if st := got.Reservations[0].Instances[0].State; st == nil || st.Name != ec2types.InstanceStateNameTerminated {
		t.Fatalf("instance %s after destroy: %v, want terminated", id, st)
	}
}
