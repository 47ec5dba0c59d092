package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// EC2's limits on VPC and subnet IPv4 blocks.
const (
	minBlockBits = 16
	maxBlockBits = 28
)

func errVPCNotFound(id string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidVpcID.NotFound", "The vpc ID '"+id+"' does not exist")
}

// parseVPCID reads and checks a required VpcId.
func parseVPCID(p params, key string) (string, error) {
	id, err := p.required(key)
	if err != nil {
		return "", err
	}
	if !imds.ValidVPCID(id) {
		return "", errMalformedID("InvalidVpcID.Malformed", id, "vpc")
	}
	return id, nil
}

// creationTags reads the tags of TagSpecification.N for one resource type
// (vpc, subnet, elastic-ip); other types are InvalidParameterValue.
func creationTags(p params, resourceType string) ([]imds.Tag, error) {
	specs, err := p.list("TagSpecification")
	if err != nil {
		return nil, err
	}
	var out []imds.Tag
	for _, sp := range specs {
		rt, err := sp.required("ResourceType")
		if err != nil {
			return nil, err
		}
		if rt != resourceType {
			return nil, errInvalid("'" + rt + "' is not a valid taggable resource type for this operation.")
		}
		tags, err := parseTags(sp, "Tag")
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			for _, o := range out {
				if o.Key == t.Key {
					return nil, errInvalid("Duplicate tag key '" + t.Key + "' specified.")
				}
			}
			out = append(out, t)
		}
	}
	if len(out) > maxTags {
		return nil, newAPIError(http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags (50) per resource has been exceeded.")
	}
	return out, nil
}

// recordFilter is one Filter.N over a network record (VPC, subnet, address).
type recordFilter[T any] struct {
	values []string
	get    func(T) []string
}

// parseRecordFilters reads Filter.N against the filter names of one record
// type; tag:KEY, tag-key and tag-value come from tags.
func parseRecordFilters[T any](p params, known map[string]func(T) []string, tags func(T) []imds.Tag) ([]recordFilter[T], error) {
	items, err := p.list("Filter")
	if err != nil {
		return nil, err
	}
	var out []recordFilter[T]
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
		f := recordFilter[T]{values: values}
		switch key, isTag := strings.CutPrefix(name, "tag:"); {
		case isTag:
			f.get = func(r T) []string {
				for _, t := range tags(r) {
					if t.Key == key {
						return []string{t.Value}
					}
				}
				return nil
			}
		case name == "tag-key":
			f.get = func(r T) []string { return fieldOf(tags(r), func(t imds.Tag) string { return t.Key }) }
		case name == "tag-value":
			f.get = func(r T) []string { return fieldOf(tags(r), func(t imds.Tag) string { return t.Value }) }
		default:
			g, ok := known[name]
			if !ok {
				return nil, errInvalid("The filter '" + name + "' is invalid")
			}
			f.get = g
		}
		out = append(out, f)
	}
	return out, nil
}

func matchRecord[T any](fs []recordFilter[T], r T) bool {
	for _, f := range fs {
		if !anyMatch(f.values, f.get(r)) {
			return false
		}
	}
	return true
}

// idSet reads Key.N ids, checks their form, and returns them with a set.
func idSet(p params, key string, valid func(string) bool, malformed func(string) *apiError) ([]string, map[string]bool, error) {
	ids, err := p.strings(key)
	if err != nil {
		return nil, nil, err
	}
	set := map[string]bool{}
	for _, id := range ids {
		if !valid(id) {
			return nil, nil, malformed(id)
		}
		set[id] = true
	}
	return ids, set, nil
}

// missingIDs are the ids asked for that were not found, in request order.
func missingIDs(ids []string, found map[string]bool) []string {
	var out []string
	for _, id := range ids {
		if !found[id] {
			out = append(out, id)
		}
	}
	return out
}

type xmlCIDRState struct {
	State string `xml:"state"`
}

type xmlCIDRAssoc struct {
	CIDRBlock      string       `xml:"cidrBlock"`
	AssociationID  string       `xml:"associationId"`
	CIDRBlockState xmlCIDRState `xml:"cidrBlockState"`
}

