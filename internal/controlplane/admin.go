package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// AdminSecretName is the store secret that holds the admin credentials.
const AdminSecretName = "admin-credentials"

// AdminCredentials are the access key the control plane accepts. They live in
// the store, so every node of a fleet accepts the same key.
type AdminCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

var accessKeyIDRe = regexp.MustCompile(`^AKIA[A-Z0-9]{16}$`)

func (c AdminCredentials) valid() bool {
	return accessKeyIDRe.MatchString(c.AccessKeyID) && len(c.SecretAccessKey) >= 32
}

// LoadOrCreateAdmin returns the admin credentials, creating them on first
// start. Reading and creating happen in one Update, so two nodes starting
// together agree on a single key.
func LoadOrCreateAdmin(ctx context.Context, store imds.Store) (AdminCredentials, error) {
	var out AdminCredentials
	err := store.Update(ctx, func(tx imds.Tx) error {
		b, err := imds.GetSecret(tx, AdminSecretName)
		switch {
		case err == nil:
			var c AdminCredentials
			if err := json.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("decode admin credentials: %w", err)
			}
			if !c.valid() {
				return errors.New("stored admin credentials are malformed")
			}
			out = c
			return nil
		case errors.Is(err, imds.ErrNotFound):
		default:
			return err
		}
		c, err := newAdminCredentials()
		if err != nil {
			return err
		}
		b, err = json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode admin credentials: %w", err)
		}
		if err := imds.PutSecret(tx, AdminSecretName, b); err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return AdminCredentials{}, fmt.Errorf("admin credentials: %w", err)
	}
	return out, nil
}

func newAdminCredentials() (AdminCredentials, error) {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return AdminCredentials{}, fmt.Errorf("random key id: %w", err)
	}
	for i, b := range id {
		// 256 % 36 != 0 leaves a slight bias; the key id is an identifier,
		// not the secret, so that is harmless.
		id[i] = alnum[int(b)%len(alnum)]
	}
	secret := make([]byte, 30)
	if _, err := rand.Read(secret); err != nil {
		return AdminCredentials{}, fmt.Errorf("random secret: %w", err)
	}
	return AdminCredentials{
		AccessKeyID:     "AKIA" + string(id),
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret), // 40 characters, like AWS's
	}, nil
}

// WriteSharedCredentialsFile writes c as an AWS shared-credentials file
// (profile "default") readable only by its owner. It writes a temporary file
// beside path and renames it, so a reader never sees half a file.
func WriteSharedCredentialsFile(path string, c AdminCredentials) error {
	if !c.valid() {
		return errors.New("write credentials file: malformed credentials")
	}
	content := "[default]\naws_access_key_id = " + c.AccessKeyID + "\naws_secret_access_key = " + c.SecretAccessKey + "\n"
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write credentials file: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	return nil
}
