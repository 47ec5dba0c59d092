package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/credentials"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValid(t *testing.T) {
	creds := writeFile(t, "creds.json", `{"AccessKeyId":"AKIAEXAMPLE","SecretAccessKey":"s"}`)
	path := writeFile(t, "frontdesk.yaml", `
credentials:
  default: { provider: local, lifetime: 2h }
  roles:
    my-role: { provider: sts, role_arn: "arn:aws:iam::123456789012:role/x", external_id: "ext-1", duration: 1h, region: us-east-1, endpoint: "http://127.0.0.1:9", source_identity: true }
    other:   { provider: static, file: `+creds+` }
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sts := c.Credentials.Roles["my-role"]
	if sts.Provider != "sts" || sts.RoleArn != "arn:aws:iam::123456789012:role/x" || sts.ExternalID != "ext-1" ||
		sts.Duration != time.Hour || sts.Region != "us-east-1" || sts.Endpoint != "http://127.0.0.1:9" || !sts.SourceIdentity {
		t.Errorf("my-role = %+v", sts)
	}
	if c.Credentials.Default.Lifetime != 2*time.Hour {
		t.Errorf("default = %+v", c.Credentials.Default)
	}

	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_PROFILE", "")
	resolve, err := c.Resolver(context.Background(), ResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		role string
		want string
	}{
		{"my-role", "*credentials.STS"},
		{"other", "*credentials.Static"},
		{"unlisted", "*credentials.Local"},
	}
	for _, tc := range checks {
		t.Run(tc.role+"_resolves_to_"+tc.want, func(t *testing.T) {
			if got := typeName(resolve(tc.role)); got != tc.want {
				t.Errorf("resolve(%q) = %s", tc.role, got)
			}
		})
	}
	t.Run("static_provider_serves_the_file", func(t *testing.T) {
		got, err := resolve("other").Retrieve(context.Background(), credentials.Target{InstanceID: "i-1", Role: "other"})
		if err != nil || got.AccessKeyID != "AKIAEXAMPLE" {
			t.Errorf("Retrieve = %v, %v", got, err)
		}
	})
}

func typeName(p credentials.Provider) string {
	switch p.(type) {
	case *credentials.STS:
		return "*credentials.STS"
	case *credentials.Static:
		return "*credentials.Static"
	case *credentials.Local:
		return "*credentials.Local"
	}
	return "other"
}

func TestEmptyFileIsTheDefaultConfig(t *testing.T) {
	c, err := Load(writeFile(t, "empty.yaml", ""))
	if err != nil {
		t.Fatal(err)
	}
	resolve, err := c.Resolver(context.Background(), ResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if typeName(resolve("any")) != "*credentials.Local" {
		t.Error("the default provider is not local")
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown_top_level_key", "credentails: {}\n", "line 1: unknown key credentails"},
		{"unknown_provider_key", "credentials:\n  roles:\n    r: { provider: sts, role_arn: 'arn:aws:iam::123456789012:role/x', rolearn: y }\n", "line 3: unknown key rolearn"},
		{"unknown_provider", "credentials:\n  default: { provider: vault }\n", `credentials.default.provider: "vault" is not one of local, static, sts`},
		{"sts_role_without_arn", "credentials:\n  roles:\n    my-role: { provider: sts }\n", "credentials.roles.my-role.role_arn: required for provider sts"},
		{"bad_role_arn", "credentials:\n  roles:\n    r: { provider: sts, role_arn: 'arn:aws:iam::1234:user/x' }\n", "credentials.roles.r.role_arn: "},
		{"duration_too_short", "credentials:\n  roles:\n    r: { provider: sts, role_arn: 'arn:aws:iam::123456789012:role/x', duration: 5m }\n", "credentials.roles.r.duration: 5m0s is outside"},
		{"duration_not_a_duration", "credentials:\n  roles:\n    r: { provider: sts, role_arn: 'arn:aws:iam::123456789012:role/x', duration: soon }\n", "line 3"},
		{"bad_endpoint", "credentials:\n  roles:\n    r: { provider: sts, role_arn: 'arn:aws:iam::123456789012:role/x', endpoint: 'ftp://x' }\n", "credentials.roles.r.endpoint: "},
		{"bad_region", "credentials:\n  roles:\n    r: { provider: sts, role_arn: 'arn:aws:iam::123456789012:role/x', region: 'US East' }\n", "credentials.roles.r.region: "},
		{"bad_external_id", "credentials:\n  roles:\n    r: { provider: sts, role_arn: 'arn:aws:iam::123456789012:role/x', external_id: 'a b' }\n", "credentials.roles.r.external_id: "},
		{"static_without_file", "credentials:\n  roles:\n    other: { provider: static }\n", "credentials.roles.other.file: required for provider static"},
		{"setting_of_another_provider", "credentials:\n  roles:\n    other: { provider: local, role_arn: 'arn:aws:iam::123456789012:role/x' }\n", "credentials.roles.other.role_arn: not used by provider local"},
		{"invalid_role_name", "credentials:\n  roles:\n    'bad role': { provider: local }\n", "credentials.roles.bad role: not a valid IAM role name"},
		{"local_lifetime_out_of_range", "credentials:\n  default: { lifetime: 1m }\n", "credentials.default.lifetime: "},
		{"profile_without_name", "credentials:\n  default: { provider: profile }\n", "credentials.default.profile: required for provider profile"},
		{"profile_with_role_arn", "credentials:\n  default: { provider: profile, profile: dev, role_arn: 'arn:aws:iam::123456789012:role/x' }\n", "credentials.default.role_arn: not used by provider profile"},
		{"docker_bad_hop_limit", "docker:\n  hop_limit: 99\n", "docker.hop_limit: "},
		{"docker_rule_without_roles", "docker:\n  allow:\n    - images: [busybox]\n", "docker.allow[0].roles: required"},
		{"docker_unknown_key", "docker:\n  allow:\n    - roles: [x]\n      image: [busybox]\n", "unknown key image"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.yaml", tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestResolverErrorsNameTheKey(t *testing.T) {
	t.Run("missing_static_file", func(t *testing.T) {
		c, err := Load(writeFile(t, "c.yaml", "credentials:\n  roles:\n    other: { provider: static, file: /nonexistent/creds.json }\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Resolver(context.Background(), ResolverOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), "credentials.roles.other.file: ") {
			t.Errorf("Resolver = %v", err)
		}
	})
	t.Run("missing_config_file", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil {
			t.Error("Load of a missing file succeeded")
		}
	})
}

func TestYAMLErrorsNameTheLineAndKey(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"misindented_key_is_reported_on_its_own_line",
			"credentials:\n  default:\n    provider: local\n   lifetime: 6h\n",
			[]string{"line 4:", "lifetime: 6h"}},
		{"duration_in_words_names_the_key",
			"credentials:\n  default:\n    provider: local\n    lifetime: 6 hours\n",
			[]string{"line 4:", `lifetime: "6 hours" is not a duration`}},
		{"bool_that_is_not_a_bool_names_the_key",
			"credentials:\n  default:\n    provider: sts\n    source_identity: maybe\n",
			[]string{"line 4:", `source_identity: "maybe" is not true or false`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.doc))
			if err == nil {
				t.Fatal("Parse accepted a broken document")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestTerminatedRetentionKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "frontdesk.yaml")
	if err := os.WriteFile(path, []byte("instances:\n  terminated_retention: 15m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil || c.Instances.TerminatedRetention != 15*time.Minute {
		t.Fatalf("Load: %v, retention %v; want 15m", err, c)
	}
	if err := os.WriteFile(path, []byte("instances:\n  terminated_retention: -1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "terminated_retention") {
		t.Fatalf("a negative retention: %v, want an error naming the key", err)
	}
}

func TestUsageRetention(t *testing.T) {
	c, err := Parse(strings.NewReader("usage:\n  retention: 168h\n"))
	if err != nil || c.Usage.Retention != 168*time.Hour {
		t.Fatalf("usage.retention 168h: %+v, %v", c, err)
	}
	if _, err := Parse(strings.NewReader("usage:\n  retention: 10m\n")); err == nil || !strings.Contains(err.Error(), "usage.retention") {
		t.Errorf("usage.retention 10m: %v, want an error naming the key", err)
	}
}
