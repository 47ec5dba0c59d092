package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
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
// changes to change (the store's change trail, then the audit stream).
type apiObserver struct {
	metrics *metrics.Metrics
	change  func(accessKeyID, action string, instanceIDs []string, detail map[string]string)
}

func (o apiObserver) Request(action, errorCode string) {
	o.metrics.ControlPlaneRequest(action, errorCode)
}

func (o apiObserver) Change(accessKeyID, action string, instanceIDs []string, detail map[string]string) {
	o.change(accessKeyID, action, instanceIDs, detail)
}

type signerAdapter struct{ s *identity.Signer }

func (a signerAdapter) Sign(doc []byte) ([]byte, []byte, []byte, error) {
	sigs, err := a.s.Sign(doc)
	return sigs.Signature, sigs.PKCS7, sigs.RSA2048, err
}
