package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/credentials"
)

func TestPolicy(t *testing.T) {
	p := &Docker{Allow: []DockerRule{
		{Roles: []string{"app-role"}, Images: []string{"registry.example.com/app:*", "busybox"}},
		{Roles: []string{"ci-*"}, Labels: map[string]string{"ci": "*"}},
	}}
	for _, c := range []struct {
		role, image string
		labels      map[string]string
		want        bool
	}{
		{"app-role", "registry.example.com/app:1.2", nil, true},
		{"app-role", "busybox", nil, true},
		{"app-role", "busybox:latest", nil, true},
		{"app-role", "busybox:1.36", nil, false},
		{"app-role", "evil/app:1", nil, false},
		{"ci-build", "anything", map[string]string{"ci": "yes"}, true},
		{"ci-build", "anything", nil, false},
		{"admin", "busybox", map[string]string{"ci": "yes"}, false},
	} {
		if got := p.Allowed(c.role, c.image, c.labels); got != c.want {
			t.Errorf("Allowed(%s, %s, %v) = %v", c.role, c.image, c.labels, got)
		}
	}
	if (&Docker{}).Allowed("any", "img", nil) {
		t.Error("the zero policy granted a role")
	}
	for _, bad := range []Docker{{HopLimit: 65}, {HTTPTokens: "no"}, {UserDataDir: "rel"}, {Allow: []DockerRule{{}}}, {Allow: []DockerRule{{Roles: []string{"["}}}}} {
		if err := bad.Validate("docker"); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

func TestDockerSectionAndProfileProvider(t *testing.T) {
	dir := t.TempDir()
	awsConfig := filepath.Join(dir, "aws-config")
	if err := os.WriteFile(awsConfig, []byte("[profile dev]\naws_access_key_id = AKIADEVPROFILE000001\naws_secret_access_key = s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", awsConfig)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	c, err := Load(writeFile(t, "c.yaml", `
credentials:
  default: { provider: profile, profile: dev }
docker:
  hop_limit: 2
  http_tokens: optional
  allow:
    - roles: [app-role]
      images: ["app:*"]
      labels: { team: "*" }
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Docker.HopLimit != 2 || c.Docker.HTTPTokens != "optional" || !c.Docker.Allowed("app-role", "app:1", map[string]string{"team": "a"}) ||
		c.Docker.Allowed("app-role", "app:1", nil) {
		t.Fatalf("docker section %+v", c.Docker)
	}
	resolve, err := c.Resolver(context.Background(), ResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := resolve("any").Retrieve(context.Background(), credentials.Target{InstanceID: "i-0123456789abcdef0", Role: "any"})
	if err != nil || got.AccessKeyID != "AKIADEVPROFILE000001" {
		t.Fatalf("profile provider: %v %v", got, err)
	}

	bad, err := Load(writeFile(t, "bad.yaml", "credentials:\n  roles:\n    r: { provider: profile, profile: missing }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Resolver(context.Background(), ResolverOptions{}); err == nil || !strings.HasPrefix(err.Error(), "credentials.roles.r.profile: ") {
		t.Fatalf("missing profile: %v", err)
	}
}