type xmlIPv6CIDRAssoc struct {
	IPv6CIDRBlock      string       `xml:"ipv6CidrBlock"`
	AssociationID      string       `xml:"associationId"`
	IPv6CIDRBlockState xmlCIDRState `xml:"ipv6CidrBlockState"`
	NetworkBorderGroup string       `xml:"networkBorderGroup,omitempty"`
}

type xmlVPC struct {
	VpcID           string             `xml:"vpcId"`
	OwnerID         string             `xml:"ownerId"`
	State           string             `xml:"state"`
	CIDRBlock       string             `xml:"cidrBlock"`
	CIDRAssocs      []xmlCIDRAssoc     `xml:"cidrBlockAssociationSet>item"`
	IPv6CIDRAssocs  []xmlIPv6CIDRAssoc `xml:"ipv6CidrBlockAssociationSet>item,omitempty"`
	DhcpOptionsID   string             `xml:"dhcpOptionsId"`
	InstanceTenancy string             `xml:"instanceTenancy"`
	IsDefault       bool               `xml:"isDefault"`
	Tags            []xmlTag           `xml:"tagSet>item,omitempty"`
}

func (s *Server) vpcXML(v *imds.VPC) xmlVPC {
	x := xmlVPC{
		VpcID: v.VPCID, OwnerID: v.OwnerID, State: orDefault(v.State, "available"), CIDRBlock: v.CIDRBlock,
		DhcpOptionsID: "default", InstanceTenancy: orDefault(v.InstanceTenancy, "default"),
		CIDRAssocs: []xmlCIDRAssoc{{CIDRBlock: v.CIDRBlock, AssociationID: stableID("vpc-cidr-assoc-", v.VPCID+"/"+v.CIDRBlock), CIDRBlockState: xmlCIDRState{"associated"}}},
	}
	for _, c := range v.IPv6CIDRBlocks {
		x.IPv6CIDRAssocs = append(x.IPv6CIDRAssocs, xmlIPv6CIDRAssoc{
			IPv6CIDRBlock: c, AssociationID: stableID("vpc-cidr-assoc-", v.VPCID+"/"+c),
			IPv6CIDRBlockState: xmlCIDRState{"associated"}, NetworkBorderGroup: s.opts.Region,
		})
	}
	for _, t := range v.Tags {
		x.Tags = append(x.Tags, xmlTag{Key: t.Key, Value: t.Value})
	}
	return x
}

type createVpcResponse struct {
	respMeta
	Vpc xmlVPC `xml:"vpc"`
}

// parseBlock reads an IPv4 block of /16 to /28 in its network form;
// anything else is code (InvalidVpc.Range, InvalidSubnet.Range).
func parseBlock(v, code string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(v)
	if err != nil || !pfx.Addr().Is4() || pfx.Bits() < minBlockBits || pfx.Bits() > maxBlockBits {
		return netip.Prefix{}, newAPIError(http.StatusBadRequest, code, "The CIDR '"+v+"' is invalid.")
	}
	if pfx.Masked() != pfx {
		return netip.Prefix{}, newAPIError(http.StatusBadRequest, code, "The CIDR '"+v+"' is invalid: host bits are set (did you mean "+pfx.Masked().String()+"?).")
	}
	return pfx, nil
}

