package apiclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSettingsResolveAsTheCLIDoes(t *testing.T) {
	env := map[string]string{"FRONTDESK_ENDPOINT": "http://127.0.0.1:7000", "FRONTDESK_DATA_DIR": "/var/lib/frontdesk"}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		name string
		in   Settings
		env  func(string) string
		want Settings
	}{
		{"defaults_without_environment", Settings{}, func(string) string { return "" },
			Settings{Endpoint: DefaultEndpoint, Region: DefaultRegion, DataDir: DefaultDataDir}},
		{"environment_fills_empty_fields", Settings{}, getenv,
			Settings{Endpoint: "http://127.0.0.1:7000", Region: DefaultRegion, DataDir: "/var/lib/frontdesk"}},
		{"given_fields_win", Settings{Endpoint: "http://127.0.0.1:8000", Region: "eu-west-1", DataDir: "/tmp/fd"}, getenv,
			Settings{Endpoint: "http://127.0.0.1:8000", Region: "eu-west-1", DataDir: "/tmp/fd"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Resolve(tc.env); got != tc.want {
				t.Errorf("Resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConnectFindsCredentials(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, AdminCredentialsFile), []byte("[default]\naws_access_key_id = AKIADATADIR000000000\naws_secret_access_key = s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name       string
		s          Settings
		env        map[string]string
		wantKey    string
		wantSource string
		wantErr    bool
	}{
		{"data_dir_from_the_environment", Settings{}, map[string]string{"FRONTDESK_DATA_DIR": dir}, "AKIADATADIR000000000", filepath.Join(dir, AdminCredentialsFile), false},
		{"aws_environment", Settings{DataDir: t.TempDir()}, map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENV0000000000000", "AWS_SECRET_ACCESS_KEY": "e"}, "AKIAENV0000000000000", "environment", false},
		{"explicit_keys_win_over_the_data_dir", Settings{DataDir: dir, AccessKeyID: "AKIACONFIG0000000000", SecretAccessKey: "c"}, nil, "AKIACONFIG0000000000", "configuration", false},
		{"half_a_key_is_an_error", Settings{AccessKeyID: "AKIACONFIG0000000000"}, nil, "", "", true},
		{"nothing_found_is_an_error", Settings{DataDir: t.TempDir()}, nil, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, source, err := Connect(ctx, tc.s, func(k string) string { return tc.env[k] }, Options{})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Connect succeeded (source %s), want an error", source)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := cl.creds.Retrieve(ctx)
			if err != nil || c.AccessKeyID != tc.wantKey || source != tc.wantSource {
				t.Errorf("key %s from %q (%v), want %s from %q", c.AccessKeyID, source, err, tc.wantKey, tc.wantSource)
			}
		})
	}
	if _, _, err := Connect(ctx, Settings{DataDir: t.TempDir()}, func(string) string { return "" }, Options{}); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("err %v, want ErrNoCredentials", err)
	}
}
