//go:build integration

package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runAWSIn is runAWS for a control plane in another region: the AWS CLI
// signs for region and fails the test on an error.
func runAWSIn(t *testing.T, credsFile, endpoint, region string, args ...string) map[string]any {
	t.Helper()
	out, err := awsIn(t, credsFile, endpoint, region, args...)
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

// awsIn runs the AWS CLI and returns its output (stderr on failure).
func awsIn(t *testing.T, credsFile, endpoint, region string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(awsCLI, append(args, "--endpoint-url", endpoint, "--region", region, "--output", "json")...)
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "LC_ALL=C.UTF-8",
		"AWS_SHARED_CREDENTIALS_FILE=" + credsFile, "AWS_CONFIG_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
	}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		out = append(out, ee.Stderr...)
	}
	return out, err
}

// The AWS CLI drives every action of the region, key-pair and block-device
// work against serve --region eu-west-1 --account-id 210987654321, and the
// guest sees the result.
func TestAWSCLIRegionKeysAndBlockDevices(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, "--region", "eu-west-1", "--account-id", "210987654321")
	creds := filepath.Join(dir, "admin.credentials")
	aws := func(args ...string) map[string]any {
		t.Helper()
		return runAWSIn(t, creds, d.apiURL, "eu-west-1", args...)
	}

	regions := aws("ec2", "describe-regions")
	r := regions["Regions"].([]any)
	if len(r) != 1 || r[0].(map[string]any)["RegionName"] != "eu-west-1" || r[0].(map[string]any)["Endpoint"] != "ec2.eu-west-1.amazonaws.com" {
		t.Errorf("describe-regions: %v", regions)
	}
	zones := aws("ec2", "describe-availability-zones")["AvailabilityZones"].([]any)
	if len(zones) != 3 {
		t.Fatalf("describe-availability-zones: %v", zones)
	}
	z := zones[2].(map[string]any)
	if z["ZoneName"] != "eu-west-1c" || z["ZoneId"] != "euw1-az3" || z["State"] != "available" || z["RegionName"] != "eu-west-1" {
		t.Errorf("third zone %v", z)
	}
	if out, err := awsIn(t, creds, d.apiURL, "us-east-1", "ec2", "describe-regions"); err == nil || !strings.Contains(string(out), "AuthFailure") {
		t.Errorf("a us-east-1 signature was accepted: %v %s", err, out)
	}

	pub := filepath.Join(dir, "id.pub")
	if err := os.WriteFile(pub, []byte(cliTestKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	imp := aws("ec2", "import-key-pair", "--key-name", "web", "--public-key-material", "fileb://"+pub,
		"--tag-specifications", "ResourceType=key-pair,Tags=[{Key=team,Value=infra}]")
	if imp["KeyFingerprint"] != cliTestKeyFP || !strings.HasPrefix(imp["KeyPairId"].(string), "key-") {
		t.Errorf("import-key-pair: %v", imp)
	}
	if out, err := awsIn(t, creds, d.apiURL, "eu-west-1", "ec2", "import-key-pair", "--key-name", "web", "--public-key-material", "fileb://"+pub); err == nil ||
		!strings.Contains(string(out), "InvalidKeyPair.Duplicate") {
		t.Errorf("second import: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.pub")
	_ = os.WriteFile(bad, []byte("ssh-rsa nonsense\n"), 0o600)
	if out, err := awsIn(t, creds, d.apiURL, "eu-west-1", "ec2", "import-key-pair", "--key-name", "bad", "--public-key-material", "fileb://"+bad); err == nil ||
		!strings.Contains(string(out), "InvalidKeyPair.Format") {
		t.Errorf("bad import: %v %s", err, out)
	}
	created := aws("ec2", "create-key-pair", "--key-name", "ops", "--key-type", "rsa", "--key-format", "pem")
	material, _ := created["KeyMaterial"].(string)
	if !strings.HasPrefix(material, "-----BEGIN RSA PRIVATE KEY-----") {
		t.Fatalf("create-key-pair: %v", created)
	}
	// EC2's rule for a created RSA key: SHA-1 of the PKCS#8 DER private key,
	// as the User Guide computes it with openssl.
	pemFile := filepath.Join(dir, "ops.pem")
	if err := os.WriteFile(pemFile, []byte(material+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fp, err := exec.Command("sh", "-c", "openssl pkcs8 -in "+pemFile+" -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	if got := strings.TrimSpace(string(fp[strings.LastIndex(string(fp), "=")+1:])); got != created["KeyFingerprint"] {
		t.Errorf("created fingerprint %v, openssl says %s", created["KeyFingerprint"], got)
	}
	aws("ec2", "create-key-pair", "--key-name", "edge", "--key-type", "ed25519")
	keys := aws("ec2", "describe-key-pairs", "--include-public-key")["KeyPairs"].([]any)
	if len(keys) != 3 {
		t.Fatalf("describe-key-pairs: %v", keys)
	}
	web := keys[2].(map[string]any)
	if web["KeyName"] != "web" || web["KeyType"] != "ed25519" || web["PublicKey"] != cliTestKey || web["KeyFingerprint"] != cliTestKeyFP {
		t.Errorf("web key %v", web)
	}
	byFilter := aws("ec2", "describe-key-pairs", "--filters", "Name=key-type,Values=rsa")["KeyPairs"].([]any)
	if len(byFilter) != 1 || byFilter[0].(map[string]any)["KeyName"] != "ops" {
		t.Errorf("key-type filter: %v", byFilter)
	}

	run := aws("ec2", "run-instances", "--image-id", "ami-0123456789abcdef0", "--private-ip-address", "127.0.0.8",
		"--key-name", "web", "--placement", "AvailabilityZone=eu-west-1c",
		"--iam-instance-profile", "Arn=arn:aws:iam::999999999999:instance-profile/shared",
		"--block-device-mappings", `[{"DeviceName":"/dev/xvda","Ebs":{"VolumeSize":20}},{"DeviceName":"/dev/sdf","Ebs":{"VolumeSize":100}},{"DeviceName":"/dev/sdb","VirtualName":"ephemeral0"},{"DeviceName":"/dev/sdc","NoDevice":""}]`,
		"--metadata-options", "HttpTokens=required")
	inst := run["Instances"].([]any)[0].(map[string]any)
	if inst["KeyName"] != "web" || inst["Placement"].(map[string]any)["AvailabilityZone"] != "eu-west-1c" || run["OwnerId"] != "210987654321" {
		t.Errorf("run-instances: %v", run)
	}
	if out, err := awsIn(t, creds, d.apiURL, "eu-west-1", "ec2", "run-instances", "--image-id", "ami-0123456789abcdef0",
		"--private-ip-address", "127.0.0.9", "--placement", "AvailabilityZone=us-east-1a"); err == nil || !strings.Contains(string(out), "Invalid availability zone") {
		t.Errorf("zone of another region: %v %s", err, out)
	}
	if out, err := awsIn(t, creds, d.apiURL, "eu-west-1", "ec2", "run-instances", "--image-id", "ami-0123456789abcdef0",
		"--private-ip-address", "127.0.0.9", "--key-name", "missing"); err == nil || !strings.Contains(string(out), "InvalidKeyPair.NotFound") {
		t.Errorf("missing key: %v %s", err, out)
	}

	const addr = "127.0.0.8"
	d.waitGuest(t, addr, "/latest/meta-data/instance-id", true, 200)
	tok := d.guestToken(t, addr)
	for path, want := range map[string]string{
		"/latest/meta-data/public-keys/":                    "0=web",
		"/latest/meta-data/public-keys/0/openssh-key":       cliTestKey + "\n",
		"/latest/meta-data/block-device-mapping/":           "ami\nebs1\nephemeral0\nroot",
		"/latest/meta-data/block-device-mapping/ebs1":       "sdf",
		"/latest/meta-data/block-device-mapping/ephemeral0": "sdb",
		"/latest/meta-data/placement/availability-zone-id":  "euw1-az3",
		"/latest/meta-data/placement/region":                "eu-west-1",
		"/latest/meta-data/iam/security-credentials/":       "shared",
	} {
		if s, got := d.guestGet(t, addr, path, tok); s != 200 || got != want {
			t.Errorf("%s = %d %q, want %q", path, s, got, want)
		}
	}
	aws("ec2", "delete-key-pair", "--key-name", "web") // this CLI's model has no output for it
	if left := aws("ec2", "describe-key-pairs")["KeyPairs"].([]any); len(left) != 2 {
		t.Errorf("after delete: %v", left)
	}
}
