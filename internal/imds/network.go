package imds

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
)

// The network part of the key layout: VPCs, subnets, Elastic IPs and the
// index of public addresses handed out from the operator's pool.
const (
	vpcPrefix      = "vpcs/"
	subnetPrefix   = "subnets/"
	eipPrefix      = "eips/"
	publicIPPrefix = "publicips/"
)

// Errors of the network records.
var (
	// ErrDependency: the record is still used (a VPC with subnets, a
	// subnet with instances, an associated Elastic IP).
	ErrDependency = errors.New("dependency violation")
	// ErrNoFreeAddress: a subnet or the public pool has no free address.
	ErrNoFreeAddress = errors.New("no free address")
)

var (
	vpcIDRe    = regexp.MustCompile(`^vpc-[0-9a-f]{8}([0-9a-f]{9})?$`)
	subnetIDRe = regexp.MustCompile(`^subnet-[0-9a-f]{8}([0-9a-f]{9})?$`)
	allocIDRe  = regexp.MustCompile(`^eipalloc-[0-9a-f]{8}([0-9a-f]{9})?$`)
)

// ValidVPCID reports whether id has EC2's form (vpc- and 8 or 17 hex digits).
func ValidVPCID(id string) bool { return vpcIDRe.MatchString(id) }

// ValidSubnetID reports whether id has EC2's form.
func ValidSubnetID(id string) bool { return subnetIDRe.MatchString(id) }

// ValidAllocationID reports whether id has EC2's eipalloc- form.
func ValidAllocationID(id string) bool { return allocIDRe.MatchString(id) }

// VPC is a virtual network: one primary IPv4 block and optional IPv6 blocks.
type VPC struct {
	VPCID     string `json:"vpcId"`
	OwnerID   string `json:"ownerId"`
	State     string `json:"state"`
	CIDRBlock string `json:"cidrBlock"`
	// IPv6CIDRBlocks are /56 blocks.
	IPv6CIDRBlocks  []string `json:"ipv6CidrBlocks,omitempty"`
	InstanceTenancy string   `json:"instanceTenancy"`
	Tags            []Tag    `json:"tags,omitempty"`
}

// Subnet is a range of a VPC in one availability zone. Instances launched
// into it get their addresses from CIDRBlock.
type Subnet struct {
	SubnetID           string   `json:"subnetId"`
	VPCID              string   `json:"vpcId"`
	OwnerID            string   `json:"ownerId"`
	State              string   `json:"state"`
	CIDRBlock          string   `json:"cidrBlock"`
	IPv6CIDRBlocks     []string `json:"ipv6CidrBlocks,omitempty"`
	AvailabilityZone   string   `json:"availabilityZone"`
	AvailabilityZoneID string   `json:"availabilityZoneId"`
	Tags               []Tag    `json:"tags,omitempty"`
}

// ElasticIP is a public address allocated from the operator's pool, and its
// association with an instance's primary private address, if any.
type ElasticIP struct {
	AllocationID       string `json:"allocationId"`
	PublicIP           string `json:"publicIp"`
	OwnerID            string `json:"ownerId"`
	AssociationID      string `json:"associationId,omitempty"`
	InstanceID         string `json:"instanceId,omitempty"`
	NetworkInterfaceID string `json:"networkInterfaceId,omitempty"`
	PrivateIP          string `json:"privateIp,omitempty"`
	Tags               []Tag  `json:"tags,omitempty"`
}

// Associated reports whether the address is associated with an instance.
func (e *ElasticIP) Associated() bool { return e.AssociationID != "" }

