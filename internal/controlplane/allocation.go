package controlplane

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// checkAllocation applies EC2's rules for launching more than one instance
// and for public addresses at launch, before the store is read.
func checkAllocation(sp *launchSpec) error {
	for _, e := range sp.enis {
		if e.subnetID != "" && len(e.ipv4) == 0 {
			sp.allocate = true
		}
		if e.associatePublic && (e.deviceIndex != 0 || len(sp.enis) > 1) {
			return errCombination("The associatePublicIPAddress parameter can only be specified for the network interface with DeviceIndex 0 of a single-interface launch.")
		}
	}
	if sp.maxCount == 1 {
		return nil
	}
	for _, e := range sp.enis {
		if len(e.ipv4) > 0 || len(e.ipv6) > 0 {
			return errCombination("MaxCount greater than 1 cannot be used with explicit addresses: give --subnet-id (SubnetId) and no address, and frontdesk allocates one per instance.")
		}
		if e.subnetID == "" {
			return errCombination("MaxCount greater than 1 needs a subnet to allocate addresses from: create one (aws ec2 create-subnet) and pass --subnet-id (SubnetId).")
		}
	}
	return nil
}

func errSubnetNotFound(id string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidSubnetID.NotFound", "The subnet ID '"+id+"' does not exist")
}

// launchNetwork returns, per instance to launch, its interfaces with their
// addresses. It reads the subnets the interfaces name, checks explicit
// addresses (inside the subnet, free) and allocates the lowest free address
// of its subnet to every interface that names a subnet and no IPv4 address:
// up to MaxCount instances, InsufficientFreeAddressesInSubnet below MinCount.
// Everything happens in the launch's transaction, so two control planes
// launching into one subnet at once never hand out one address twice: the
// store makes one of them retry (etcd) or wait (bolt, memory).
func (s *Server) launchNetwork(tx imds.Tx, sp *launchSpec) ([][]eniSpec, error) {
	enis := make([]eniSpec, len(sp.enis))
	copy(enis, sp.enis)
	for i := range enis {
		e := &enis[i]
		for _, a := range append(append([]netip.Addr(nil), e.ipv4...), e.ipv6...) {
			if _, err := imds.InstanceIDByAddress(tx, a.String()); err == nil {
				return nil, errAddressInUse(a.String())
			} else if !errors.Is(err, imds.ErrNotFound) {
				return nil, err
			}
		}
		if e.subnetID == "" {
			continue
		}
		sub, err := imds.GetSubnet(tx, e.subnetID)
		if errors.Is(err, imds.ErrNotFound) {
			return nil, errSubnetNotFound(e.subnetID)
		}
		if err != nil {
			return nil, err
		}
		vpc, err := imds.GetVPC(tx, sub.VPCID)
		if err != nil {
			return nil, err
		}
		e.subnet, e.vpc = sub, vpc
		if err := checkInSubnet(e, sub); err != nil {
			return nil, err
		}
		if e.deviceIndex == 0 {
			if sp.explicitAZ != "" && sp.explicitAZ != sub.AvailabilityZone {
				return nil, errInvalid("The subnet '" + sub.SubnetID + "' is in availability zone " + sub.AvailabilityZone + ", not " + sp.explicitAZ + ".")
			}
			sp.placement.AvailabilityZone = sub.AvailabilityZone
			sp.placement.AvailabilityZoneID = sub.AvailabilityZoneID
		}
	}
	if !sp.allocate {
		return [][]eniSpec{enis}, nil
	}
	// Allocate per interface, MaxCount addresses each; the launch size is
	// what every interface can get.
	taken := map[netip.Addr]bool{}
	for _, e := range enis {
		for _, a := range e.ipv4 {
			taken[a] = true
		}
	}
	got := make([][]netip.Addr, len(enis))
	count := sp.maxCount
	for i, e := range enis {
		if e.subnet == nil || len(e.ipv4) > 0 {
			continue
		}
		pfx, err := netip.ParsePrefix(e.subnet.CIDRBlock)
		if err != nil {
			return nil, err
		}
		first, last, ok := imds.SubnetHosts(pfx)
		var free []netip.Addr
		if ok {
			if free, err = imds.FreeAddresses(tx, first, last, sp.maxCount, taken); err != nil {
				return nil, err
			}
		}
		for _, a := range free {
			taken[a] = true
		}
		got[i] = free
		count = min(count, len(free))
	}
	if count < sp.minCount {
		return nil, newAPIError(http.StatusBadRequest, "InsufficientFreeAddressesInSubnet",
			"There are not enough free addresses in subnet '"+firstAllocSubnet(enis)+"' to satisfy the requested number of instances ("+strconv.Itoa(sp.minCount)+" needed, "+strconv.Itoa(count)+" free).")
	}
	out := make([][]eniSpec, 0, count)
	for n := range count {
		set := make([]eniSpec, len(enis))
		copy(set, enis)
		for i := range set {
			if got[i] != nil {
				set[i].ipv4 = []netip.Addr{got[i][n]}
			}
		}
		out = append(out, set)
	}
	return out, nil
}

