package config

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/credentials"
)

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", s)
	}
	return nil
}

// ResolverOptions are passed to the providers Resolver builds. The zero
// value works.
type ResolverOptions struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger is for the providers; slog.Default() when nil.
	Logger *slog.Logger
}

// Resolver builds every configured provider once and returns the function
// the credentials.Refresher uses to pick one per role. Building reads static
// files and loads the host's AWS configuration, so a missing file or an
// unusable AWS setup fails here, at start, naming the key.
func (c *Config) Resolver(ctx context.Context, opts ResolverOptions) (credentials.Resolver, error) {
	def, err := newProvider(ctx, "credentials.default", c.Credentials.Default, opts)
	if err != nil {
		return nil, err
	}
	roles := make(map[string]credentials.Provider, len(c.Credentials.Roles))
	for name, pc := range c.Credentials.Roles {
		p, err := newProvider(ctx, "credentials.roles."+name, pc, opts)
		if err != nil {
			return nil, err
		}
		roles[name] = p
	}
	return func(role string) credentials.Provider {
		if p, ok := roles[role]; ok {
			return p
		}
		return def
	}, nil
}

func newProvider(ctx context.Context, key string, pc Provider, opts ResolverOptions) (credentials.Provider, error) {
	switch pc.Provider {
	case ProviderStatic:
		p, err := credentials.NewStatic(pc.File, credentials.StaticOptions{Now: opts.Now})
		if err != nil {
			return nil, fmt.Errorf("%s.file: %w", key, err)
		}
		return p, nil
	case ProviderSTS:
		p, err := credentials.NewSTS(ctx, credentials.STSConfig{
			RoleArn:        pc.RoleArn,
			ExternalID:     pc.ExternalID,
			Duration:       pc.Duration,
			Region:         pc.Region,
			Endpoint:       pc.Endpoint,
			SourceIdentity: pc.SourceIdentity,
			Now:            opts.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return p, nil
	case ProviderProfile:
		p, err := credentials.NewProfile(ctx, credentials.ProfileConfig{Profile: pc.Profile, STSEndpoint: pc.Endpoint, Lifetime: pc.Lifetime, Now: opts.Now})
		if err != nil {
			return nil, fmt.Errorf("%s.profile: %w", key, err)
		}
		return p, nil
	default:
		return credentials.NewLocal(credentials.LocalOptions{Now: opts.Now, Lifetime: pc.Lifetime}), nil
	}
}
