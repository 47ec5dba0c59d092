package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// publicDNSName is EC2's public hostname of a public address:
// ec2-203-0-113-10.compute-1.amazonaws.com in us-east-1,
// ec2-203-0-113-10.eu-west-1.compute.amazonaws.com elsewhere (with the
// China partition's amazonaws.com.cn).
func publicDNSName(region string, a netip.Addr) string {
	host := "ec2-" + strings.ReplaceAll(a.String(), ".", "-")
	switch {
	case region == "us-east-1" || region == "":
		return host + ".compute-1.amazonaws.com"
	case strings.HasPrefix(region, "cn-"):
		return host + "." + region + ".compute.amazonaws.com.cn"
	default:
		return host + "." + region + ".compute.amazonaws.com"
	}
}

func errAddressLimit(msg string) *apiError {
	return newAPIError(http.StatusBadRequest, "AddressLimitExceeded", msg)
}

// claimPublicIP takes the lowest free address of the public pool for holder.
func (s *Server) claimPublicIP(tx imds.Tx, holder string) (netip.Addr, error) {
	if !s.opts.PublicIPv4Pool.IsValid() {
		return netip.Addr{}, errAddressLimit("frontdesk has no public IPv4 pool: set public_ipv4_pool in the configuration (or serve --public-ipv4-pool CIDR).")
	}
	a, err := imds.ClaimPublicIP(tx, s.opts.PublicIPv4Pool, holder)
	if errors.Is(err, imds.ErrNoFreeAddress) {
		return netip.Addr{}, errAddressLimit("The maximum number of addresses has been reached (the public IPv4 pool " + s.opts.PublicIPv4Pool.Masked().String() + " is exhausted).")
	}
	return a, err
}

func errAllocationNotFound(id string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidAllocationID.NotFound", "The allocation ID '"+id+"' does not exist")
}

func errAddressAssociationNotFound(id string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidAssociationID.NotFound", "The association ID '"+id+"' does not exist")
}

type xmlAddress struct {
	PublicIP                string   `xml:"publicIp"`
	AllocationID            string   `xml:"allocationId"`
	Domain                  string   `xml:"domain"`
	InstanceID              string   `xml:"instanceId,omitempty"`
	AssociationID           string   `xml:"associationId,omitempty"`
	NetworkInterfaceID      string   `xml:"networkInterfaceId,omitempty"`
	NetworkInterfaceOwnerID string   `xml:"networkInterfaceOwnerId,omitempty"`
	PrivateIPAddress        string   `xml:"privateIpAddress,omitempty"`
	Tags                    []xmlTag `xml:"tagSet>item,omitempty"`
	PublicIpv4Pool          string   `xml:"publicIpv4Pool"`
	NetworkBorderGroup      string   `xml:"networkBorderGroup"`
}

func (s *Server) addressXML(e *imds.ElasticIP) xmlAddress {
	x := xmlAddress{
		PublicIP: e.PublicIP, AllocationID: e.AllocationID, Domain: "vpc",
		InstanceID: e.InstanceID, AssociationID: e.AssociationID, NetworkInterfaceID: e.NetworkInterfaceID,
		PrivateIPAddress: e.PrivateIP, PublicIpv4Pool: "amazon", NetworkBorderGroup: s.opts.Region,
	}
	if e.NetworkInterfaceID != "" {
		x.NetworkInterfaceOwnerID = e.OwnerID
	}
	for _, t := range e.Tags {
		x.Tags = append(x.Tags, xmlTag{Key: t.Key, Value: t.Value})
	}
	return x
}

type allocateAddressResponse struct {
	respMeta
	PublicIP           string `xml:"publicIp"`
	Domain             string `xml:"domain"`
	AllocationID       string `xml:"allocationId"`
	PublicIpv4Pool     string `xml:"publicIpv4Pool"`
	NetworkBorderGroup string `xml:"networkBorderGroup"`
}

