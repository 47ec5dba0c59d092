package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// LaunchInput is a launch requested from inside the process (an instance
// source such as the Docker watcher) rather than through the Query API. It
// is checked by the same rules as RunInstances and written in one store
// transaction.
type LaunchInput struct {
	// InstanceID is the id to launch under (i- and 8 or 17 hex digits); a
	// random id when empty. An existing record with this id is replaced only
	// with Relaunch.
	InstanceID string
	// Relaunch replaces an existing record with the same id: a new launch
	// generation (tokens minted for the old one no longer verify), a new
	// launch time, and the addresses, tags and options given here.
	Relaunch bool
	// ImageID is the AMI id to report ("ami-" and 8 or 17 hex digits);
	// ImageIDFor derives one from any name.
	ImageID string
	// InstanceType defaults to t3.micro.
	InstanceType string
	// Interfaces are the network interfaces in device-index order; each
	// needs at least one address. Addresses must not belong to another live
	// instance.
	Interfaces []LaunchInterface
	// Profile is the instance profile (and role) name; none when empty.
	Profile string
	// Tags are the instance tags (EC2's limits apply).
	Tags []imds.Tag
	// UserData is the raw user data (at most imds.MaxUserData bytes).
	UserData []byte
	// Options are the requested metadata options; the account defaults
	// fill in what is left unset, as for RunInstances.
	Options imds.OptionsRequest
	// HostID places the instance (fleet mode); empty serves it everywhere.
	HostID string
}

// LaunchInterface is one interface of a LaunchInput.
type LaunchInterface struct {
	IPv4 []netip.Addr // primary first
	IPv6 []netip.Addr
}

// ImageIDFor derives a stable AMI-style id from an image name, so the same
// image always reports the same ImageId.
func ImageIDFor(name string) string { return stableID("ami-", name) }

// Launch writes one running instance in one store transaction, after the
// checks RunInstances makes (ids, addresses, profile name, tags, user data,
// metadata options against the account defaults). Errors are EC2 API
// errors (their Error() starts with the EC2 code).
func (s *Server) Launch(ctx context.Context, li LaunchInput) (*imds.Instance, error) {
	sp, err := s.launchSpecFor(li)
	if err != nil {
		return nil, err
	}
	var launched *imds.Instance
	err = s.update(ctx, false, func(tx imds.Tx) error {
		launched = nil
		if li.InstanceID != "" && !li.Relaunch {
			if _, err := imds.GetInstance(tx, li.InstanceID); err == nil {
				return newAPIError(400, "InvalidInstanceID.Duplicate", "The instance ID '"+li.InstanceID+"' already exists.")
			} else if !errors.Is(err, imds.ErrNotFound) {
				return err
			}
		}
		acct, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		opts, err := imds.LaunchOptions(sp.options, acct, false)
		if err != nil {
			if errors.Is(err, imds.ErrTokensEnforced) {
				return errTokensEnforced()
			}
			return errInvalid(err.Error())
		}
		if opts.InstanceMetadataTags == imds.Enabled {
			if err := checkMetadataTagKeys(sp.tags); err != nil {
				return err
			}
		}
		for _, e := range sp.enis {
			for _, a := range append(append([]netip.Addr(nil), e.ipv4...), e.ipv6...) {
				owner, err := imds.InstanceIDByAddress(tx, a.String())
				switch {
				case errors.Is(err, imds.ErrNotFound):
				case err != nil:
					return err
				case owner != li.InstanceID:
					return errAddressInUse(a.String())
				}
			}
		}
		reservationID, err := newID("r-")
		if err != nil {
			return err
		}
		in, err := s.newInstance(tx, sp, sp.enis, opts, reservationID, 0)
		if err != nil {
			return err
		}
		if li.InstanceID != "" {
			in.InstanceID = li.InstanceID
			for i, ni := range in.NetworkInterfaces {
				if len(ni.PrivateIPv4s) == 0 {
					in.NetworkInterfaces[i].LocalHostname = resourceDNSName(s.opts.Region, in.InstanceID)
				}
			}
		}
		if err := imds.PutInstance(tx, in); err != nil {
			if errors.Is(err, imds.ErrAddressInUse) {
				return newAPIError(400, "InvalidIPAddress.InUse", err.Error())
			}
			return err
		}
		launched = in
		return nil
	})
	if err != nil {
		return nil, err
	}
	return launched, nil
}

