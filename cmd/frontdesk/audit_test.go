package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The audit stream, through the real daemon: an IMDSv1 call names the
// instance, path and user agent (how an operator finds the process to
// migrate), a credential delivery names the key id but never the secret or
// session token, and a control-plane change names the access key that made it.
func TestAuditStream(t *testing.T) {
	dir := t.TempDir()
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	d := startDaemon(t, dir, "--demo", "--demo-http-tokens", "optional", "--audit-log", auditFile)

	if s, _, _ := d.do(t, "GET", "/latest/meta-data/placement/region", map[string]string{"User-Agent": "legacy-agent/1.0"}); s != 200 {
		t.Fatalf("v1 GET: %d", s)
	}
	waitRoleCredentials(t, d.dataURL, "frontdesk-demo-role")
	tok := d.token(t, "60")
	_, _, creds := d.do(t, "GET", "/latest/meta-data/iam/security-credentials/frontdesk-demo-role", map[string]string{"X-aws-ec2-metadata-token": tok})
	var c struct{ AccessKeyId, SecretAccessKey, Token string }
	if err := json.Unmarshal([]byte(creds), &c); err != nil || c.AccessKeyId == "" {
		t.Fatalf("credentials %q: %v", creds, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := apiFor(t, d.dataDir, d.apiURL).ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(demoInstanceID), HttpTokens: types.HttpTokensStateRequired,
	}); err != nil {
		t.Fatal(err)
	}
	adminKeyID, _ := adminKey(t, dir)
	if err := d.stop(); err != nil { // flushes the audit log
		t.Fatal(err)
	}

	raw, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{c.SecretAccessKey, c.Token, tok} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("the audit stream contains a secret, session token or IMDS token")
		}
	}
	seen := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		seen[ev["event"].(string)] = ev
	}
	v1 := seen["imds_v1_call"]
	if v1 == nil || v1["instance_id"] != demoInstanceID || v1["path"] != "/latest/meta-data/placement/region" || v1["user_agent"] != "legacy-agent/1.0" {
		t.Errorf("imds_v1_call event %v", v1)
	}
	del := seen["credential_delivery"]
	if del == nil || del["access_key_id"] != c.AccessKeyId || del["role"] != "frontdesk-demo-role" {
		t.Errorf("credential_delivery event %v", del)
	}
	ch := seen["control_plane_change"]
	if ch == nil || ch["access_key_id"] != adminKeyID || ch["action"] != "ModifyInstanceMetadataOptions" {
		t.Errorf("control_plane_change event %v", ch)
	}
}
