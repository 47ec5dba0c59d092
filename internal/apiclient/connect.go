package apiclient

import (
	"context"
)

// DefaultDataDir is the data directory `frontdesk serve` uses by default,
// relative to the working directory.
const DefaultDataDir = "./frontdesk-data"

// Settings say which control plane to talk to and where its credentials
// are. An empty field is found the way the frontdesk CLI finds it (see
// Resolve).
type Settings struct {
	// Endpoint is the control plane URL.
	Endpoint string
	// Region scopes the signatures.
	Region string
	// DataDir is a frontdesk data directory whose admin.credentials to use
	// when it holds one.
	DataDir string
	// AccessKeyID and SecretAccessKey, when both are set, are used instead
	// of any discovered credentials; SessionToken goes with them.
	AccessKeyID, SecretAccessKey, SessionToken string
}

// Resolve fills the empty fields of s from the environment as the CLI
// does: Endpoint from FRONTDESK_ENDPOINT, else DefaultEndpoint; DataDir
// from FRONTDESK_DATA_DIR, else DefaultDataDir; Region DefaultRegion.
// Credentials are left to Connect.
func (s Settings) Resolve(getenv func(string) string) Settings {
	if s.Endpoint == "" {
		s.Endpoint = getenv("FRONTDESK_ENDPOINT")
	}
	if s.Endpoint == "" {
		s.Endpoint = DefaultEndpoint
	}
	if s.DataDir == "" {
		s.DataDir = getenv("FRONTDESK_DATA_DIR")
	}
	if s.DataDir == "" {
		s.DataDir = DefaultDataDir
	}
	if s.Region == "" {
		s.Region = DefaultRegion
	}
	return s
}

// Connect returns a client of the control plane s names (resolved with
// Resolve) signing with the credentials LoadCredentials finds for it,
// unless s carries keys of its own. The second result names where the
// credentials came from, for messages.
func Connect(ctx context.Context, s Settings, getenv func(string) string, opts Options) (*Client, string, error) {
	s = s.Resolve(getenv)
	if s.AccessKeyID != "" || s.SecretAccessKey != "" {
		creds, err := staticCredentials(s.AccessKeyID, s.SecretAccessKey, s.SessionToken)
		if err != nil {
			return nil, "", err
		}
		opts.Region = s.Region
		return New(s.Endpoint, creds, opts), "configuration", nil
	}
	creds, source, err := LoadCredentials(ctx, s.DataDir, getenv)
	if err != nil {
		return nil, "", err
	}
	opts.Region = s.Region
	return New(s.Endpoint, creds, opts), source, nil
}
