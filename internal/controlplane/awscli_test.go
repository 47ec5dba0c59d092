//go:build integration

package controlplane

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestAWSCLI drives the control plane with the real AWS CLI (botocore signs
// differently from the Go SDK and parses XML itself), using the shared
// credentials file frontdesk writes. scripts/test.sh installs the CLI (Debian's
// awscli); without it the test fails rather than hiding.
func TestAWSCLI(t *testing.T) {
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("the aws CLI is not installed (apt-get install awscli; scripts/test.sh does it)")
	}
	if err := exec.Command(aws, "--version").Run(); err != nil {
		t.Fatal("the aws CLI does not run")
	}
	e := newEnv(t, nil)
	dir := t.TempDir()
	credFile := filepath.Join(dir, "admin.credentials")
	if err := WriteSharedCredentialsFile(credFile, testCreds); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"ec2", "--endpoint-url", e.url, "--region", "us-east-1", "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(),
			"AWS_SHARED_CREDENTIALS_FILE="+credFile, "AWS_CONFIG_FILE="+filepath.Join(dir, "none"),
			"AWS_PROFILE=default", "AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=",
			"AWS_MAX_ATTEMPTS=1", "AWS_PAGER=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		var m map[string]any
		if len(out) > 0 {
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("aws %v: %v\n%s", args, err, out)
			}
		}
		return m
	}
	res := run("run-instances", "--image-id", "ami-0123456789abcdef0", "--count", "1",
		"--private-ip-address", "192.0.2.77", "--user-data", "hello from the CLI",
		"--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=cli}]",
		"--metadata-options", "HttpTokens=required,HttpPutResponseHopLimit=2")
	id := res["Instances"].([]any)[0].(map[string]any)["InstanceId"].(string)
	got := e.stored(id)
	if string(got.UserData) != "hello from the CLI" || got.MetadataOptions.HttpPutResponseHopLimit != 2 || got.Tags[0].Value != "cli" {
		t.Fatalf("stored %+v", got)
	}
	mod := run("modify-instance-metadata-options", "--instance-id", id, "--http-endpoint", "disabled")
	if mod["InstanceMetadataOptions"].(map[string]any)["State"] != "pending" {
		t.Fatalf("modify answer %v", mod)
	}
	desc := run("describe-instances", "--filters", "Name=tag:Name,Values=cli", "Name=metadata-options.http-endpoint,Values=disabled")
	rs := desc["Reservations"].([]any)
	if len(rs) != 1 || rs[0].(map[string]any)["Instances"].([]any)[0].(map[string]any)["InstanceId"] != id {
		t.Fatalf("describe %v", desc)
	}
}
