package main

import (
	"context"
	"log/slog"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// nodePrefixes are the key ranges this node loads and watches: with a host
// id (and not --serve-all), only that host's instances and the shared
// secrets, so that a node's start-up and watch traffic follow its own
// instances, not the fleet's.
func nodePrefixes(hostID string, all bool) []string {
	if all {
		hostID = ""
	}
	return imds.NodePrefixes(hostID)
}

// migrateLayout moves instance records written by an older frontdesk (one
// range for the whole fleet) into their hosts' ranges before anything
// loads the store; on a migrated store it is one empty range read.
func migrateLayout(ctx context.Context, store imds.Store, log *slog.Logger) error {
	n, err := imds.MigrateLayout(ctx, store)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("moved instance records to the per-host key layout", "instances", n)
	}
	return nil
}
