package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func errSubnetMalformed(id string) *apiError {
	return errMalformedID("InvalidSubnetID.Malformed", id, "subnet")
}

type xmlSubnetIPv6Assoc struct {
	IPv6CIDRBlock      string       `xml:"ipv6CidrBlock"`
	AssociationID      string       `xml:"associationId"`
	IPv6CIDRBlockState xmlCIDRState `xml:"ipv6CidrBlockState"`
}

type xmlSubnet struct {
	SubnetID                    string               `xml:"subnetId"`
	SubnetArn                   string               `xml:"subnetArn"`
	State                       string               `xml:"state"`
	VpcID                       string               `xml:"vpcId"`
	OwnerID                     string               `xml:"ownerId"`
	CIDRBlock                   string               `xml:"cidrBlock"`
	IPv6CIDRAssocs              []xmlSubnetIPv6Assoc `xml:"ipv6CidrBlockAssociationSet>item,omitempty"`
	AvailableIPAddressCount     int                  `xml:"availableIpAddressCount"`
	AvailabilityZone            string               `xml:"availabilityZone"`
	AvailabilityZoneID          string               `xml:"availabilityZoneId"`
	DefaultForAz                bool                 `xml:"defaultForAz"`
	MapPublicIPOnLaunch         bool                 `xml:"mapPublicIpOnLaunch"`
	AssignIpv6AddressOnCreation bool                 `xml:"assignIpv6AddressOnCreation"`
	Tags                        []xmlTag             `xml:"tagSet>item,omitempty"`
}

// subnetXML renders a subnet; used is how many of its addresses live
// instances hold.
func (s *Server) subnetXML(sub *imds.Subnet, used int) xmlSubnet {
	x := xmlSubnet{
		SubnetID:           sub.SubnetID,
		SubnetArn:          "arn:aws:ec2:" + s.opts.Region + ":" + sub.OwnerID + ":subnet/" + sub.SubnetID,
		State:              orDefault(sub.State, "available"),
		VpcID:              sub.VPCID,
		OwnerID:            sub.OwnerID,
		CIDRBlock:          sub.CIDRBlock,
		AvailabilityZone:   sub.AvailabilityZone,
		AvailabilityZoneID: sub.AvailabilityZoneID,
	}
	if pfx, err := netip.ParsePrefix(sub.CIDRBlock); err == nil {
		x.AvailableIPAddressCount = max(0, imds.SubnetSize(pfx)-used)
	}
	for _, c := range sub.IPv6CIDRBlocks {
		x.IPv6CIDRAssocs = append(x.IPv6CIDRAssocs, xmlSubnetIPv6Assoc{
			IPv6CIDRBlock: c, AssociationID: stableID("subnet-cidr-assoc-", sub.SubnetID+"/"+c),
			IPv6CIDRBlockState: xmlCIDRState{"associated"},
		})
	}
	for _, t := range sub.Tags {
		x.Tags = append(x.Tags, xmlTag{Key: t.Key, Value: t.Value})
	}
	return x
}

type createSubnetResponse struct {
	respMeta
	Subnet xmlSubnet `xml:"subnet"`
}

