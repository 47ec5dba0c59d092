package credentials

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// profileFiles writes a shared config and credentials file with a
// long-term-key profile, a credential_process profile whose keys change on
// every run, and an assumed-role profile whose STS is sts.
func profileFiles(t *testing.T) (config, creds string) {
	t.Helper()
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	script := filepath.Join(dir, "proc.sh")
	// Each run prints new keys that expire in 10 minutes: inside the SDK
	// cache's renewal window, so each Retrieve runs the process again.
	if err := os.WriteFile(script, []byte(`#!/bin/sh
n=$(cat `+counter+` 2>/dev/null || echo 0); n=$((n+1)); echo $n > `+counter+`
exp=$(date -u -d '+10 minutes' +%Y-%m-%dT%H:%M:%SZ)
printf '{"Version":1,"AccessKeyId":"ASIAPROC%06d","SecretAccessKey":"s","SessionToken":"tok","Expiration":"%s"}' $n $exp
`), 0o700); err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(dir, "config")
	creds = filepath.Join(dir, "credentials")
	if err := os.WriteFile(config, []byte(`[profile proc]
credential_process = `+script+`

[profile assume]
role_arn = arn:aws:iam::123456789012:role/dev
source_profile = keys
region = us-east-1
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, []byte(`[keys]
aws_access_key_id = AKIAPROFILEKEYS00001
aws_secret_access_key = profile/secret
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return config, creds
}

func TestProfileProvider(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(k, "")
	}
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	sts := newFakeSTS(t, time.Now)
	config, creds := profileFiles(t)
	ctx := context.Background()
	load := func(name string) *Profile {
		t.Helper()
		p, err := NewProfile(ctx, ProfileConfig{Profile: name, ConfigFiles: []string{config}, CredentialsFiles: []string{creds},
			STSEndpoint: sts.URL(), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatalf("profile %s: %v", name, err)
		}
		return p
	}
	target := Target{InstanceID: "i-0123456789abcdef0", Role: "dev-role"}

	// Long-term keys: served with a synthetic expiry, so they are re-read.
	c, err := load("keys").Retrieve(ctx, target)
	if err != nil || c.AccessKeyID != "AKIAPROFILEKEYS00001" || c.SecretAccessKey != "profile/secret" ||
		!c.Expiration.Equal(now.Add(DefaultProfileLifetime)) {
		t.Fatalf("keys: %v %+v", err, c)
	}

	// credential_process: the SDK's own provider runs it again for fresh
	// credentials.
	proc := load("proc")
	c1, err := proc.Retrieve(ctx, target)
	if err != nil || !strings.HasPrefix(c1.AccessKeyID, "ASIAPROC") || c1.SessionToken != "tok" {
		t.Fatalf("proc: %v %+v", err, c1)
	}
	c2, err := proc.Retrieve(ctx, target)
	if err != nil || c2.AccessKeyID == c1.AccessKeyID {
		t.Fatalf("proc was not refreshed: %v %s then %s", err, c1.AccessKeyID, c2.AccessKeyID)
	}
	if d := time.Until(c2.Expiration); d < 8*time.Minute || d > 11*time.Minute {
		t.Fatalf("proc expiration %s is not the process's", c2.Expiration)
	}

	// Assumed role: the SDK assumes it with the source profile's keys.
	c, err = load("assume").Retrieve(ctx, target)
	if err != nil || !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.SessionToken == "" {
		t.Fatalf("assume: %v %+v", err, c)
	}
	calls := sts.Calls()
	if len(calls) != 1 || calls[0].Get("RoleArn") != "arn:aws:iam::123456789012:role/dev" || calls[0].Get("DurationSeconds") != "3600" {
		t.Fatalf("STS calls %v", calls)
	}
	if auth := sts.Auth(); len(auth) != 1 || !strings.Contains(auth[0], "AKIAPROFILEKEYS00001") {
		t.Fatalf("AssumeRole not signed with the source profile: %v", auth)
	}

	// A profile that does not exist fails at start.
	if _, err := NewProfile(ctx, ProfileConfig{Profile: "nope", ConfigFiles: []string{config}, CredentialsFiles: []string{creds}}); err == nil {
		t.Fatal("a missing profile loaded")
	}
}