// allocateAddress takes the lowest free address of the operator's pool as
// an Elastic IP (AddressLimitExceeded when none is left). Domain may only
// be vpc; Address (a specific address) is not supported.
func (s *Server) allocateAddress(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	if _, err := p.enumOpt("Domain", "vpc"); err != nil {
		return nil, err
	}
	for _, k := range []string{"Address", "PublicIpv4Pool", "CustomerOwnedIpv4Pool", "IpamPoolId"} {
		if v := p.str(k); v != "" && !(k == "PublicIpv4Pool" && v == "amazon") {
			return nil, newAPIError(http.StatusBadRequest, "UnsupportedOperation", "frontdesk allocates from its configured pool only ("+k+" was given).")
		}
	}
	e := &imds.ElasticIP{OwnerID: s.opts.AccountID}
	if e.Tags, err = creationTags(p, "elastic-ip"); err != nil {
		return nil, err
	}
	if e.AllocationID, err = newID("eipalloc-"); err != nil {
		return nil, err
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		a, err := s.claimPublicIP(tx, e.AllocationID)
		if err != nil {
			return err
		}
		e.PublicIP = a.String()
		return imds.PutElasticIP(tx, e)
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, nil, map[string]string{"AllocationId": e.AllocationID, "PublicIp": e.PublicIP})
	return &allocateAddressResponse{PublicIP: e.PublicIP, Domain: "vpc", AllocationID: e.AllocationID, PublicIpv4Pool: "amazon", NetworkBorderGroup: s.opts.Region}, nil
}

// elasticIPByParams finds the Elastic IP named by AllocationId or PublicIp.
func elasticIPByParams(tx imds.Tx, allocID, publicIP string) (*imds.ElasticIP, error) {
	if allocID == "" {
		holder, err := imds.PublicIPHolder(tx, publicIP)
		if errors.Is(err, imds.ErrNotFound) || (err == nil && !imds.ValidAllocationID(holder)) {
			return nil, newAPIError(http.StatusBadRequest, "InvalidAddress.NotFound", "Address '"+publicIP+"' not found.")
		}
		if err != nil {
			return nil, err
		}
		allocID = holder
	}
	e, err := imds.GetElasticIP(tx, allocID)
	if errors.Is(err, imds.ErrNotFound) {
		return nil, errAllocationNotFound(allocID)
	}
	return e, err
}

func addressParams(p params) (allocID, publicIP string, err error) {
	allocID, publicIP = p.str("AllocationId"), p.str("PublicIp")
	switch {
	case allocID == "" && publicIP == "":
		return "", "", errMissing("AllocationId")
	case allocID != "" && !imds.ValidAllocationID(allocID):
		return "", "", errMalformedID("InvalidAllocationID.Malformed", allocID, "eipalloc")
	case allocID == "" && !parseOr(publicIP).Is4():
		return "", "", errInvalid("Invalid value '" + publicIP + "' for PublicIp.")
	}
	return allocID, publicIP, nil
}

func parseOr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

type associateAddressResponse struct {
	respMeta
	Return        bool   `xml:"return"`
	AssociationID string `xml:"associationId"`
}

