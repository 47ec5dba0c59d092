package apiclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
)

// AdminCredentialsFile is the file `frontdesk serve` writes in its data
// directory: the admin key in AWS shared-credentials format, profile
// default.
const AdminCredentialsFile = "admin.credentials"

// ErrNoCredentials means no source of credentials was found.
var ErrNoCredentials = errors.New("no credentials")

// LoadCredentials finds the admin credentials the way an operator expects:
// <dataDir>/admin.credentials when it exists (the daemon on this machine
// wrote it), else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN, else the profile AWS_PROFILE (default "default") of the
// shared credentials file AWS_SHARED_CREDENTIALS_FILE (default
// $HOME/.aws/credentials) and config file AWS_CONFIG_FILE. The environment
// comes from getenv, never from the process, so tests stay independent.
// The second result names the source, for messages.
func LoadCredentials(ctx context.Context, dataDir string, getenv func(string) string) (aws.CredentialsProvider, string, error) {
	if dataDir != "" {
		path := filepath.Join(dataDir, AdminCredentialsFile)
		switch _, err := os.Stat(path); {
		case err == nil:
			p, err := sharedProfile(ctx, "default", []string{path}, []string{})
			if err != nil {
				return nil, "", err
			}
			return p, path, nil
		case !errors.Is(err, os.ErrNotExist):
			return nil, "", fmt.Errorf("admin credentials: %w", err)
		}
	}
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" || secret != "" {
		if id == "" || secret == "" {
			return nil, "", errors.New("credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set")
		}
		p, err := staticCredentials(id, secret, getenv("AWS_SESSION_TOKEN"))
		if err != nil {
			return nil, "", err
		}
		return p, "environment", nil
	}
	profile := getenv("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	credFile, confFile := getenv("AWS_SHARED_CREDENTIALS_FILE"), getenv("AWS_CONFIG_FILE")
	if home := getenv("HOME"); home != "" {
		if credFile == "" {
			credFile = filepath.Join(home, ".aws", "credentials")
		}
		if confFile == "" {
			confFile = filepath.Join(home, ".aws", "config")
		}
	}
	var credFiles, confFiles []string
	if credFile != "" {
		credFiles = []string{credFile}
	}
	if confFile != "" {
		confFiles = []string{confFile}
	}
	if credFiles == nil && confFiles == nil {
		return nil, "", fmt.Errorf("%w: no %s in the data dir, no AWS_ACCESS_KEY_ID, no shared credentials file", ErrNoCredentials, AdminCredentialsFile)
	}
	p, err := sharedProfile(ctx, profile, credFiles, append([]string{}, confFiles...))
	if err != nil {
		return nil, "", fmt.Errorf("%w (looked for %s in the data dir, AWS_ACCESS_KEY_ID and profile %q of %s)", err, AdminCredentialsFile, profile, credFile)
	}
	return p, fmt.Sprintf("profile %s of %s", profile, credFile), nil
}

// staticCredentials is a fixed access key; both halves are required.
func staticCredentials(id, secret, session string) (aws.CredentialsProvider, error) {
	if id == "" || secret == "" {
		return nil, errors.New("credentials: an access key id and a secret access key must both be given")
	}
	return awscreds.NewStaticCredentialsProvider(id, secret, session), nil
}

// sharedProfile reads static keys of one profile with the SDK's own parser.
// Profiles that need a role, SSO or a process are not for frontdesk, whose
// admin key is a plain access key.
func sharedProfile(ctx context.Context, profile string, credFiles, confFiles []string) (aws.CredentialsProvider, error) {
	if credFiles == nil {
		credFiles = []string{}
	}
	sc, err := config.LoadSharedConfigProfile(ctx, profile, func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = credFiles
		o.ConfigFiles = confFiles
	})
	if err != nil {
		var nf config.SharedConfigProfileNotExistError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%w: profile %q not found", ErrNoCredentials, profile)
		}
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if !sc.Credentials.HasKeys() {
		return nil, fmt.Errorf("%w: profile %q has no aws_access_key_id and aws_secret_access_key", ErrNoCredentials, profile)
	}
	c := sc.Credentials
	return awscreds.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken), nil
}