func firstAllocSubnet(enis []eniSpec) string {
	for _, e := range enis {
		if e.subnet != nil && len(e.ipv4) == 0 {
			return e.subnetID
		}
	}
	return ""
}

// checkInSubnet refuses explicit addresses outside the subnet's blocks (or
// on the addresses EC2 reserves in it).
func checkInSubnet(e *eniSpec, sub *imds.Subnet) error {
	pfx, err := netip.ParsePrefix(sub.CIDRBlock)
	if err != nil {
		return err
	}
	first, last, _ := imds.SubnetHosts(pfx)
	for _, a := range e.ipv4 {
		if !pfx.Contains(a) {
			return errInvalid("Address " + a.String() + " does not fall within the subnet's address range (" + sub.CIDRBlock + ").")
		}
		if a.Less(first) || last.Less(a) {
			return errInvalid("Address " + a.String() + " is reserved in subnet " + sub.SubnetID + " (EC2 reserves the first four and the last address of a subnet).")
		}
	}
	for _, a := range e.ipv6 {
		in := false
		for _, c := range sub.IPv6CIDRBlocks {
			if p, err := netip.ParsePrefix(c); err == nil && p.Contains(a) {
				in = true
			}
		}
		if !in {
			return errInvalid("Address " + a.String() + " does not fall within the subnet's IPv6 address range.")
		}
	}
	return nil
}

// applySubnet gives an interface launched into a subnet the ids and blocks
// of its subnet and VPC: the network/interfaces/macs/MAC/ leaves the guest
// reads.
func applySubnet(ni *imds.NetworkInterface, e eniSpec) {
	if e.subnet == nil || e.vpc == nil {
		return
	}
	ni.SubnetID = e.subnet.SubnetID
	ni.VPCID = e.vpc.VPCID
	ni.SubnetIPv4CIDR = e.subnet.CIDRBlock
	ni.SubnetIPv6CIDRs = cloneOrNil(e.subnet.IPv6CIDRBlocks)
	ni.VPCIPv4CIDRs = []string{e.vpc.CIDRBlock}
	ni.VPCIPv6CIDRs = cloneOrNil(e.vpc.IPv6CIDRBlocks)
}

func cloneOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// assignPublicIPs gives the interfaces launched with AssociatePublicIpAddress
// an address of the public pool, held by the instance until it terminates.
func (s *Server) assignPublicIPs(tx imds.Tx, in *imds.Instance, enis []eniSpec) error {
	for _, e := range enis {
		if !e.associatePublic {
			continue
		}
		for i := range in.NetworkInterfaces {
			ni := &in.NetworkInterfaces[i]
			if ni.DeviceIndex != e.deviceIndex || len(ni.PrivateIPv4s) == 0 {
				continue
			}
			a, err := s.claimPublicIP(tx, in.InstanceID)
			if err != nil {
				return err
			}
			ni.PublicIPv4 = a.String()
			ni.PublicHostname = publicDNSName(in.Placement.Region, a)
		}
	}
	return nil
}