// Validate checks a VPC's id and blocks.
func (v *VPC) Validate() error {
	if !ValidVPCID(v.VPCID) {
		return fmt.Errorf("%w: vpc id %q", ErrInvalid, v.VPCID)
	}
	if err := checkPrefix(v.CIDRBlock, true); err != nil {
		return err
	}
	for _, c := range v.IPv6CIDRBlocks {
		if err := checkPrefix(c, false); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a subnet's ids and blocks.
func (s *Subnet) Validate() error {
	if !ValidSubnetID(s.SubnetID) {
		return fmt.Errorf("%w: subnet id %q", ErrInvalid, s.SubnetID)
	}
	if !ValidVPCID(s.VPCID) {
		return fmt.Errorf("%w: vpc id %q", ErrInvalid, s.VPCID)
	}
	if err := checkPrefix(s.CIDRBlock, true); err != nil {
		return err
	}
	for _, c := range s.IPv6CIDRBlocks {
		if err := checkPrefix(c, false); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks an Elastic IP's id, address and association.
func (e *ElasticIP) Validate() error {
	if !ValidAllocationID(e.AllocationID) {
		return fmt.Errorf("%w: allocation id %q", ErrInvalid, e.AllocationID)
	}
	if a, err := netip.ParseAddr(e.PublicIP); err != nil || !a.Is4() || a.String() != e.PublicIP {
		return fmt.Errorf("%w: public ip %q", ErrInvalid, e.PublicIP)
	}
	if e.AssociationID != "" && (!ValidInstanceID(e.InstanceID) || e.PrivateIP == "") {
		return fmt.Errorf("%w: association %s without an instance and private address", ErrInvalid, e.AssociationID)
	}
	return nil
}

func checkPrefix(s string, want4 bool) error {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Masked() != p || p.Addr().Is4() != want4 {
		return fmt.Errorf("%w: cidr block %q", ErrInvalid, s)
	}
	return nil
}

// GetVPC reads a VPC. Errors: ErrNotFound.
func GetVPC(tx Tx, id string) (*VPC, error) {
	var v VPC
	if err := getJSON(tx, vpcPrefix+id, "vpc "+id, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// PutVPC validates and writes a VPC.
func PutVPC(tx Tx, v *VPC) error {
	if err := v.Validate(); err != nil {
		return err
	}
	return putJSON(tx, vpcPrefix+v.VPCID, v)
}

// DeleteVPC removes a VPC that has no subnets left. Errors: ErrNotFound,
// ErrDependency.
func DeleteVPC(tx Tx, id string) error {
	if _, err := GetVPC(tx, id); err != nil {
		return err
	}
	err := ListSubnets(tx, func(s *Subnet) error {
		if s.VPCID == id {
			return fmt.Errorf("%w: vpc %s has subnet %s", ErrDependency, id, s.SubnetID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Delete(vpcPrefix + id)
}

// ListVPCs calls fn for every VPC in id order.
func ListVPCs(tx Tx, fn func(*VPC) error) error {
	return tx.Scan(vpcPrefix, func(k string, b []byte) error {
		var v VPC
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		return fn(&v)
	})
}

// GetSubnet reads a subnet. Errors: ErrNotFound.
func GetSubnet(tx Tx, id string) (*Subnet, error) {
	var s Subnet
	if err := getJSON(tx, subnetPrefix+id, "subnet "+id, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// PutSubnet validates and writes a subnet; its VPC must exist.
func PutSubnet(tx Tx, s *Subnet) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if _, err := GetVPC(tx, s.VPCID); err != nil {
		return err
	}
	return putJSON(tx, subnetPrefix+s.SubnetID, s)
}

// DeleteSubnet removes a subnet that no live instance uses. Errors:
// ErrNotFound, ErrDependency.
func DeleteSubnet(tx Tx, id string) error {
	s, err := GetSubnet(tx, id)
	if err != nil {
		return err
	}
	users, err := SubnetInstances(tx, s, 1)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: subnet %s is used by %s", ErrDependency, id, users[0])
	}
	return tx.Delete(subnetPrefix + id)
}

// ListSubnets calls fn for every subnet in id order.
func ListSubnets(tx Tx, fn func(*Subnet) error) error {
	return tx.Scan(subnetPrefix, func(k string, b []byte) error {
		var s Subnet
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		return fn(&s)
	})
}

// SubnetInstances returns up to limit (0: all) ids of live instances with an
// interface in subnet s, found through the address index over its block.
func SubnetInstances(tx Tx, s *Subnet, limit int) ([]string, error) {
	pfx, err := netip.ParsePrefix(s.CIDRBlock)
	if err != nil {
		return nil, fmt.Errorf("%w: cidr block %q", ErrInvalid, s.CIDRBlock)
	}
	seen := map[string]bool{}
	var out []string
	errFull := errors.New("full")
	err = scanAddressIndex(tx, pfx, func(_ netip.Addr, owner string) error {
		if seen[owner] {
			return nil
		}
		seen[owner] = true
		in, err := GetInstance(tx, owner)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, ni := range in.NetworkInterfaces {
			if ni.SubnetID == s.SubnetID {
				out = append(out, owner)
				if limit > 0 && len(out) >= limit {
					return errFull
				}
				break
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, err
	}
	return out, nil
}

// UsedAddresses counts the addresses of pfx that live instances hold.
func UsedAddresses(tx Tx, pfx netip.Prefix) (int, error) {
	n := 0
	err := scanAddressIndex(tx, pfx, func(netip.Addr, string) error { n++; return nil })
	return n, err
}

// SubnetHosts is the first and last address EC2 lets instances use in an
// IPv4 subnet block: it reserves the network address, the next three (the
// VPC router, DNS and a spare) and the last one.
func SubnetHosts(pfx netip.Prefix) (first, last netip.Addr, ok bool) {
	pfx = pfx.Masked()
	if !pfx.Addr().Is4() || pfx.Bits() > 28 {
		return netip.Addr{}, netip.Addr{}, false
	}
	first = pfx.Addr()
	for range 4 {
		first = first.Next()
	}
	last = lastAddr(pfx).Prev()
	return first, last, true
}

// SubnetSize is the number of addresses instances may use in pfx.
func SubnetSize(pfx netip.Prefix) int {
	if !pfx.Addr().Is4() || pfx.Bits() > 28 {
		return 0
	}
	return 1<<(32-pfx.Bits()) - 5
}

// FreeAddresses returns up to n addresses of [first, last], lowest first,
// that no live instance holds and that exclude does not list. It reads the
// address index one /24 at a time and stops once it has n, so a large,
// mostly empty subnet costs one scan.
func FreeAddresses(tx Tx, first, last netip.Addr, n int, exclude map[netip.Addr]bool) ([]netip.Addr, error) {
	return freeIn(tx, addressPrefix, first, last, n, exclude)
}

var errEnough = errors.New("enough")

func freeIn(tx Tx, keyPrefix string, first, last netip.Addr, n int, exclude map[netip.Addr]bool) ([]netip.Addr, error) {
	var out []netip.Addr
	if n <= 0 || last.Less(first) {
		return nil, nil
	}
	err := scanChunks(tx, keyPrefix, commonPrefix(first, last), func(chunk netip.Prefix, used *[256]bool) error {
		lo, hi := chunk.Addr(), lastAddr(chunk)
		if lo.Less(first) {
			lo = first
		}
		if last.Less(hi) {
			hi = last
		}
		if hi.Less(lo) {
			return nil
		}
		for a := lo; ; a = a.Next() {
			if !used[a.As4()[3]] && !exclude[a] {
				out = append(out, a)
				if len(out) == n {
					return errEnough
				}
			}
			if a == hi {
				return nil
			}
		}
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
}

// scanAddressIndex calls fn for every live address of pfx (IPv4) with the
// instance holding it.
func scanAddressIndex(tx Tx, pfx netip.Prefix, fn func(netip.Addr, string) error) error {
	return scanIndex(tx, addressPrefix, pfx, fn)
}

func scanIndex(tx Tx, keyPrefix string, pfx netip.Prefix, fn func(netip.Addr, string) error) error {
	return scanChunks(tx, keyPrefix, pfx, func(netip.Prefix, *[256]bool) error {
		return nil
	}, fn)
}

// scanChunks walks an address index (keys keyPrefix + dotted address) over
// the IPv4 block pfx one /24 at a time, in address order: the index is
// keyed by the dotted address, so a /24 is one prefix scan
// ("addresses/10.0.1."); a narrower block is filtered from its /24. For
// each /24 (narrowed to pfx) it calls each with the held addresses of the
// /24 by last octet, after calling every entry function for each held
// address; an error from either stops the walk.
func scanChunks(tx Tx, keyPrefix string, pfx netip.Prefix, each func(chunk netip.Prefix, used *[256]bool) error, entry ...func(netip.Addr, string) error) error {
	pfx = pfx.Masked()
	if !pfx.Addr().Is4() || pfx.Bits() < 16 {
		return fmt.Errorf("%w: %s is not an IPv4 block of /16 or narrower", ErrInvalid, pfx)
	}
	chunk := netip.PrefixFrom(pfx.Addr(), 24).Masked()
	for {
		b := chunk.Addr().As4()
		scanPfx := fmt.Sprintf("%s%d.%d.%d.", keyPrefix, b[0], b[1], b[2])
		var used [256]bool
		err := tx.Scan(scanPfx, func(k string, v []byte) error {
			octet, err := strconv.ParseUint(k[len(scanPfx):], 10, 8)
			if err != nil {
				return nil
			}
			a := netip.AddrFrom4([4]byte{b[0], b[1], b[2], byte(octet)})
			if !pfx.Contains(a) {
				return nil
			}
			used[octet] = true
			for _, fn := range entry {
				if err := fn(a, string(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		view := chunk
		if pfx.Bits() > 24 {
			view = pfx
		}
		if err := each(view, &used); err != nil {
			return err
		}
		next := lastAddr(chunk).Next()
		if !next.IsValid() || !pfx.Contains(next) {
			return nil
		}
		chunk = netip.PrefixFrom(next, 24)
	}
}

// lastAddr is the highest address of an IPv4 prefix.
func lastAddr(pfx netip.Prefix) netip.Addr {
	b := pfx.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(1)<<(32-pfx.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// commonPrefix is the narrowest IPv4 prefix holding a and b.
func commonPrefix(a, b netip.Addr) netip.Prefix {
	for bits := 32; bits >= 0; bits-- {
		p := netip.PrefixFrom(a, bits).Masked()
		if p.Contains(b) {
			return p
		}
	}
	return netip.PrefixFrom(a, 0).Masked()
}

// GetElasticIP reads an Elastic IP by allocation id. Errors: ErrNotFound.
func GetElasticIP(tx Tx, id string) (*ElasticIP, error) {
	var e ElasticIP
	if err := getJSON(tx, eipPrefix+id, "address "+id, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// PutElasticIP validates and writes an Elastic IP.
func PutElasticIP(tx Tx, e *ElasticIP) error {
	if err := e.Validate(); err != nil {
		return err
	}
	return putJSON(tx, eipPrefix+e.AllocationID, e)
}

// ListElasticIPs calls fn for every Elastic IP in allocation-id order.
func ListElasticIPs(tx Tx, fn func(*ElasticIP) error) error {
	return tx.Scan(eipPrefix, func(k string, b []byte) error {
		var e ElasticIP
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		return fn(&e)
	})
}

// ReleaseElasticIP deletes an unassociated Elastic IP and returns its
// address to the pool. Errors: ErrNotFound, ErrDependency.
func ReleaseElasticIP(tx Tx, id string) (*ElasticIP, error) {
	e, err := GetElasticIP(tx, id)
	if err != nil {
		return nil, err
	}
	if e.Associated() {
		return nil, fmt.Errorf("%w: address %s is associated with %s", ErrDependency, e.PublicIP, e.InstanceID)
	}
	if err := tx.Delete(publicIPPrefix + e.PublicIP); err != nil {
		return nil, err
	}
	return e, tx.Delete(eipPrefix + id)
}

// PublicIPHolder returns what holds a public address of the pool: an
// allocation id (an Elastic IP) or an instance id (an address assigned at
// launch). Errors: ErrNotFound.
func PublicIPHolder(tx Tx, ip string) (string, error) {
	b, err := tx.Get(publicIPPrefix + ip)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ClaimPublicIP takes the lowest free address of pool (all of a /31 or /32,
// else every address but the network and broadcast ones) for holder.
// Errors: ErrNoFreeAddress.
func ClaimPublicIP(tx Tx, pool netip.Prefix, holder string) (netip.Addr, error) {
	pool = pool.Masked()
	if !pool.IsValid() || !pool.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("%w: no public IPv4 pool", ErrNoFreeAddress)
	}
	first, last := pool.Addr(), lastAddr(pool)
	if pool.Bits() <= 30 {
		first, last = first.Next(), last.Prev()
	}
	free, err := freeIn(tx, publicIPPrefix, first, last, 1, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(free) == 0 {
		return netip.Addr{}, fmt.Errorf("%w: the public IPv4 pool %s is exhausted", ErrNoFreeAddress, pool)
	}
	return free[0], tx.Put(publicIPPrefix+free[0].String(), []byte(holder))
}

// ReleasePublicIP returns an address to the pool.
func ReleasePublicIP(tx Tx, ip string) error {
	return tx.Delete(publicIPPrefix + ip)
}

// ReleaseInstancePublicIPs is what terminating an instance does to its
// public addresses: an address assigned at launch returns to the pool; an
// Elastic IP is disassociated and stays allocated. It clears the public
// fields of in; the caller stores in.
func ReleaseInstancePublicIPs(tx Tx, in *Instance) error {
	for i := range in.NetworkInterfaces {
		ni := &in.NetworkInterfaces[i]
		if ni.PublicIPv4 == "" {
			continue
		}
		holder, err := PublicIPHolder(tx, ni.PublicIPv4)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case holder == in.InstanceID:
			if err := ReleasePublicIP(tx, ni.PublicIPv4); err != nil {
				return err
			}
		case ValidAllocationID(holder):
			e, err := GetElasticIP(tx, holder)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if e != nil && e.InstanceID == in.InstanceID {
				e.AssociationID, e.InstanceID, e.NetworkInterfaceID, e.PrivateIP = "", "", "", ""
				if err := PutElasticIP(tx, e); err != nil {
					return err
				}
			}
		}
		ni.PublicIPv4, ni.PublicHostname = "", ""
	}
	return nil
}

func getJSON(tx Tx, key, what string, v any) error {
	b, err := tx.Get(key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

func putJSON(tx Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return tx.Put(key, b)
}
