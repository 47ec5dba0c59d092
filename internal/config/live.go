package config

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/frontdesk-imds/frontdesk/internal/credentials"
)

// ErrNoFile is Reload's answer when there is no configuration file to
// re-read.
var ErrNoFile = errors.New("no configuration file to reload")

// Live is the credential resolver of a configuration file that may be
// re-read while frontdesk runs (SIGHUP). Start-up and every reload build the
// providers the same way, with the same options. Each role picks up its new
// provider at its next refresh.
type Live struct {
	path string
	opts ResolverOptions
	cur  atomic.Pointer[credentials.Resolver]
	cfg  atomic.Pointer[Config]
}

// OpenLive loads the file at path and builds its providers; an empty path
// is the empty configuration (every role from the local provider).
func OpenLive(ctx context.Context, path string, opts ResolverOptions) (*Live, error) {
	l := &Live{path: path, opts: opts}
	if err := l.load(ctx, &Config{}); err != nil {
		return nil, err
	}
	return l, nil
}

// Config is the configuration as last loaded (the empty one without a
// file). Settings read only at start (region, account, Docker policy,
// retention windows) are read from it once.
func (l *Live) Config() *Config { return l.cfg.Load() }

// Path is the configuration file, "" for none.
func (l *Live) Path() string { return l.path }

// Resolve returns the provider of a role under the current configuration:
// a credentials.Resolver.
func (l *Live) Resolve(role string) credentials.Provider { return (*l.cur.Load())(role) }

// Reload re-reads the file. A file that fails to load or validate changes
// nothing: the running configuration stays and the error says why.
func (l *Live) Reload(ctx context.Context) error {
	if l.path == "" {
		return ErrNoFile
	}
	return l.load(ctx, nil)
}

// load reads the file, or takes empty when there is none.
func (l *Live) load(ctx context.Context, empty *Config) error {
	cfg := empty
	if l.path != "" {
		var err error
		if cfg, err = Load(l.path); err != nil {
			return err
		}
	}
	resolve, err := cfg.Resolver(ctx, l.opts)
	if err != nil {
		return err
	}
	l.cur.Store(&resolve)
	l.cfg.Store(cfg)
	return nil
}
