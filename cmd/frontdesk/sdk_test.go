package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// The AWS SDK for Go v2 is the client here, with the IMDSv1 fallback
// disabled: every call must succeed through the token flow alone.
func TestSDKAgainstDaemon(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo")
	client := imds.New(imds.Options{Endpoint: d.dataURL, EnableFallback: aws.FalseTernary})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("get_metadata_instance_id", func(t *testing.T) {
		out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out.Content)
		if string(b) != demoInstanceID {
			t.Fatalf("instance-id %q", b)
		}
	})
	t.Run("get_metadata_listing_has_no_trailing_newline", func(t *testing.T) {
		out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "network/interfaces/macs/"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out.Content)
		if string(b) != "02:42:ac:11:00:02/\n02:42:ac:11:00:03/" {
			t.Fatalf("macs listing %q", b)
		}
	})
	t.Run("get_dynamic_data", func(t *testing.T) {
		out, err := client.GetDynamicData(ctx, &imds.GetDynamicDataInput{Path: "instance-identity/document"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out.Content)
		if !strings.Contains(string(b), `"instanceId" : "`+demoInstanceID+`"`) {
			t.Fatalf("document %s", b)
		}
	})
	t.Run("get_user_data", func(t *testing.T) {
		out, err := client.GetUserData(ctx, &imds.GetUserDataInput{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out.Content)
		if string(b) != demoUserData {
			t.Fatalf("user data %q", b)
		}
	})
	t.Run("get_instance_identity_document", func(t *testing.T) {
		out, err := client.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
		if err != nil {
			t.Fatal(err)
		}
		doc := out.InstanceIdentityDocument
		if doc.InstanceID != demoInstanceID || doc.Region != "us-east-1" || doc.AccountID != "123456789012" || doc.PrivateIP != "127.0.0.1" {
			t.Fatalf("document %+v", doc)
		}
	})
	t.Run("get_iam_info", func(t *testing.T) {
		out, err := client.GetIAMInfo(ctx, &imds.GetIAMInfoInput{})
		if err != nil {
			t.Fatal(err)
		}
		if out.IAMInfo.InstanceProfileArn != "arn:aws:iam::123456789012:instance-profile/frontdesk-demo" || out.IAMInfo.Code != "Success" {
			t.Fatalf("iam info %+v", out.IAMInfo)
		}
	})
	t.Run("get_region", func(t *testing.T) {
		out, err := client.GetRegion(ctx, &imds.GetRegionInput{})
		if err != nil {
			t.Fatal(err)
		}
		if out.Region != "us-east-1" {
			t.Fatalf("region %q", out.Region)
		}
	})
	t.Run("ec2rolecreds_retrieves_role_credentials", func(t *testing.T) {
		p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client })
		var creds aws.Credentials
		var err error
		// The refresher fetches at launch; allow it a moment on a busy machine.
		deadline := time.Now().Add(10 * time.Second)
		for {
			creds, err = p.Retrieve(ctx)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SecretAccessKey == "" || creds.SessionToken == "" {
			t.Fatalf("credentials %+v", creds.AccessKeyID)
		}
		if !creds.CanExpire || creds.Expires.Before(time.Now()) {
			t.Fatalf("expiry %v", creds.Expires)
		}
	})
	t.Run("identity_credentials_are_served_and_stable", func(t *testing.T) {
		tok := d.token(t, "60")
		path := "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance"
		s1, _, b1 := d.do(t, "GET", path, map[string]string{"X-aws-ec2-metadata-token": tok})
		s2, _, b2 := d.do(t, "GET", path, map[string]string{"X-aws-ec2-metadata-token": tok})
		var c struct{ Code, AccessKeyId, SecretAccessKey, Token, Expiration string }
		if err := json.Unmarshal([]byte(b1), &c); err != nil || s1 != 200 || s2 != 200 {
			t.Fatalf("%d %d %q: %v", s1, s2, b1, err)
		}
		if c.Code != "Success" || !strings.HasPrefix(c.AccessKeyId, "ASIA") || c.SecretAccessKey == "" || c.Token == "" || b1 != b2 {
			t.Fatalf("identity credentials %q (second answer equal: %v)", b1, b1 == b2)
		}
		_, _, role := d.do(t, "GET", "/latest/meta-data/iam/security-credentials/frontdesk-demo-role", map[string]string{"X-aws-ec2-metadata-token": tok})
		if strings.Contains(role, c.AccessKeyId) {
			t.Fatal("the identity credentials are the role's")
		}
	})
	t.Run("credentials_json_is_ec2_layout", func(t *testing.T) {
		tok := d.token(t, "60")
		status, _, body := d.do(t, "GET", "/latest/meta-data/iam/security-credentials/frontdesk-demo-role", map[string]string{"X-aws-ec2-metadata-token": tok})
		if status != 200 || !strings.HasPrefix(body, "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"") || strings.HasSuffix(body, "\n") {
			t.Fatalf("%d %q", status, body)
		}
		var v struct{ Expiration string }
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse("2006-01-02T15:04:05Z", v.Expiration); err != nil {
			t.Fatalf("Expiration %q: %v", v.Expiration, err)
		}
	})
}

// Tokens are stateless and the key ring lives in the store: a token issued
// before a restart verifies after it, and the demo instance is still there.
func TestTokensSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, "--demo")
	tok := d.token(t, "600")
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	d2 := startDaemon(t, dir)
	status, hdr, body := d2.do(t, "GET", "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": tok})
	if status != 200 || body != demoInstanceID {
		t.Fatalf("after restart: %d %q", status, body)
	}
	if hdr.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
		t.Fatal("no remaining-TTL header")
	}
}
