package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/audit"
	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/credentials"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/mdtree"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
	"github.com/frontdesk-imds/frontdesk/internal/token"
)

// reloadOnHangup re-reads the configuration on SIGHUP. A file that fails to
// load or validate changes nothing: the running configuration stays and the
// reason is logged.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, live *config.Live, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hup:
		}
		switch err := live.Reload(ctx); {
		case errors.Is(err, config.ErrNoFile):
			log.Info("SIGHUP ignored: no --config file to reload")
		case err != nil:
			log.Error("reloading the configuration failed; keeping the running one", "file", live.Path(), "err", err)
		default:
			log.Info("configuration reloaded", "file", live.Path())
		}
	}
}

// placement decides which instances this node serves: with a host id, the
// instances placed on it; otherwise (or with --serve-all) every instance.
func placement(hostID string, all bool) func(*imds.Instance) bool {
	if hostID == "" || all {
		return nil
	}
	return func(in *imds.Instance) bool { return in.Placement.HostID == hostID }
}

// apiObserver reports the control plane's requests to the metrics and its
// changes to the audit stream, when there is one.
type apiObserver struct {
	metrics *metrics.Metrics
	audit   *audit.Log
}

func (o apiObserver) Request(action, errorCode string) {
	o.metrics.ControlPlaneRequest(action, errorCode)
}

func (o apiObserver) Change(accessKeyID, action string, instanceIDs []string, detail map[string]string) {
	if o.audit != nil {
		o.audit.Change(accessKeyID, action, instanceIDs, detail)
	}
}

// ringTokens adapts the key keeper: each call uses the current ring, so a
// rotation takes effect at once.
type ringTokens struct{ k *token.Keeper }

func (t ringTokens) Mint(id string, gen uint64, ttl time.Duration, now time.Time) (string, time.Time, error) {
	return t.k.Ring().Mint(id, gen, ttl, now)
}

func (t ringTokens) Verify(tok, id string, gen uint64, now time.Time) (time.Duration, error) {
	return t.k.Ring().Verify(tok, id, gen, now)
}

type signerAdapter struct{ s *identity.Signer }

func (a signerAdapter) Sign(doc []byte) ([]byte, []byte, []byte, error) {
	sigs, err := a.s.Sign(doc)
	return sigs.Signature, sigs.PKCS7, sigs.RSA2048, err
}

// credsAdapter serves role credentials from the refresher's cache and
// instance-identity credentials (role "") from the deriver.
type credsAdapter struct {
	r  *credentials.Refresher
	id *credentials.Identity
}

func (a credsAdapter) Credentials(instanceID, role string) (mdtree.Credentials, uint64, bool) {
	if role == "" {
		c, v := a.id.Get(instanceID)
		return mdtree.Credentials{Code: credentials.CodeSuccess, LastUpdated: c.LastUpdated, Expiration: c.Expiration,
			AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, Token: c.SessionToken}, v, true
	}
	e, ok := a.r.Get(instanceID, role)
	if !ok {
		return mdtree.Credentials{}, 0, false
	}
	c := e.Credentials
	updated := e.LastUpdated
	if updated.IsZero() {
		updated = c.LastUpdated
	}
	return mdtree.Credentials{
		Code:            e.Code,
		Message:         e.Message,
		LastUpdated:     updated,
		Expiration:      c.Expiration,
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		Token:           c.SessionToken,
	}, e.Version, true
}
