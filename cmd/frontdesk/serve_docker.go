package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/docker"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
)

// dockerFlags are serve's --docker flags.
type dockerFlags struct {
	host string
	tls  docker.TLSFiles
}

func (d *dockerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.host, "docker", "", "follow a Docker daemon and serve each running container as an instance: unix:///var/run/docker.sock or tcp://HOST:2376")
	fs.StringVar(&d.tls.CAFile, "docker-tlscacert", "", "CA bundle that signs the Docker daemon's certificate (tcp://)")
	fs.StringVar(&d.tls.CertFile, "docker-tlscert", "", "client certificate for the Docker daemon (tcp://)")
	fs.StringVar(&d.tls.KeyFile, "docker-tlskey", "", "client key for the Docker daemon (tcp://)")
}

// newPending makes the data plane's wait for instances a source is about to
// write, counted in metrics.
func newPending(mx *metrics.Metrics) *dataplane.Pending {
	return dataplane.NewPending(dataplane.PendingOptions{OnWait: metrics.NewPendingWaits(mx).Observe})
}

// startDocker dials the Docker daemon when --docker is given and returns
// the source's loop (nil without --docker). The source writes through the
// control plane's actions and tells the data plane what is about to
// appear; its loop stops with its context.
func startDocker(d dockerFlags, cfg *config.Config, cp *controlplane.Server,
	pending *dataplane.Pending, hostID string, log *slog.Logger) (func(context.Context) error, error) {
	if d.host == "" {
		return nil, nil
	}
	cli, err := docker.Dial(d.host, d.tls)
	if err != nil {
		return nil, fmt.Errorf("--docker: %w", err)
	}
	policy := cfg.Docker
	src := docker.New(cli, cp, docker.Options{Logger: log, Policy: &policy, HostID: hostID, Signals: pending})
	log.Info("following the Docker daemon", "host", d.host, "allow_rules", len(policy.Allow))
	return func(ctx context.Context) error {
		defer cli.Close()
		return src.Run(ctx)
	}, nil
}
