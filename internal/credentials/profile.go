package credentials

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// DefaultProfileLifetime is the Expiration served for a profile whose
// credentials do not expire (long-term keys): the Refresher reads the
// profile again before then, so an edit of the file is picked up.
const DefaultProfileLifetime = time.Hour

// profileRenewBefore: credentials from the SDK's cache with less left than
// this are renewed at once. It is longer than the Refresher's smallest lead
// (15 minutes), so a refresh never gets back the credentials it replaces.
const profileRenewBefore = 20 * time.Minute

// ProfileConfig configures a Profile provider.
type ProfileConfig struct {
	// Profile is the name of the profile in the host's AWS configuration
	// (required).
	Profile string
	// ConfigFiles and CredentialsFiles replace the SDK's default shared
	// files (~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE and
	// AWS_SHARED_CREDENTIALS_FILE) when set.
	ConfigFiles, CredentialsFiles []string
	// STSEndpoint is an STS-compatible endpoint URL for assumed-role
	// profiles (a VPC endpoint, tests); the SDK's choice when empty.
	STSEndpoint string
	// Lifetime is the Expiration given to credentials that do not expire
	// (DefaultProfileLifetime when zero).
	Lifetime time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Profile serves the credentials of a named profile of the host's AWS
// configuration: a developer's SSO session, an assumed role, a
// credential_process or plain keys. The SDK resolves the profile and
// refreshes what it yields with its own providers (SSO token refresh,
// AssumeRole, the process); frontdesk only asks it for the current
// credentials whenever the Refresher wants new ones. Every instance of the
// role gets the profile's credentials: the profile is one identity, the
// developer's, and each container is still its own instance.
type Profile struct {
	name     string
	creds    aws.CredentialsProvider
	lifetime time.Duration
	now      func() time.Time
}

// NewProfile loads the profile (no network calls); a profile that does not
// exist is an error now, not at the first refresh.
func NewProfile(ctx context.Context, cfg ProfileConfig) (*Profile, error) {
	if cfg.Profile == "" {
		return nil, fmt.Errorf("profile: no profile name")
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithSharedConfigProfile(cfg.Profile)}
	if cfg.ConfigFiles != nil {
		opts = append(opts, awsconfig.WithSharedConfigFiles(cfg.ConfigFiles))
	}
	opts = append(opts, awsconfig.WithAssumeRoleCredentialOptions(func(o *stscreds.AssumeRoleOptions) {
		// The SDK's default session (15 minutes) is shorter than the
		// Refresher's lead; a profile's duration_seconds still wins.
		if o.Duration == 0 {
			o.Duration = DefaultSTSDuration
		}
		if c, ok := o.Client.(*sts.Client); ok && cfg.STSEndpoint != "" {
			o.Client = sts.New(c.Options(), func(so *sts.Options) { so.BaseEndpoint = aws.String(cfg.STSEndpoint) })
		}
	}))
	if cfg.CredentialsFiles != nil {
		opts = append(opts, awsconfig.WithSharedCredentialsFiles(cfg.CredentialsFiles))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", cfg.Profile, err)
	}
	if ac.Credentials == nil {
		return nil, fmt.Errorf("profile %s: no credentials in it", cfg.Profile)
	}
	p := &Profile{name: cfg.Profile, creds: ac.Credentials, lifetime: cfg.Lifetime, now: cfg.Now}
	if p.lifetime <= 0 {
		p.lifetime = DefaultProfileLifetime
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Retrieve returns the profile's current credentials, whatever the target.
func (p *Profile) Retrieve(ctx context.Context, t Target) (Credentials, error) {
	c, err := p.creds.Retrieve(ctx)
	if cc, ok := p.creds.(*aws.CredentialsCache); ok && err == nil && c.CanExpire && time.Until(c.Expires) < profileRenewBefore {
		// The SDK's cache would hand these out until they expire; ask its
		// provider (SSO, AssumeRole, the process) for new ones instead.
		cc.Invalidate()
		c, err = cc.Retrieve(ctx)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("profile %s for %s: %w", p.name, t, err)
	}
	now := p.now().UTC().Truncate(time.Second)
	exp := c.Expires
	if !c.CanExpire || exp.IsZero() {
		exp = now.Add(p.lifetime)
	}
	return Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Expiration:      exp.UTC().Truncate(time.Second),
		LastUpdated:     now,
	}, nil
}
