package main

import (
	"context"

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
func (n *node) migrateLayout(ctx context.Context) error {
	moved, err := imds.MigrateLayout(ctx, n.store)
	if err != nil {
		return err
	}
	if moved > 0 {
		n.log.Info("moved instance records to the per-host key layout", "instances", moved)
	}
	return nil
}
