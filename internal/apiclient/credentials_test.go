package apiclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCLILoadCredentials(t *testing.T) {
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	adminDir := t.TempDir()
	write(t, filepath.Join(adminDir, AdminCredentialsFile), "[default]\naws_access_key_id = AKIADATADIR000000000\naws_secret_access_key = datadirsecret\n")
	shared := filepath.Join(t.TempDir(), "credentials")
	write(t, shared, "[default]\naws_access_key_id = AKIADEFAULT000000000\naws_secret_access_key = s1\n[ops]\naws_access_key_id = AKIAOPS0000000000000\naws_secret_access_key = s2\naws_session_token = tok\n")
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(home, ".aws", "credentials"), "[default]\naws_access_key_id = AKIAHOME000000000000\naws_secret_access_key = s3\n")

	cases := []struct {
		name    string
		dataDir string
		env     map[string]string
		wantKey string
		wantTok string
		wantErr error
	}{
		{"data_dir_file_wins_over_the_environment", adminDir, map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENV0000000000000", "AWS_SECRET_ACCESS_KEY": "e"}, "AKIADATADIR000000000", "", nil},
		{"environment_keys_without_a_data_dir_file", t.TempDir(), map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENV0000000000000", "AWS_SECRET_ACCESS_KEY": "e", "AWS_SESSION_TOKEN": "st"}, "AKIAENV0000000000000", "st", nil},
		{"shared_file_default_profile", "", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": shared}, "AKIADEFAULT000000000", "", nil},
		{"shared_file_named_profile", "", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": shared, "AWS_PROFILE": "ops"}, "AKIAOPS0000000000000", "tok", nil},
		{"home_credentials_file", "", map[string]string{"HOME": home}, "AKIAHOME000000000000", "", nil},
		{"unknown_profile_is_no_credentials", "", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": shared, "AWS_PROFILE": "nope"}, "", "", ErrNoCredentials},
		{"nothing_at_all_is_no_credentials", t.TempDir(), nil, "", "", ErrNoCredentials},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := LoadCredentials(context.Background(), tc.dataDir, func(k string) string { return tc.env[k] })
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := p.Retrieve(context.Background())
			if err != nil || c.AccessKeyID != tc.wantKey || c.SessionToken != tc.wantTok {
				t.Errorf("got %s token %q (%v), want %s token %q", c.AccessKeyID, c.SessionToken, err, tc.wantKey, tc.wantTok)
			}
		})
	}

	t.Run("half_set_environment_is_an_error", func(t *testing.T) {
		_, _, err := LoadCredentials(context.Background(), "", func(k string) string {
			return map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENV0000000000000"}[k]
		})
		if err == nil {
			t.Fatal("want an error")
		}
	})
}
