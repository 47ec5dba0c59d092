//go:build integration

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// fakeSTS answers AssumeRole with the real STS XML and remembers who asked.
type fakeSTS struct {
	mu       sync.Mutex
	sessions []string // RoleSessionName of every call
	arns     []string
	signers  []string // access key id in each Authorization header
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.sessions = append(f.sessions, r.Form.Get("RoleSessionName"))
	f.arns = append(f.arns, r.Form.Get("RoleArn"))
	auth := r.Header.Get("Authorization")
	if _, after, ok := strings.Cut(auth, "Credential="); ok {
		key, _, _ := strings.Cut(after, "/")
		f.signers = append(f.signers, key)
	}
	n := len(f.sessions)
	f.mu.Unlock()
	exp := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROAFRONTDESKE2E0000:%[1]s</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/frontdesk-demo-role/%[1]s</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIASTSE2E%06[2]d</AccessKeyId>
      <SecretAccessKey>stsE2EsecretAccessKey0000000000000000000</SecretAccessKey>
      <SessionToken>FwoGZXIvYXdzEE2ESessionToken%[2]d</SessionToken>
      <Expiration>%[3]s</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>4a2b2a1e-0000-4000-8000-00000000e2e0</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, r.Form.Get("RoleSessionName"), n, exp)
}

// End to end with real credentials: the daemon assumes the instance's role
// through STS with the host's own identity, and an unmodified SDK on the
// guest (config.LoadDefaultConfig with AWS_EC2_METADATA_SERVICE_ENDPOINT)
// resolves exactly those credentials through IMDSv2.
func TestSTSCredentialsReachTheSDK(t *testing.T) {
	sts := &fakeSTS{}
	srv := httptest.NewServer(sts)
	defer srv.Close()
	cfgFile := filepath.Join(t.TempDir(), "frontdesk.yaml")
	yaml := "credentials:\n  default:\n    provider: sts\n    region: us-east-1\n    endpoint: " + srv.URL + "\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildFrontdesk(t)
	p := startProc(t, bin, procOptions{env: []string{
		// The host's identity, as the default credential chain finds it.
		"AWS_ACCESS_KEY_ID=AKIAHOSTIDENTITYE2E0", "AWS_SECRET_ACCESS_KEY=hostSecretKeyForTheE2ETest0000000000000",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	}}, "--demo", "--config", cfgFile, "--log-level", "warn")

	// The guest: no credentials of its own, only the IMDS endpoint.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", p.dataURL)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The daemon fetches from STS in the background right after start;
	// until that first fetch lands the role answers 404, as EC2 does just
	// after an association. A guest boots later than that; wait for it.
	waitRoleCredentials(t, p.dataURL, "frontdesk-demo-role")
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("LoadDefaultConfig credentials: %v", err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIASTSE2E") || creds.SessionToken == "" || !creds.CanExpire {
		t.Fatalf("credentials %s (expires %v): want the STS-issued ones", creds.AccessKeyID, creds.Expires)
	}

	// ec2rolecreds directly, with the fallback to IMDSv1 disabled.
	direct := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.New(imds.Options{Endpoint: p.dataURL})
	})
	c2, err := direct.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c2.AccessKeyID != creds.AccessKeyID {
		t.Fatalf("ec2rolecreds got %s, LoadDefaultConfig %s: the cache must serve one set", c2.AccessKeyID, creds.AccessKeyID)
	}

	sts.mu.Lock()
	defer sts.mu.Unlock()
	if len(sts.sessions) != 1 {
		t.Fatalf("%d AssumeRole calls, want exactly 1 (fetched at launch, served from the cache)", len(sts.sessions))
	}
	if sts.sessions[0] != demoInstanceID {
		t.Errorf("role session name %q, want the instance id %s", sts.sessions[0], demoInstanceID)
	}
	if sts.arns[0] != "arn:aws:iam::123456789012:role/frontdesk-demo-role" {
		t.Errorf("role ARN %q", sts.arns[0])
	}
	if sts.signers[0] != "AKIAHOSTIDENTITYE2E0" {
		t.Errorf("AssumeRole signed by %q, want the host's key", sts.signers[0])
	}
}
