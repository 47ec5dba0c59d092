package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

func TestLoadOrCreateAdmin(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()

	var wg sync.WaitGroup
	got := make([]AdminCredentials, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = LoadOrCreateAdmin(ctx, st)
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("concurrent first starts disagree: %+v vs %+v", got[i], got[0])
		}
	}
	c := got[0]
	if !regexp.MustCompile(`^AKIA[A-Z0-9]{16}$`).MatchString(c.AccessKeyID) || len(c.SecretAccessKey) != 40 {
		t.Fatalf("credentials shape %q / %d chars", c.AccessKeyID, len(c.SecretAccessKey))
	}
	again, err := LoadOrCreateAdmin(ctx, st)
	if err != nil || again != c {
		t.Fatalf("second start: %v %+v", err, again)
	}

	// Corrupt stored credentials are an error, never silently replaced.
	if err := st.Update(ctx, func(tx imds.Tx) error { return imds.PutSecret(tx, AdminSecretName, []byte(`{"accessKeyId":"x"}`)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateAdmin(ctx, st); err == nil {
		t.Fatal("malformed stored credentials accepted")
	}
}

func TestWriteSharedCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.credentials")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSharedCredentialsFile(path, testCreds); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	want := "[default]\naws_access_key_id = " + testCreds.AccessKeyID + "\naws_secret_access_key = " + testCreds.SecretAccessKey + "\n"
	if string(b) != want {
		t.Errorf("content %q", b)
	}
	// The AWS SDK reads the file as written.
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithSharedCredentialsFiles([]string{path}),
		config.WithSharedConfigFiles([]string{filepath.Join(dir, "none")}), config.WithRegion("us-east-1"),
		config.WithSharedConfigProfile("default"))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != testCreds.AccessKeyID || creds.SecretAccessKey != testCreds.SecretAccessKey {
		t.Errorf("SDK read %v %q", err, creds.AccessKeyID)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := WriteSharedCredentialsFile(path, AdminCredentials{AccessKeyID: "bad"}); err == nil || strings.Contains(err.Error(), testCreds.SecretAccessKey) {
		t.Errorf("malformed credentials: %v", err)
	}
}