// launchSpecFor checks li as parseLaunch checks a RunInstances request.
func (s *Server) launchSpecFor(li LaunchInput) (*launchSpec, error) {
	sp := &launchSpec{instanceType: "t3.micro", lifecycle: "on-demand", monitoring: "disabled", minCount: 1, maxCount: 1,
		imageID: li.ImageID, options: li.Options, userData: li.UserData}
	if li.InstanceID != "" && !imds.ValidInstanceID(li.InstanceID) {
		return nil, errInstanceMalformed(li.InstanceID)
	}
	if sp.imageID == "" {
		sp.imageID = ImageIDFor("")
	}
	if !amiIDRe.MatchString(sp.imageID) {
		return nil, errMalformedID("InvalidAMIID.Malformed", sp.imageID, "ami")
	}
	if li.InstanceType != "" {
		if !instanceTypeRe.MatchString(li.InstanceType) {
			return nil, errInvalid("Invalid value '" + li.InstanceType + "' for InstanceType.")
		}
		sp.instanceType = li.InstanceType
	}
	if len(sp.userData) > imds.MaxUserData {
		return nil, errInvalid("User data is limited to " + strconv.Itoa(imds.MaxUserData) + " bytes.")
	}
	if len(sp.userData) == 0 {
		sp.userData = nil
	}
	if li.Profile != "" {
		if !profileNmRe.MatchString(li.Profile) {
			return nil, errInvalid("Value (" + li.Profile + ") for parameter IamInstanceProfile.Name is invalid.")
		}
		arn := "arn:aws:iam::" + s.opts.AccountID + ":instance-profile/" + li.Profile
		sp.profile = &imds.IAMInstanceProfile{Arn: arn, ID: stableUpperID("AIPA", arn, 17), Role: li.Profile}
	}
	seen := map[string]bool{}
	for _, t := range li.Tags {
		if err := checkTag(t.Key, t.Value); err != nil {
			return nil, err
		}
		if seen[t.Key] {
			return nil, errInvalid("Duplicate tag key '" + t.Key + "' specified.")
		}
		seen[t.Key] = true
	}
	if len(li.Tags) > maxTags {
		return nil, errTagLimit(li.InstanceID)
	}
	sp.tags = li.Tags
	sp.placement = imds.Placement{Region: s.opts.Region, AvailabilityZone: s.opts.Region + "a", Tenancy: "default", HostID: li.HostID}
	sp.placement.AvailabilityZoneID = azID(s.opts.Region, sp.placement.AvailabilityZone)
	if len(li.Interfaces) == 0 {
		return nil, errMissing("NetworkInterface.1")
	}
	addrs := map[netip.Addr]bool{}
	for i, ifc := range li.Interfaces {
		param := "NetworkInterface." + strconv.Itoa(i+1)
		if len(ifc.IPv4)+len(ifc.IPv6) == 0 {
			return nil, errMissing(param + ".PrivateIpAddress")
		}
		e := eniSpec{param: param, deviceIndex: i}
		for _, a := range ifc.IPv4 {
			if !a.Is4() {
				return nil, errInvalid(fmt.Sprintf("Invalid IPv4 address %s for %s.", a, param))
			}
			e.ipv4 = append(e.ipv4, a)
		}
		for _, a := range ifc.IPv6 {
			if !a.Is6() || a.Is4In6() {
				return nil, errInvalid(fmt.Sprintf("Invalid IPv6 address %s for %s.", a, param))
			}
			e.ipv6 = append(e.ipv6, a)
		}
		for _, a := range append(append([]netip.Addr(nil), e.ipv4...), e.ipv6...) {
			if addrs[a] {
				return nil, errInvalid("Address " + a.String() + " is given twice.")
			}
			addrs[a] = true
		}
		sp.enis = append(sp.enis, e)
	}
	return sp, nil
}

// Terminate marks the instance terminated and releases its addresses at
// once, in one transaction. Terminating a terminated instance changes
// nothing; an unknown id is InvalidInstanceID.NotFound.
func (s *Server) Terminate(ctx context.Context, id string) error {
	return s.update(ctx, false, func(tx imds.Tx) error {
		return eachInstance(tx, []string{id}, func(_ string, in *imds.Instance) error {
			if in.State == imds.StateTerminated {
				return nil
			}
			in.State = imds.StateTerminated
			return imds.PutInstance(tx, in)
		})
	})
}

// Forget deletes the record of a terminated instance (a source whose
// workload is gone for good). A live instance is IncorrectInstanceState;
// an unknown id is not an error.
func (s *Server) Forget(ctx context.Context, id string) error {
	return s.update(ctx, false, func(tx imds.Tx) error {
		in, err := imds.GetInstance(tx, id)
		if errors.Is(err, imds.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if in.Live() {
			return errIncorrectState(id, in.State)
		}
		return imds.DeleteInstance(tx, id)
	})
}

// HostInstances returns the instances placed on hostID ("": unplaced
// ones) that keep accepts (all of them when keep is nil), read in one
// transaction from that host's key range only.
func (s *Server) HostInstances(ctx context.Context, hostID string, keep func(*imds.Instance) bool) ([]*imds.Instance, error) {
	var out []*imds.Instance
	err := s.store.View(ctx, func(tx imds.Tx) error {
		out = out[:0]
		return imds.ListHostInstances(tx, hostID, func(in *imds.Instance) error {
			if keep == nil || keep(in) {
				out = append(out, in)
			}
			return nil
		})
	})
	return out, err
}

// Instances returns the stored instances keep accepts (every instance when
// keep is nil), read in one transaction.
func (s *Server) Instances(ctx context.Context, keep func(*imds.Instance) bool) ([]*imds.Instance, error) {
	var out []*imds.Instance
	err := s.store.View(ctx, func(tx imds.Tx) error {
		out = out[:0]
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			if keep == nil || keep(in) {
				out = append(out, in)
			}
			return nil
		})
	})
	return out, err
}