// associateAddress associates an Elastic IP with an instance's primary
// interface and primary private address. As on EC2: an address already
// associated elsewhere needs AllowReassociation=true
// (Resource.AlreadyAssociated otherwise); an instance that already has a
// public address gives it up (an Elastic IP stays allocated, one assigned
// at launch returns to the pool).
func (s *Server) associateAddress(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	allocID, publicIP, err := addressParams(p)
	if err != nil {
		return nil, err
	}
	if p.str("NetworkInterfaceId") != "" {
		return nil, newAPIError(http.StatusBadRequest, "UnsupportedOperation", "frontdesk associates addresses by InstanceId only.")
	}
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	reassoc, _, err := p.boolOpt("AllowReassociation")
	if err != nil {
		return nil, err
	}
	privateIP := p.str("PrivateIpAddress")
	var assocID string
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		e, err := elasticIPByParams(tx, allocID, publicIP)
		if err != nil {
			return err
		}
		in, err := getLiveInstance(tx, id)
		if err != nil {
			return err
		}
		ni := in.Primary()
		if ni == nil || len(ni.PrivateIPv4s) == 0 {
			return errInvalid("The instance '" + id + "' has no private IPv4 address to associate an address with.")
		}
		if privateIP != "" && privateIP != ni.PrivateIPv4s[0] {
			return errInvalid("frontdesk associates an address with the primary private address of the primary interface (" + ni.PrivateIPv4s[0] + "), not " + privateIP + ".")
		}
		if e.Associated() {
			if e.InstanceID == id {
				assocID = e.AssociationID // already there: EC2 answers the association
				return nil
			}
			if !reassoc {
				return newAPIError(http.StatusBadRequest, "Resource.AlreadyAssociated", "resource "+e.AllocationID+" is already associated with associate-id "+e.AssociationID)
			}
			if err := disassociate(tx, e); err != nil {
				return err
			}
		}
		// The instance's current public address makes way.
		if err := imds.ReleaseInstancePublicIPs(tx, in); err != nil {
			return err
		}
		if assocID, err = newID("eipassoc-"); err != nil {
			return err
		}
		e.AssociationID, e.InstanceID, e.NetworkInterfaceID, e.PrivateIP = assocID, id, ni.InterfaceID, ni.PrivateIPv4s[0]
		ni = in.Primary()
		ni.PublicIPv4 = e.PublicIP
		ni.PublicHostname = publicDNSName(in.Placement.Region, netip.MustParseAddr(e.PublicIP))
		if err := imds.PutElasticIP(tx, e); err != nil {
			return err
		}
		return imds.PutInstance(tx, in)
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, map[string]string{"AllocationId": allocID, "AssociationId": assocID})
	return &associateAddressResponse{Return: true, AssociationID: assocID}, nil
}

// disassociate ends an Elastic IP's association and takes the address off
// its instance (if the instance still shows it).
func disassociate(tx imds.Tx, e *imds.ElasticIP) error {
	in, err := imds.GetInstance(tx, e.InstanceID)
	switch {
	case errors.Is(err, imds.ErrNotFound):
	case err != nil:
		return err
	default:
		changed := false
		for i := range in.NetworkInterfaces {
			if ni := &in.NetworkInterfaces[i]; ni.PublicIPv4 == e.PublicIP {
				ni.PublicIPv4, ni.PublicHostname = "", ""
				changed = true
			}
		}
		if changed {
			if err := imds.PutInstance(tx, in); err != nil {
				return err
			}
		}
	}
	e.AssociationID, e.InstanceID, e.NetworkInterfaceID, e.PrivateIP = "", "", "", ""
	return imds.PutElasticIP(tx, e)
}

// disassociateAddress ends an association, named by AssociationId (or by
// PublicIp).
func (s *Server) disassociateAddress(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	assocID, publicIP := p.str("AssociationId"), p.str("PublicIp")
	if assocID == "" && publicIP == "" {
		return nil, errMissing("AssociationId")
	}
	var instanceID string
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		var found *imds.ElasticIP
		if assocID == "" {
			e, err := elasticIPByParams(tx, "", publicIP)
			if err != nil {
				return err
			}
			if !e.Associated() {
				return newAPIError(http.StatusBadRequest, "InvalidAssociationID.NotFound", "The address '"+publicIP+"' is not associated")
			}
			found = e
		} else {
			errFound := errors.New("found")
			err := imds.ListElasticIPs(tx, func(e *imds.ElasticIP) error {
				if e.AssociationID == assocID {
					found = e
					return errFound
				}
				return nil
			})
			if err != nil && !errors.Is(err, errFound) {
				return err
			}
			if found == nil {
				return errAddressAssociationNotFound(assocID)
			}
		}
		instanceID = found.InstanceID
		return disassociate(tx, found)
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{instanceID}, map[string]string{"AssociationId": assocID})
	return &returnResponse{Return: true}, nil
}

