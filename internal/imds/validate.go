package imds

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
)

var (
	instanceIDRe = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)
	accountIDRe  = regexp.MustCompile(`^[0-9]{12}$`)
)

// MaxUserData is EC2's limit on raw (decoded) user data.
const MaxUserData = 16 * 1024

// ValidInstanceID reports whether id has EC2's form (i- and 8 or 17 hex digits).
func ValidInstanceID(id string) bool { return instanceIDRe.MatchString(id) }

// Validate checks what the data plane and the store rely on: ids, states,
// addresses, unique device indexes and MACs, options, tag keys when tags are
// served, and the user-data limit.
func (in *Instance) Validate() error {
	if !ValidInstanceID(in.InstanceID) {
		return fmt.Errorf("%w: instance id %q", ErrInvalid, in.InstanceID)
	}
	if !accountIDRe.MatchString(in.AccountID) {
		return fmt.Errorf("%w: account id %q", ErrInvalid, in.AccountID)
	}
	switch in.State {
	case StatePending, StateRunning, StateStopped, StateTerminated:
	default:
		return fmt.Errorf("%w: state %q", ErrInvalid, in.State)
	}
	if err := in.MetadataOptions.Validate(); err != nil {
		return err
	}
	if len(in.UserData) > MaxUserData {
		return fmt.Errorf("%w: user data is %d bytes, more than %d", ErrInvalid, len(in.UserData), MaxUserData)
	}
	devs := map[int]bool{}
	macs := map[string]bool{}
	addrs := map[netip.Addr]bool{}
	for _, ni := range in.NetworkInterfaces {
		if devs[ni.DeviceIndex] {
			return fmt.Errorf("%w: device index %d used twice", ErrInvalid, ni.DeviceIndex)
		}
		devs[ni.DeviceIndex] = true
		hw, err := net.ParseMAC(ni.MAC)
		if err != nil || len(hw) != 6 || hw.String() != ni.MAC {
			return fmt.Errorf("%w: MAC %q (want lower-case aa:bb:cc:dd:ee:ff)", ErrInvalid, ni.MAC)
		}
		if macs[ni.MAC] {
			return fmt.Errorf("%w: MAC %s used twice", ErrInvalid, ni.MAC)
		}
		macs[ni.MAC] = true
		for _, s := range ni.PrivateIPv4s {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() || a.String() != s {
				return fmt.Errorf("%w: private IPv4 address %q", ErrInvalid, s)
			}
			if addrs[a] {
				return fmt.Errorf("%w: address %s used twice", ErrInvalid, s)
			}
			addrs[a] = true
		}
		for _, s := range ni.IPv6s {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || a.String() != s {
				return fmt.Errorf("%w: IPv6 address %q", ErrInvalid, s)
			}
			if addrs[a] {
				return fmt.Errorf("%w: address %s used twice", ErrInvalid, s)
			}
			addrs[a] = true
		}
		if ni.PublicIPv4 != "" {
			if a, err := netip.ParseAddr(ni.PublicIPv4); err != nil || !a.Is4() {
				return fmt.Errorf("%w: public IPv4 address %q", ErrInvalid, ni.PublicIPv4)
			}
		}
	}
	if in.MetadataOptions.InstanceMetadataTags == Enabled {
		for _, t := range in.Tags {
			if !ValidMetadataTagKey(t.Key) {
				return fmt.Errorf("%w: tag key %q is not allowed in instance metadata (letters, digits and + - = . , _ : @ only)", ErrInvalid, t.Key)
			}
		}
	}
	return nil
}
