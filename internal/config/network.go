package config

import (
	"fmt"
	"net/netip"
)

// PublicPool is the public_ipv4_pool block, or the zero Prefix when the file
// sets none.
func (c *Config) PublicPool() netip.Prefix {
	p, err := ParsePublicPool(c.PublicIPv4Pool)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// ParsePublicPool checks a public IPv4 pool as written in the file or on the
// command line: an IPv4 CIDR of /16 to /32 in its network form. "" is no
// pool.
func ParsePublicPool(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !p.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 CIDR block", s)
	case p.Bits() < 16:
		return netip.Prefix{}, fmt.Errorf("%s is wider than a /16", s)
	case p.Masked() != p:
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}
