package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

func identityEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}, &out, &errOut
}

// storeWithKeys returns a memstore holding identity keys and their PEM.
func storeWithKeys(t *testing.T) (*memstore.Store, []byte) {
	t.Helper()
	s := memstore.New()
	sg, err := identity.LoadOrCreate(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, sg.CertificatesPEM()
}

func TestIdentityCertificates(t *testing.T) {
	s, want := storeWithKeys(t)
	var gotDir string
	open := func(_ context.Context, dir string) (imds.Store, error) { gotDir = dir; return s, nil }

	t.Run("prints_the_three_certificates_from_the_store", func(t *testing.T) {
		e, out, _ := identityEnv()
		if err := runIdentity(context.Background(), e, []string{"certificates", "--data-dir", "/srv/fd"}, open); err != nil {
			t.Fatal(err)
		}
		if gotDir != "/srv/fd" {
			t.Errorf("opened %q, want the --data-dir", gotDir)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("printed:\n%s\nwant:\n%s", out, want)
		}
		n := 0
		for rest := out.Bytes(); ; n++ {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
		}
		if n != 3 {
			t.Fatalf("%d certificates printed, want 3", n)
		}
	})
	t.Run("defaults_to_serves_data_dir", func(t *testing.T) {
		s2, _ := storeWithKeys(t)
		e, _, _ := identityEnv()
		if err := runIdentity(context.Background(), e, []string{"certificates"}, func(_ context.Context, dir string) (imds.Store, error) {
			gotDir = dir
			return s2, nil
		}); err != nil {
			t.Fatal(err)
		}
		if gotDir != "./frontdesk-data" {
			t.Errorf("default data dir %q", gotDir)
		}
	})
}

func TestIdentityErrors(t *testing.T) {
	openErr := errors.New("boom")
	empty := func(context.Context, string) (imds.Store, error) { return memstore.New(), nil }
	tests := []struct {
		name     string
		args     []string
		open     identityStoreOpener
		wantCode int
		wantText string
	}{
		{"missing_subcommand_is_a_usage_error", nil, empty, 2, "missing subcommand"},
		{"unknown_subcommand_is_a_usage_error", []string{"keys"}, empty, 2, `unknown subcommand "keys"`},
		{"extra_argument_is_a_usage_error", []string{"certificates", "x"}, empty, 2, "unexpected argument"},
		{"unknown_flag_is_a_usage_error", []string{"certificates", "--nope"}, empty, 2, "flag provided but not defined"},
		{"store_without_keys_says_to_run_serve", []string{"certificates"}, empty, 1, "frontdesk serve creates them"},
		{"store_open_error_is_reported", []string{"certificates"}, func(context.Context, string) (imds.Store, error) { return nil, openErr }, 1, "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, out, errOut := identityEnv()
			err := runIdentity(context.Background(), e, tc.args, tc.open)
			if err == nil {
				t.Fatal("no error")
			}
			if code := exitCode(err); code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
			if !strings.Contains(err.Error()+errOut.String(), tc.wantText) {
				t.Errorf("error %q / stderr %q does not mention %q", err, errOut, tc.wantText)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on failure", out)
			}
		})
	}
}

func TestIdentityCertificatesReadsServesBoltStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	t.Run("missing_store_is_an_error_and_creates_nothing", func(t *testing.T) {
		e, _, _ := identityEnv()
		if err := cmdIdentity(ctx, e, []string{"certificates", "--data-dir", dir}); err == nil {
			t.Fatal("no error for a data dir without a store")
		}
		if _, err := os.Stat(filepath.Join(dir, "frontdesk.db")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("store file created: %v", err)
		}
	})

	bs, err := bolt.Open(filepath.Join(dir, "frontdesk.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := identity.LoadOrCreate(ctx, bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	e, out, _ := identityEnv()
	if err := cmdIdentity(ctx, e, []string{"certificates", "--data-dir", dir}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), sg.CertificatesPEM()) {
		t.Fatal("printed certificates differ from the stored keys'")
	}
}
