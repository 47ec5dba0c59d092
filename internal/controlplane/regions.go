package controlplane

import (
	"context"
	"slices"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/region"
)

// checkZone accepts a zone of the configured region's zone list and answers
// anything else as EC2 does.
func (s *Server) checkZone(az string) error {
	if !slices.Contains(s.opts.Zones, az) {
		return errInvalid("Invalid availability zone: [" + az + "]")
	}
	return nil
}

// attrFilter is one Filter.N of a Describe action over records that are not
// instances: the record matches when any of its values for name matches any
// of the filter's values (EC2's wildcards allowed).
type attrFilter struct {
	name   string
	values []string
}

// parseAttrFilters reads Filter.N, refusing names not in known.
func parseAttrFilters(p params, known ...string) ([]attrFilter, error) {
	items, err := p.list("Filter")
	if err != nil {
		return nil, err
	}
	var out []attrFilter
	for _, it := range items {
		name, err := it.required("Name")
		if err != nil {
			return nil, err
		}
		values, err := it.strings("Value")
		if err != nil {
			return nil, err
		}
		if len(values) == 0 {
			return nil, errInvalid("The filter '" + name + "' requires at least one value.")
		}
		// tag:KEY goes with tag-key: records with tags offer both.
		isTag := strings.HasPrefix(name, "tag:") && len(name) > 4 && slices.Contains(known, "tag-key")
		if !isTag && !slices.Contains(known, name) {
			return nil, errInvalid("The filter '" + name + "' is invalid")
		}
		out = append(out, attrFilter{name: name, values: values})
	}
	return out, nil
}

// matchAttrs reports whether a record whose attribute values are attrs
// (with "tag:KEY" entries for its tags) passes every filter.
func matchAttrs(fs []attrFilter, attrs map[string][]string) bool {
	for _, f := range fs {
		if !anyMatch(f.values, attrs[f.name]) {
			return false
		}
	}
	return true
}

type xmlRegion struct {
	RegionName     string `xml:"regionName"`
	RegionEndpoint string `xml:"regionEndpoint"`
	OptInStatus    string `xml:"optInStatus"`
}

type describeRegionsResponse struct {
	respMeta
	Regions []xmlRegion `xml:"regionInfo>item"`
}

// describeRegions answers with the one region this control plane is: a
// frontdesk is one region of one account. Asking for any other region by
// name is EC2's InvalidParameterValue.
func (s *Server) describeRegions(_ context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	names, err := p.strings("RegionName")
	if err != nil {
		return nil, err
	}
	fs, err := parseAttrFilters(p, "endpoint", "region-name", "opt-in-status")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n != s.opts.Region {
			return nil, errInvalid("Invalid region names: [" + n + "]")
		}
	}
	if dry {
		return nil, errDryRun
	}
	r := xmlRegion{RegionName: s.opts.Region, RegionEndpoint: region.Endpoint(s.opts.Region), OptInStatus: "opt-in-not-required"}
	resp := &describeRegionsResponse{}
	if matchAttrs(fs, map[string][]string{"endpoint": {r.RegionEndpoint}, "region-name": {r.RegionName}, "opt-in-status": {r.OptInStatus}}) {
		resp.Regions = append(resp.Regions, r)
	}
	return resp, nil
}

type xmlZone struct {
	ZoneName           string   `xml:"zoneName"`
	ZoneState          string   `xml:"zoneState"`
	RegionName         string   `xml:"regionName"`
	Messages           []string `xml:"messageSet>item>message"`
	ZoneID             string   `xml:"zoneId"`
	ZoneType           string   `xml:"zoneType"`
	OptInStatus        string   `xml:"optInStatus"`
	GroupName          string   `xml:"groupName"`
	NetworkBorderGroup string   `xml:"networkBorderGroup"`
}

type describeAvailabilityZonesResponse struct {
	respMeta
	Zones []xmlZone `xml:"availabilityZoneInfo>item"`
}

// describeAvailabilityZones lists the configured zones of the region, with
// ZoneName.N, ZoneId.N and EC2's filters; a name or id that is not one of
// them is InvalidParameterValue, as EC2 answers for a zone it does not have.
func (s *Server) describeAvailabilityZones(_ context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	names, err := p.strings("ZoneName")
	if err != nil {
		return nil, err
	}
	ids, err := p.strings("ZoneId")
	if err != nil {
		return nil, err
	}
	if _, _, err := p.boolOpt("AllAvailabilityZones"); err != nil {
		return nil, err
	}
	fs, err := parseAttrFilters(p, "zone-name", "zone-id", "region-name", "state", "zone-type",
		"group-name", "network-border-group", "opt-in-status", "message")
	if err != nil {
		return nil, err
	}
	var zones []xmlZone
	for _, z := range s.opts.Zones {
		zones = append(zones, xmlZone{
			ZoneName: z, ZoneState: "available", RegionName: s.opts.Region, ZoneID: region.ZoneID(s.opts.Region, z),
			ZoneType: "availability-zone", OptInStatus: "opt-in-not-required", GroupName: s.opts.Region, NetworkBorderGroup: s.opts.Region,
		})
	}
	for _, n := range names {
		if !slices.ContainsFunc(zones, func(z xmlZone) bool { return z.ZoneName == n }) {
			return nil, errInvalid("Invalid availability zone: [" + n + "]")
		}
	}
	for _, id := range ids {
		if !slices.ContainsFunc(zones, func(z xmlZone) bool { return z.ZoneID == id }) {
			return nil, errInvalid("Invalid availability zone ID: [" + id + "]")
		}
	}
	if dry {
		return nil, errDryRun
	}
	resp := &describeAvailabilityZonesResponse{}
	for _, z := range zones {
		if len(names) > 0 && !slices.Contains(names, z.ZoneName) {
			continue
		}
		if len(ids) > 0 && !slices.Contains(ids, z.ZoneID) {
			continue
		}
		attrs := map[string][]string{
			"zone-name": {z.ZoneName}, "zone-id": {z.ZoneID}, "region-name": {z.RegionName}, "state": {z.ZoneState},
			"zone-type": {z.ZoneType}, "group-name": {z.GroupName}, "network-border-group": {z.NetworkBorderGroup},
			"opt-in-status": {z.OptInStatus},
		}
		if matchAttrs(fs, attrs) {
			resp.Zones = append(resp.Zones, z)
		}
	}
	return resp, nil
}
