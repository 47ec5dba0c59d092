package main

import (
	"fmt"
	"net/netip"

	"github.com/frontdesk-imds/frontdesk/internal/config"
)

// publicPool is the public IPv4 pool of Elastic IPs and of public addresses
// at launch: --public-ipv4-pool, else the configuration's public_ipv4_pool.
// It is read at start; a SIGHUP does not change it.
func publicPool(flagValue string, cfg *config.Config) (netip.Prefix, error) {
	if flagValue != "" {
		p, err := config.ParsePublicPool(flagValue)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("serve: --public-ipv4-pool: %w", err)
		}
		return p, nil
	}
	return cfg.PublicPool(), nil
}