// releaseAddress returns an Elastic IP to the pool; an associated one is
// InvalidIPAddress.InUse.
func (s *Server) releaseAddress(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	allocID, publicIP, err := addressParams(p)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		e, err := elasticIPByParams(tx, allocID, publicIP)
		if err != nil {
			return err
		}
		allocID = e.AllocationID
		_, err = imds.ReleaseElasticIP(tx, e.AllocationID)
		if errors.Is(err, imds.ErrDependency) {
			return newAPIError(http.StatusBadRequest, "InvalidIPAddress.InUse", "Address "+e.PublicIP+" is in use (associated with "+e.InstanceID+" as "+e.AssociationID+").")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, nil, map[string]string{"AllocationId": allocID})
	return &returnResponse{Return: true}, nil
}

var addressFilters = map[string]func(*imds.ElasticIP) []string{
	"allocation-id":        func(e *imds.ElasticIP) []string { return []string{e.AllocationID} },
	"association-id":       func(e *imds.ElasticIP) []string { return nonEmpty(e.AssociationID) },
	"domain":               func(*imds.ElasticIP) []string { return []string{"vpc"} },
	"instance-id":          func(e *imds.ElasticIP) []string { return nonEmpty(e.InstanceID) },
	"network-interface-id": func(e *imds.ElasticIP) []string { return nonEmpty(e.NetworkInterfaceID) },
	"network-interface-owner-id": func(e *imds.ElasticIP) []string {
		if e.NetworkInterfaceID == "" {
			return nil
		}
		return []string{e.OwnerID}
	},
	"private-ip-address": func(e *imds.ElasticIP) []string { return nonEmpty(e.PrivateIP) },
	"public-ip":          func(e *imds.ElasticIP) []string { return []string{e.PublicIP} },
}

func nonEmpty(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

type describeAddressesResponse struct {
	respMeta
	Addresses []xmlAddress `xml:"addressesSet>item"`
}

func (s *Server) describeAddresses(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	allocIDs, wantAlloc, err := idSet(p, "AllocationId", imds.ValidAllocationID, func(id string) *apiError {
		return errMalformedID("InvalidAllocationID.Malformed", id, "eipalloc")
	})
	if err != nil {
		return nil, err
	}
	ips, wantIP, err := idSet(p, "PublicIp", func(v string) bool { return parseOr(v).Is4() }, func(v string) *apiError {
		return errInvalid("Invalid value '" + v + "' for PublicIp.")
	})
	if err != nil {
		return nil, err
	}
	filters, err := parseRecordFilters(p, addressFilters, func(e *imds.ElasticIP) []imds.Tag { return e.Tags })
	if err != nil {
		return nil, err
	}
	if dry {
		return nil, errDryRun
	}
	resp := &describeAddressesResponse{}
	var found map[string]bool
	err = s.store.View(ctx, func(tx imds.Tx) error {
		resp.Addresses, found = resp.Addresses[:0], map[string]bool{}
		return imds.ListElasticIPs(tx, func(e *imds.ElasticIP) error {
			if (len(wantAlloc) > 0 || len(wantIP) > 0) && !wantAlloc[e.AllocationID] && !wantIP[e.PublicIP] {
				return nil
			}
			found[e.AllocationID], found[e.PublicIP] = true, true
			if matchRecord(filters, e) {
				resp.Addresses = append(resp.Addresses, s.addressXML(e))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if missing := missingIDs(allocIDs, found); len(missing) > 0 {
		return nil, errAllocationNotFound(strings.Join(missing, ", "))
	}
	if missing := missingIDs(ips, found); len(missing) > 0 {
		return nil, newAPIError(http.StatusBadRequest, "InvalidAddress.NotFound", "Address '"+strings.Join(missing, ", ")+"' not found.")
	}
	return resp, nil
}

// xmlENIAssociation is an interface's public address as DescribeInstances
// shows it (networkInterfaceSet/item/association).
type xmlENIAssociation struct {
	PublicIP      string `xml:"publicIp"`
	PublicDNSName string `xml:"publicDnsName"`
	IPOwnerID     string `xml:"ipOwnerId"`
}

func eniAssociation(ni imds.NetworkInterface) *xmlENIAssociation {
	if ni.PublicIPv4 == "" {
		return nil
	}
	return &xmlENIAssociation{PublicIP: ni.PublicIPv4, PublicDNSName: ni.PublicHostname, IPOwnerID: "amazon"}
}
