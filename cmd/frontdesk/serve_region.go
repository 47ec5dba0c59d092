package main

import (
	"fmt"

	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/region"
)

// regionSettings are the region, account and zones this frontdesk stands in
// for: serve --region/--account-id, else the config file's region,
// account_id and zones, else us-east-1, 123456789012 and the region's a..c.
type regionSettings struct {
	Region    string
	AccountID string
	Zones     []string
}

// resolveRegion applies that precedence and checks the result, so that a
// zone list naming another region stops the daemon at start.
func resolveRegion(flagRegion, flagAccount string, cfg *config.Config) (regionSettings, error) {
	rs := regionSettings{Region: region.DefaultRegion, AccountID: region.DefaultAccountID}
	if cfg.Region != "" {
		rs.Region = cfg.Region
	}
	if flagRegion != "" {
		rs.Region = flagRegion
	}
	if cfg.AccountID != "" {
		rs.AccountID = cfg.AccountID
	}
	if flagAccount != "" {
		rs.AccountID = flagAccount
	}
	if !region.Valid(rs.Region) {
		return rs, fmt.Errorf("--region: %q is not a region name (e.g. eu-west-1)", rs.Region)
	}
	if !region.ValidAccountID(rs.AccountID) {
		return rs, fmt.Errorf("--account-id: %q is not a 12-digit account id", rs.AccountID)
	}
	rs.Zones = region.DefaultZones(rs.Region)
	if len(cfg.Zones) > 0 {
		if err := region.CheckZones(rs.Region, cfg.Zones); err != nil {
			return rs, fmt.Errorf("config: %w", err)
		}
		rs.Zones = append([]string(nil), cfg.Zones...)
	}
	return rs, nil
}