// createSubnet makes a subnet of a VPC: an IPv4 block (/16 to /28) inside
// the VPC's that overlaps no other subnet of it, an optional IPv6 /64 inside
// the VPC's /56, and a zone of the region.
func (s *Server) createSubnet(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	sub := &imds.Subnet{OwnerID: s.opts.AccountID, State: "available"}
	if sub.VPCID, err = parseVPCID(p, "VpcId"); err != nil {
		return nil, err
	}
	cidr, err := p.required("CidrBlock")
	if err != nil {
		if p.str("Ipv6Native") == "true" {
			return nil, errCombination("frontdesk subnets need an IPv4 CidrBlock (IPv6-only subnets are not supported).")
		}
		return nil, err
	}
	pfx, err := parseBlock(cidr, "InvalidSubnet.Range")
	if err != nil {
		return nil, err
	}
	sub.CIDRBlock = pfx.String()
	var p6 netip.Prefix
	if c, ok := p.get("Ipv6CidrBlock"); ok && c != "" {
		p6, err = netip.ParsePrefix(c)
		if err != nil || !p6.Addr().Is6() || p6.Addr().Is4In6() || p6.Bits() != 64 || p6.Masked() != p6 {
			return nil, newAPIError(http.StatusBadRequest, "InvalidSubnet.Range", "The IPv6 CIDR '"+c+"' is invalid: a subnet's IPv6 block is a /64.")
		}
		sub.IPv6CIDRBlocks = []string{p6.String()}
	}
	zone := params{prefix: p.prefix, v: map[string]string{}}
	for _, k := range []string{"AvailabilityZone", "AvailabilityZoneId"} {
		if v, ok := p.get(k); ok {
			zone.v[k] = v
		}
	}
	pl, err := s.parsePlacement(zone)
	if err != nil {
		return nil, err
	}
	sub.AvailabilityZone, sub.AvailabilityZoneID = pl.AvailabilityZone, pl.AvailabilityZoneID
	if sub.Tags, err = creationTags(p, "subnet"); err != nil {
		return nil, err
	}
	if sub.SubnetID, err = newID("subnet-"); err != nil {
		return nil, err
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		vpc, err := imds.GetVPC(tx, sub.VPCID)
		if errors.Is(err, imds.ErrNotFound) {
			return errVPCNotFound(sub.VPCID)
		}
		if err != nil {
			return err
		}
		if vp := netip.MustParsePrefix(vpc.CIDRBlock); !vp.Contains(pfx.Addr()) || pfx.Bits() < vp.Bits() {
			return newAPIError(http.StatusBadRequest, "InvalidSubnet.Range", "The CIDR '"+cidr+"' is invalid: it is not inside the VPC's "+vpc.CIDRBlock+".")
		}
		if p6.IsValid() {
			in := false
			for _, c := range vpc.IPv6CIDRBlocks {
				if vp6 := netip.MustParsePrefix(c); vp6.Contains(p6.Addr()) {
					in = true
				}
			}
			if !in {
				return newAPIError(http.StatusBadRequest, "InvalidSubnet.Range", "The IPv6 CIDR '"+p6.String()+"' is invalid: it is not inside an IPv6 block of the VPC.")
			}
		}
		err = imds.ListSubnets(tx, func(o *imds.Subnet) error {
			if o.VPCID != sub.VPCID {
				return nil
			}
			if netip.MustParsePrefix(o.CIDRBlock).Overlaps(pfx) {
				return newAPIError(http.StatusBadRequest, "InvalidSubnet.Conflict", "The CIDR '"+sub.CIDRBlock+"' conflicts with another subnet")
			}
			for _, c := range o.IPv6CIDRBlocks {
				if p6.IsValid() && netip.MustParsePrefix(c).Overlaps(p6) {
					return newAPIError(http.StatusBadRequest, "InvalidSubnet.Conflict", "The IPv6 CIDR '"+p6.String()+"' conflicts with another subnet")
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return imds.PutSubnet(tx, sub)
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, nil, map[string]string{"SubnetId": sub.SubnetID, "VpcId": sub.VPCID, "CidrBlock": sub.CIDRBlock})
	return &createSubnetResponse{Subnet: s.subnetXML(sub, 0)}, nil
}

var subnetFilters = map[string]func(*imds.Subnet) []string{
	"subnet-id":         func(s *imds.Subnet) []string { return []string{s.SubnetID} },
	"vpc-id":            func(s *imds.Subnet) []string { return []string{s.VPCID} },
	"cidr-block":        func(s *imds.Subnet) []string { return []string{s.CIDRBlock} },
	"cidr":              func(s *imds.Subnet) []string { return []string{s.CIDRBlock} },
	"cidrBlock":         func(s *imds.Subnet) []string { return []string{s.CIDRBlock} },
	"availability-zone": func(s *imds.Subnet) []string { return []string{s.AvailabilityZone} },
	"availabilityZone":  func(s *imds.Subnet) []string { return []string{s.AvailabilityZone} },
	"availability-zone-id": func(s *imds.Subnet) []string {
		return []string{s.AvailabilityZoneID}
	},
	"ipv6-cidr-block-association.ipv6-cidr-block": func(s *imds.Subnet) []string { return s.IPv6CIDRBlocks },
	"state":    func(s *imds.Subnet) []string { return []string{orDefault(s.State, "available")} },
	"owner-id": func(s *imds.Subnet) []string { return []string{s.OwnerID} },
	"default-for-az": func(*imds.Subnet) []string {
		return []string{"false"}
	},
}

type describeSubnetsResponse struct {
	respMeta
	Subnets []xmlSubnet `xml:"subnetSet>item"`
}

func (s *Server) describeSubnets(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	ids, want, err := idSet(p, "SubnetId", imds.ValidSubnetID, errSubnetMalformed)
	if err != nil {
		return nil, err
	}
	filters, err := parseRecordFilters(p, subnetFilters, func(s *imds.Subnet) []imds.Tag { return s.Tags })
	if err != nil {
		return nil, err
	}
	if dry {
		return nil, errDryRun
	}
	resp := &describeSubnetsResponse{}
	var found map[string]bool
	err = s.store.View(ctx, func(tx imds.Tx) error {
		resp.Subnets, found = resp.Subnets[:0], map[string]bool{}
		return imds.ListSubnets(tx, func(sub *imds.Subnet) error {
			if len(want) > 0 && !want[sub.SubnetID] {
				return nil
			}
			found[sub.SubnetID] = true
			if !matchRecord(filters, sub) {
				return nil
			}
			used, err := imds.UsedAddresses(tx, netip.MustParsePrefix(sub.CIDRBlock))
			if err != nil {
				return err
			}
			resp.Subnets = append(resp.Subnets, s.subnetXML(sub, used))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if missing := missingIDs(ids, found); len(missing) > 0 {
		return nil, errSubnetNotFound(strings.Join(missing, ", "))
	}
	return resp, nil
}

// deleteSubnet removes a subnet no live instance uses (DependencyViolation
// otherwise).
func (s *Server) deleteSubnet(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	id, err := p.required("SubnetId")
	if err != nil {
		return nil, err
	}
	if !imds.ValidSubnetID(id) {
		return nil, errSubnetMalformed(id)
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		err := imds.DeleteSubnet(tx, id)
		switch {
		case errors.Is(err, imds.ErrNotFound):
			return errSubnetNotFound(id)
		case errors.Is(err, imds.ErrDependency):
			return newAPIError(http.StatusBadRequest, "DependencyViolation", "The subnet '"+id+"' has dependencies and cannot be deleted ("+strconv.Quote(strings.TrimPrefix(err.Error(), imds.ErrDependency.Error()+": "))+").")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, nil, map[string]string{"SubnetId": id})
	return &returnResponse{Return: true}, nil
}