// createVpc makes a VPC with one IPv4 block (/16 to /28) and optionally an
// IPv6 /56 given as Ipv6CidrBlock: frontdesk has no Amazon-provided IPv6
// pool.
func (s *Server) createVpc(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	v := &imds.VPC{OwnerID: s.opts.AccountID, State: "available", InstanceTenancy: "default"}
	cidr, err := p.required("CidrBlock")
	if err != nil {
		return nil, err
	}
	pfx, err := parseBlock(cidr, "InvalidVpc.Range")
	if err != nil {
		return nil, err
	}
	v.CIDRBlock = pfx.String()
	if on, _, err := p.boolOpt("AmazonProvidedIpv6CidrBlock"); err != nil {
		return nil, err
	} else if on {
		return nil, errCombination("frontdesk has no Amazon-provided IPv6 pool: give the VPC's /56 as Ipv6CidrBlock.")
	}
	if c, ok := p.get("Ipv6CidrBlock"); ok && c != "" {
		p6, err := netip.ParsePrefix(c)
		if err != nil || !p6.Addr().Is6() || p6.Addr().Is4In6() || p6.Bits() != 56 || p6.Masked() != p6 {
			return nil, errInvalid("Invalid value '" + c + "' for Ipv6CidrBlock: a VPC's IPv6 block is a /56.")
		}
		v.IPv6CIDRBlocks = []string{p6.String()}
	}
	if t, err := p.enumOpt("InstanceTenancy", "default", "dedicated"); err != nil {
		return nil, err
	} else if t != nil {
		v.InstanceTenancy = *t
	}
	if v.Tags, err = creationTags(p, "vpc"); err != nil {
		return nil, err
	}
	if v.VPCID, err = newID("vpc-"); err != nil {
		return nil, err
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error { return imds.PutVPC(tx, v) })
	if err != nil {
		return nil, err
	}
	noteChange(ctx, nil, map[string]string{"VpcId": v.VPCID, "CidrBlock": v.CIDRBlock})
	return &createVpcResponse{Vpc: s.vpcXML(v)}, nil
}

var vpcFilters = map[string]func(*imds.VPC) []string{
	"vpc-id":                            func(v *imds.VPC) []string { return []string{v.VPCID} },
	"cidr":                              func(v *imds.VPC) []string { return []string{v.CIDRBlock} },
	"cidr-block-association.cidr-block": func(v *imds.VPC) []string { return []string{v.CIDRBlock} },
	"ipv6-cidr-block-association.ipv6-cidr-block": func(v *imds.VPC) []string { return v.IPv6CIDRBlocks },
	"state":            func(v *imds.VPC) []string { return []string{orDefault(v.State, "available")} },
	"owner-id":         func(v *imds.VPC) []string { return []string{v.OwnerID} },
	"is-default":       func(*imds.VPC) []string { return []string{"false"} },
	"dhcp-options-id":  func(*imds.VPC) []string { return []string{"default"} },
	"instance-tenancy": func(v *imds.VPC) []string { return []string{orDefault(v.InstanceTenancy, "default")} },
}

type describeVpcsResponse struct {
	respMeta
	Vpcs []xmlVPC `xml:"vpcSet>item"`
}

func (s *Server) describeVpcs(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	ids, want, err := idSet(p, "VpcId", imds.ValidVPCID, func(id string) *apiError {
		return errMalformedID("InvalidVpcID.Malformed", id, "vpc")
	})
	if err != nil {
		return nil, err
	}
	filters, err := parseRecordFilters(p, vpcFilters, func(v *imds.VPC) []imds.Tag { return v.Tags })
	if err != nil {
		return nil, err
	}
	if dry {
		return nil, errDryRun
	}
	resp := &describeVpcsResponse{}
	found := map[string]bool{}
	err = s.store.View(ctx, func(tx imds.Tx) error {
		resp.Vpcs, found = resp.Vpcs[:0], map[string]bool{}
		return imds.ListVPCs(tx, func(v *imds.VPC) error {
			if len(want) > 0 && !want[v.VPCID] {
				return nil
			}
			found[v.VPCID] = true
			if matchRecord(filters, v) {
				resp.Vpcs = append(resp.Vpcs, s.vpcXML(v))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if missing := missingIDs(ids, found); len(missing) > 0 {
		return nil, errVPCNotFound(strings.Join(missing, ", "))
	}
	return resp, nil
}

// deleteVpc removes a VPC without subnets (DependencyViolation otherwise).
func (s *Server) deleteVpc(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	id, err := parseVPCID(p, "VpcId")
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		err := imds.DeleteVPC(tx, id)
		switch {
		case errors.Is(err, imds.ErrNotFound):
			return errVPCNotFound(id)
		case errors.Is(err, imds.ErrDependency):
			return newAPIError(http.StatusBadRequest, "DependencyViolation", "The vpc '"+id+"' has dependencies and cannot be deleted.")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, nil, map[string]string{"VpcId": id})
	return &returnResponse{Return: true}, nil
}
