//go:build integration

package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// awsCLI is Debian's AWS CLI: the tests use the real client, not a
// re-implementation of its request encoding.
const awsCLI = "/usr/bin/aws"

// runAWS runs the AWS CLI against the control plane at endpoint with the
// admin credentials file and nothing else from the environment: no profile,
// no config, no IMDS lookups, no proxy, no pager, one attempt per call.
func runAWS(t *testing.T, credsFile, endpoint string, args ...string) []byte {
	t.Helper()
	args = append(args, "--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json")
	cmd := exec.Command(awsCLI, args...)
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + t.TempDir(),
		"LC_ALL=C.UTF-8",
		"AWS_SHARED_CREDENTIALS_FILE=" + credsFile,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"AWS_MAX_ATTEMPTS=1",
	}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("aws %v: %v\n%s%s", args, err, out, stderr)
	}
	return out
}

// cliInstance is the part of the CLI's DescribeInstances JSON the tests read.
type cliInstance struct {
	InstanceId       string
	PrivateIpAddress string
	State            struct{ Name string }
	MetadataOptions  struct {
		State                   string
		HttpTokens              string
		HttpEndpoint            string
		HttpPutResponseHopLimit int
	}
}

// describeCLI runs `aws ec2 describe-instances` with extra arguments and
// returns every instance of every reservation.
func describeCLI(t *testing.T, credsFile, endpoint string, extra ...string) []cliInstance {
	t.Helper()
	out := runAWS(t, credsFile, endpoint, append([]string{"ec2", "describe-instances"}, extra...)...)
	var v struct {
		Reservations []struct{ Instances []cliInstance }
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("describe-instances output: %v\n%s", err, out)
	}
	var all []cliInstance
	for _, r := range v.Reservations {
		all = append(all, r.Instances...)
	}
	return all
}

func findInstance(all []cliInstance, id string) *cliInstance {
	for i := range all {
		if all[i].InstanceId == id {
			return &all[i]
		}
	}
	return nil
}

// The AWS CLI drives the control plane: it lists the demo instance, requires
// tokens on it, and the metadata-options filter follows the change, as does
// the data plane.
func TestAWSCLIMetadataOptions(t *testing.T) {
	if _, err := exec.LookPath(awsCLI); err != nil {
		t.Fatalf("the AWS CLI tests need %s: %v", awsCLI, err)
	}
	dir := t.TempDir()
	d := startDaemon(t, dir, "--demo", "--demo-http-tokens", "optional")
	creds := filepath.Join(dir, "admin.credentials")
	byTokens := func(v string) []cliInstance {
		t.Helper()
		return describeCLI(t, creds, d.apiURL, "--filters", "Name=metadata-options.http-tokens,Values="+v)
	}

	t.Run("describe_instances_lists_the_running_demo_instance", func(t *testing.T) {
		in := findInstance(describeCLI(t, creds, d.apiURL), demoInstanceID)
		if in == nil {
			t.Fatal("describe-instances does not list the demo instance")
		}
		if in.PrivateIpAddress != "127.0.0.1" || in.State.Name != "running" {
			t.Errorf("demo instance %+v", in)
		}
		if in.MetadataOptions.HttpTokens != "optional" || in.MetadataOptions.HttpEndpoint != "enabled" || in.MetadataOptions.State != "applied" {
			t.Errorf("demo metadata options %+v", in.MetadataOptions)
		}
	})

	t.Run("modify_instance_metadata_options_requires_tokens", func(t *testing.T) {
		out := runAWS(t, creds, d.apiURL, "ec2", "modify-instance-metadata-options",
			"--instance-id", demoInstanceID, "--http-tokens", "required", "--http-endpoint", "enabled")
		var v struct {
			InstanceId              string
			InstanceMetadataOptions struct{ State, HttpTokens, HttpEndpoint string }
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("modify output: %v\n%s", err, out)
		}
		o := v.InstanceMetadataOptions
		if v.InstanceId != demoInstanceID || o.HttpTokens != "required" || o.HttpEndpoint != "enabled" || o.State != "pending" {
			t.Fatalf("modify output %s", out)
		}
	})

	t.Run("filter_http_tokens_required_returns_the_instance", func(t *testing.T) {
		all := byTokens("required")
		in := findInstance(all, demoInstanceID)
		if in == nil || len(all) != 1 {
			t.Fatalf("required filter returned %+v", all)
		}
		if in.MetadataOptions.HttpTokens != "required" {
			t.Errorf("HttpTokens %q", in.MetadataOptions.HttpTokens)
		}
	})

	t.Run("filter_http_tokens_optional_no_longer_returns_it", func(t *testing.T) {
		if all := byTokens("optional"); len(all) != 0 {
			t.Fatalf("optional filter returned %+v", all)
		}
	})

	t.Run("data_plane_refuses_a_tokenless_get_after_the_change", func(t *testing.T) {
		deadline := time.Now().Add(2 * time.Second)
		for {
			status, _, _ := d.do(t, http.MethodGet, "/latest/meta-data/instance-id", nil)
			if status == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tokenless GET: %d, want 401 within 2s", status)
			}
			time.Sleep(20 * time.Millisecond)
		}
		tok := d.token(t, "60")
		status, _, body := d.do(t, http.MethodGet, "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": tok})
		if status != http.StatusOK || body != demoInstanceID {
			t.Fatalf("GET with token: %d %q", status, body)
		}
	})
}

// The AWS CLI on the guest (botocore) resolves the role credentials and the
// region through IMDSv2 alone: its token PUT, the role name taken from the
// whole body of security-credentials/ (a trailing newline would break it),
// and its strict Expiration parsing.
func TestAWSCLIResolvesCredentialsThroughIMDS(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo")
	waitRoleCredentials(t, d.dataURL, "frontdesk-demo-role")
	cmd := exec.Command(awsCLI, "configure", "export-credentials", "--format", "process")
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + t.TempDir(),
		"LC_ALL=C.UTF-8",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + d.dataURL + "/", // botocore joins paths without a slash
		"AWS_EC2_METADATA_V1_DISABLED=true",
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws configure export-credentials: %v\n%s", err, out)
	}
	var got struct{ AccessKeyId, SecretAccessKey, SessionToken, Expiration string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	tok := d.token(t, "60")
	_, _, body := d.do(t, "GET", "/latest/meta-data/iam/security-credentials/frontdesk-demo-role", map[string]string{"X-aws-ec2-metadata-token": tok})
	var served struct{ AccessKeyId string }
	if err := json.Unmarshal([]byte(body), &served); err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyId == "" || got.AccessKeyId != served.AccessKeyId || got.SessionToken == "" || got.Expiration == "" {
		t.Fatalf("the CLI resolved %q (expiring %q); the data plane serves %q", got.AccessKeyId, got.Expiration, served.AccessKeyId)
	}
}
