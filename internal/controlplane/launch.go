package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/region"
)

// maxLaunchCount bounds MaxCount: one RunInstances is one store transaction,
// and a transaction should stay small.
const maxLaunchCount = 100

var (
	instanceTypeRe = regexp.MustCompile(`^[a-z0-9-]{1,32}\.[a-z0-9-]{1,32}$`)
	// gravitonRe matches the Graviton (arm64) families: a1, and a "g" after
	// the generation digit (t4g, m6gd, c7gn), but not GPU families (g4dn).
	gravitonRe = regexp.MustCompile(`^(a1|[a-z]+[0-9]+[a-z-]*g[a-z-]*)\.`)
)

// launchSpec is a parsed RunInstances request.
type launchSpec struct {
	imageID, instanceType string
	kernelID, ramdiskID   string
	minCount, maxCount    int
	userData              []byte
	profile               *imds.IAMInstanceProfile
	keyName, keyMaterial  string
	placement             imds.Placement
	tags                  []imds.Tag
	options               imds.OptionsRequest
	enis                  []eniSpec
	allocate              bool   // an interface names a subnet and no IPv4 address: allocate one
	explicitAZ            string // Placement.AvailabilityZone as given (a subnet's zone must match)
	lifecycle, monitoring string
	dryRun                bool
	blockDevices          []imds.BlockDevice // blockdevices.go
}

// eniSpec is one requested network interface.
type eniSpec struct {
	param       string // "NetworkInterface.1" or "" for instance-level fields
	deviceIndex int
	networkCard *int
	ipv4        []netip.Addr // primary first
	ipv6        []netip.Addr
	subnetID    string
	groups      []imds.SecurityGroup
	groupNames  []string
	// associatePublic asks for a public IPv4 from the pool at launch.
	associatePublic bool
	// subnet and vpc are the records of subnetID, read at launch.
	subnet *imds.Subnet
	vpc    *imds.VPC
}

// parseLaunch reads and checks everything RunInstances takes, before the
// store is touched.
func (s *Server) parseLaunch(p params) (*launchSpec, error) {
	sp := &launchSpec{instanceType: "t3.micro", lifecycle: "on-demand", monitoring: "disabled"}
	var err error
	if sp.dryRun, err = p.dryRun(); err != nil {
		return nil, err
	}
	if sp.imageID, err = p.required("ImageId"); err != nil {
		return nil, err
	}
	if !amiIDRe.MatchString(sp.imageID) {
		return nil, errMalformedID("InvalidAMIID.Malformed", sp.imageID, "ami")
	}
	if v, ok := p.get("InstanceType"); ok {
		if !instanceTypeRe.MatchString(v) {
			return nil, errInvalid("Invalid value '" + v + "' for InstanceType.")
		}
		sp.instanceType = v
	}
	sp.kernelID, sp.ramdiskID = p.str("KernelId"), p.str("RamdiskId")
	if sp.minCount, sp.maxCount, err = launchCounts(p); err != nil {
		return nil, err
	}
	if v, ok := p.get("UserData"); ok && v != "" {
		b, err := decodeBase64(v)
		if err != nil {
			return nil, errInvalid("Invalid BASE64 encoding of user data.")
		}
		if len(b) > imds.MaxUserData {
			return nil, errInvalid("User data is limited to " + strconv.Itoa(imds.MaxUserData) + " bytes.")
		}
		sp.userData = b
	}
	if p.has("IamInstanceProfile") {
		if sp.profile, err = s.parseProfile(p.sub("IamInstanceProfile")); err != nil {
			return nil, err
		}
	}
	if name, ok := p.get("KeyName"); ok && name != "" {
		sp.keyName = name
		if s.opts.KeyPairs != nil {
			key, ok := s.opts.KeyPairs(name)
			if !ok {
				return nil, newAPIError(http.StatusBadRequest, "InvalidKeyPair.NotFound", "The key pair '"+name+"' does not exist")
			}
			sp.keyMaterial = key
		}
	}
	if sp.placement, err = s.parsePlacement(p.sub("Placement")); err != nil {
		return nil, err
	}
	if sp.tags, err = launchTags(p); err != nil {
		return nil, err
	}
	if sp.options, err = parseOptionsRequest(p.sub("MetadataOptions")); err != nil {
		return nil, err
	}
	if mt, err := p.enumOpt("InstanceMarketOptions.MarketType", "spot", "capacity-block"); err != nil {
		return nil, err
	} else if mt != nil && *mt == "spot" {
		sp.lifecycle = "spot"
	}
	if on, _, err := p.boolOpt("Monitoring.Enabled"); err != nil {
		return nil, err
	} else if on {
		sp.monitoring = "enabled"
	}
	sp.explicitAZ = p.str("Placement.AvailabilityZone")
	if err := s.parseNetwork(p, sp); err != nil {
		return nil, err
	}
	if sp.blockDevices, err = parseBlockDevices(p); err != nil {
		return nil, err
	}
	return sp, nil
}

func launchCounts(p params) (int, int, error) {
	minC, err := p.intOpt("MinCount")
	if err != nil {
		return 0, 0, err
	}
	maxC, err := p.intOpt("MaxCount")
	if err != nil {
		return 0, 0, err
	}
	lo, hi := 1, 1
	if minC != nil {
		lo = *minC
	}
	if maxC != nil {
		hi = *maxC
	}
	if lo < 1 {
		return 0, 0, errInvalid("Invalid value '" + strconv.Itoa(lo) + "' for MinCount. Must be greater than zero.")
	}
	if hi < 1 {
		return 0, 0, errInvalid("Invalid value '" + strconv.Itoa(hi) + "' for MaxCount. Must be greater than zero.")
	}
	if lo > hi {
		return 0, 0, errInvalid("MinCount (" + strconv.Itoa(lo) + ") must not be greater than MaxCount (" + strconv.Itoa(hi) + ").")
	}
	if hi > maxLaunchCount {
		return 0, 0, errInvalid("Invalid value '" + strconv.Itoa(hi) + "' for MaxCount: frontdesk launches at most " + strconv.Itoa(maxLaunchCount) + " instances per request.")
	}
	return lo, hi, nil
}

// parseProfile reads IamInstanceProfile.Arn or .Name. frontdesk has no IAM:
// the role whose credentials are served has the profile's name, the common
// convention (documented in EXTENSIONS.md).
func (s *Server) parseProfile(p params) (*imds.IAMInstanceProfile, error) {
	arn, name := p.str("Arn"), p.str("Name")
	switch {
	case arn != "" && name != "":
		return nil, errCombination("Specify either IamInstanceProfile.Arn or IamInstanceProfile.Name, not both.")
	case arn != "":
		// A profile of any account is accepted: instances may use roles
		// of another account, as with cross-account instance profiles.
		m := profileArnRe.FindStringSubmatch(arn)
		if m == nil {
			return nil, errInvalid("Value (" + arn + ") for parameter " + p.name("Arn") + " is invalid.")
		}
		name = m[2]
	case name != "":
		if !profileNmRe.MatchString(name) {
			return nil, errInvalid("Value (" + name + ") for parameter " + p.name("Name") + " is invalid.")
		}
		arn = region.ARN(s.opts.Region, "iam", "", s.opts.AccountID, "instance-profile/"+name)
	default:
		return nil, errMissing(p.name("Arn"))
	}
	return &imds.IAMInstanceProfile{Arn: arn, ID: stableUpperID("AIPA", arn, 17), Role: name}, nil
}

func (s *Server) parsePlacement(p params) (imds.Placement, error) {
	pl := imds.Placement{Region: s.opts.Region, AvailabilityZone: s.opts.Zones[0], Tenancy: "default"}
	if az, ok := p.get("AvailabilityZone"); ok && az != "" {
		if err := s.checkZone(az); err != nil {
			return pl, err
		}
		pl.AvailabilityZone = az
	}
	pl.AvailabilityZoneID = azID(s.opts.Region, pl.AvailabilityZone)
	if id, ok := p.get("AvailabilityZoneId"); ok && id != "" {
		pl.AvailabilityZoneID = id
	}
	pl.GroupName = p.str("GroupName")
	pl.HostID = p.str("HostId")
	pn, err := p.intOpt("PartitionNumber")
	if err != nil {
		return pl, err
	}
	if pn != nil {
		if *pn < 1 || *pn > 7 {
			return pl, errInvalid("Invalid value '" + strconv.Itoa(*pn) + "' for " + p.name("PartitionNumber") + ". Valid values: 1-7.")
		}
		pl.PartitionNumber = *pn
	}
	t, err := p.enumOpt("Tenancy", "default", "dedicated", "host")
	if err != nil {
		return pl, err
	}
	if t != nil {
		pl.Tenancy = *t
	}
	return pl, nil
}

// launchTags collects the instance tags of TagSpecification.N. Tags for the
// other resource types EC2 creates at launch are accepted and ignored:
// frontdesk has no volumes or standalone interfaces.
func launchTags(p params) ([]imds.Tag, error) {
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
		tags, err := parseTags(sp, "Tag")
		if err != nil {
			return nil, err
		}
		switch rt {
		case "instance":
			for _, t := range tags {
				for _, o := range out {
					if o.Key == t.Key {
						return nil, errInvalid("Duplicate tag key '" + t.Key + "' specified.")
					}
				}
				out = append(out, t)
			}
		case "volume", "network-interface", "spot-instances-request", "elastic-gpu":
		default:
			return nil, errInvalid("'" + rt + "' is not a valid taggable resource type for this operation.")
		}
	}
	if len(out) > maxTags {
		return nil, newAPIError(http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags (50) per resource has been exceeded.")
	}
	return out, nil
}

// parseOptionsRequest reads the metadata options of RunInstances or
// ModifyInstanceMetadataOptions; p is already narrowed to their prefix.
func parseOptionsRequest(p params) (imds.OptionsRequest, error) {
	var r imds.OptionsRequest
	var err error
	if r.HttpTokens, err = p.enumOpt("HttpTokens", imds.Optional, imds.Required); err != nil {
		return r, err
	}
	if r.HttpEndpoint, err = p.enumOpt("HttpEndpoint", imds.Enabled, imds.Disabled); err != nil {
		return r, err
	}
	if r.HttpProtocolIPv6, err = p.enumOpt("HttpProtocolIpv6", imds.Enabled, imds.Disabled); err != nil {
		return r, err
	}
	if r.InstanceMetadataTags, err = p.enumOpt("InstanceMetadataTags", imds.Enabled, imds.Disabled); err != nil {
		return r, err
	}
	if r.HttpPutResponseHopLimit, err = p.intOpt("HttpPutResponseHopLimit"); err != nil {
		return r, err
	}
	if h := r.HttpPutResponseHopLimit; h != nil && (*h < 1 || *h > imds.MaxHopLimit) {
		return r, errInvalid("Invalid value '" + strconv.Itoa(*h) + "' for " + p.name("HttpPutResponseHopLimit") + ". Valid values: 1-64.")
	}
	return r, nil
}

// parseNetwork reads the instance-level address fields or NetworkInterface.N.
func (s *Server) parseNetwork(p params, sp *launchSpec) error {
	top := eniSpec{}
	var err error
	if v, ok := p.get("PrivateIpAddress"); ok {
		a, err := parseAddr(v, "PrivateIpAddress", true)
		if err != nil {
			return err
		}
		top.ipv4 = append(top.ipv4, a)
	}
	ipv6Items, err := p.list("Ipv6Address")
	if err != nil {
		return err
	}
	for _, it := range ipv6Items {
		a, err := parseAddr(it.str("Ipv6Address"), it.name("Ipv6Address"), false)
		if err != nil {
			return err
		}
		top.ipv6 = append(top.ipv6, a)
	}
	if top.subnetID, err = parseSubnetID(p, "SubnetId"); err != nil {
		return err
	}
	if top.groups, top.groupNames, err = parseGroups(p, "SecurityGroupId", "SecurityGroup"); err != nil {
		return err
	}
	if n, err := p.intOpt("Ipv6AddressCount"); err != nil {
		return err
	} else if n != nil && *n > 0 {
		return errCombination("frontdesk does not allocate IPv6 addresses: give them with Ipv6Address.N.")
	}

	enis, err := p.list("NetworkInterface")
	if err != nil {
		return err
	}
	if len(enis) > 0 {
		if len(top.ipv4) > 0 || len(top.ipv6) > 0 || top.subnetID != "" || len(top.groups) > 0 || len(top.groupNames) > 0 {
			return errCombination("Network interfaces and an instance-level private IP address, subnet or security groups may not be specified on the same request")
		}
		seen := map[int]bool{}
		hasPrimary := false
		for i, ep := range enis {
			e, err := parseENI(ep, i)
			if err != nil {
				return err
			}
			if seen[e.deviceIndex] {
				return errInvalid("Each network interface requires a unique device index (" + strconv.Itoa(e.deviceIndex) + " is used twice).")
			}
			seen[e.deviceIndex] = true
			hasPrimary = hasPrimary || e.deviceIndex == 0
			sp.enis = append(sp.enis, e)
		}
		if !hasPrimary {
			return errInvalid("A network interface with DeviceIndex 0 (the primary interface) is required.")
		}
	} else if len(top.ipv4) > 0 || len(top.ipv6) > 0 || top.subnetID != "" {
		sp.enis = []eniSpec{top}
	} else {
		return newAPIError(http.StatusBadRequest, "MissingParameter",
			"The request must contain the parameter SubnetId (--subnet-id: frontdesk allocates an address in the subnet) or PrivateIpAddress (or addresses in NetworkInterface.N): frontdesk identifies instances by their addresses.")
	}
	return checkAllocation(sp)
}

func parseENI(p params, i int) (eniSpec, error) {
	e := eniSpec{param: strings.TrimSuffix(p.prefix, "."), deviceIndex: i}
	if _, ok := p.get("NetworkInterfaceId"); ok {
		return e, errInvalid("frontdesk cannot attach an existing network interface (" + p.name("NetworkInterfaceId") + ").")
	}
	di, err := p.intOpt("DeviceIndex")
	if err != nil {
		return e, err
	}
	if di != nil {
		if *di < 0 || *di > 31 {
			return e, errInvalid("Invalid value '" + strconv.Itoa(*di) + "' for " + p.name("DeviceIndex") + ".")
		}
		e.deviceIndex = *di
	}
	nc, err := p.intOpt("NetworkCardIndex")
	if err != nil {
		return e, err
	}
	if nc != nil {
		if *nc < 0 || *nc > 15 {
			return e, errInvalid("Invalid value '" + strconv.Itoa(*nc) + "' for " + p.name("NetworkCardIndex") + ".")
		}
		e.networkCard = nc
	}
	var primary *netip.Addr
	if v, ok := p.get("PrivateIpAddress"); ok {
		a, err := parseAddr(v, p.name("PrivateIpAddress"), true)
		if err != nil {
			return e, err
		}
		primary = &a
	}
	pips, err := p.list("PrivateIpAddresses")
	if err != nil {
		return e, err
	}
	var secondary []netip.Addr
	for _, pp := range pips {
		a, err := parseAddr(pp.str("PrivateIpAddress"), pp.name("PrivateIpAddress"), true)
		if err != nil {
			return e, err
		}
		isPrimary, _, err := pp.boolOpt("Primary")
		if err != nil {
			return e, err
		}
		switch {
		case isPrimary && primary != nil && *primary != a:
			return e, errCombination("Only one primary private IP address may be given for " + e.param + ".")
		case isPrimary:
			primary = &a
		case primary == nil || *primary != a:
			secondary = append(secondary, a)
		}
	}
	if primary != nil {
		e.ipv4 = append(e.ipv4, *primary)
	} else if len(secondary) > 0 {
		return e, errCombination("A primary private IP address is required for " + e.param + ".")
	}
	e.ipv4 = append(e.ipv4, secondary...)
	v6, err := p.list("Ipv6Addresses")
	if err != nil {
		return e, err
	}
	for _, it := range v6 {
		a, err := parseAddr(it.str("Ipv6Address"), it.name("Ipv6Address"), false)
		if err != nil {
			return e, err
		}
		e.ipv6 = append(e.ipv6, a)
	}
	if e.subnetID, err = parseSubnetID(p, "SubnetId"); err != nil {
		return e, err
	}
	if len(e.ipv4) == 0 && len(e.ipv6) == 0 && e.subnetID == "" {
		return e, errMissing(p.name("PrivateIpAddress"))
	}
	if e.associatePublic, _, err = p.boolOpt("AssociatePublicIpAddress"); err != nil {
		return e, err
	}
	if e.groups, e.groupNames, err = parseGroups(p, "SecurityGroupId", "SecurityGroup"); err != nil {
		return e, err
	}
	return e, nil
}

// parseAddr reads one address of the wanted family. Loopback is allowed so
// that a developer's own machine can be an instance.
func parseAddr(v, param string, want4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(v)
	bad := err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast()
	if !bad {
		if want4 {
			bad = !a.Is4()
		} else {
			bad = !a.Is6() || a.Is4In6()
		}
	}
	if bad {
		return netip.Addr{}, errInvalid("Invalid value '" + v + "' for " + param + ".")
	}
	return a, nil
}

func parseSubnetID(p params, key string) (string, error) {
	v, ok := p.get(key)
	if !ok || v == "" {
		return "", nil
	}
	if !subnetIDRe.MatchString(v) {
		return "", errMalformedID("InvalidSubnetID.Malformed", v, "subnet")
	}
	return v, nil
}

// parseGroups reads security-group ids and names. frontdesk has no security
// groups of its own: a group given by id is served with its id as its name,
// and one given by name gets an id derived from the name and VPC later.
func parseGroups(p params, idKey, nameKey string) ([]imds.SecurityGroup, []string, error) {
	ids, err := p.strings(idKey)
	if err != nil {
		return nil, nil, err
	}
	var groups []imds.SecurityGroup
	for _, id := range ids {
		if !sgIDRe.MatchString(id) {
			return nil, nil, errMalformedID("InvalidGroupId.Malformed", id, "sg")
		}
		groups = append(groups, imds.SecurityGroup{ID: id, Name: id})
	}
	names, err := p.strings(nameKey)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		if n == "" || len(n) > 255 {
			return nil, nil, errInvalid("Invalid value '" + n + "' for " + p.name(nameKey) + ".")
		}
	}
	return groups, names, nil
}

// runInstances launches instances: all of them in one store Update, or none.
// With a ClientToken seen before (same parameters) it answers the earlier
// reservation again and launches nothing.
func (s *Server) runInstances(ctx context.Context, p params) (response, error) {
	sp, err := s.parseLaunch(p)
	if err != nil {
		return nil, err
	}
	token := p.str("ClientToken")
	if err := checkClientToken(token); err != nil {
		return nil, err
	}
	digest := launchDigest(p)
	var (
		launched      []*imds.Instance
		reservationID string
		replayed      bool
		resolved      imds.MetadataOptions
	)
	err = s.update(ctx, sp.dryRun, func(tx imds.Tx) error {
		launched, replayed = launched[:0], false
		now := s.opts.Now().UTC()
		if token != "" {
			rec, err := getClientToken(tx, token, now)
			if err != nil {
				return err
			}
			if rec != nil {
				if rec.Params != digest {
					return errIdempotentMismatch()
				}
				replayed, reservationID = true, rec.ReservationID
				for _, id := range rec.InstanceIDs {
					in, err := imds.GetInstance(tx, id)
					if errors.Is(err, imds.ErrNotFound) {
						continue
					}
					if err != nil {
						return err
					}
					launched = append(launched, in)
				}
				return nil
			}
		}
		acct, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		l, err := s.launchInTx(tx, sp, acct)
		if err != nil {
			return err
		}
		launched, resolved, reservationID = l.instances, l.options, l.reservationID
		var ids []string
		for _, in := range launched {
			ids = append(ids, in.InstanceID)
		}
		if token != "" {
			return putClientToken(tx, token, clientTokenRecord{Params: digest, ReservationID: reservationID, InstanceIDs: ids, Created: now})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp := &runInstancesResponse{xmlReservation: xmlReservation{ReservationID: reservationID, OwnerID: s.opts.AccountID}}
	ids := make([]string, 0, len(launched))
	var addrs []string
	for _, in := range launched {
		resp.Instances = append(resp.Instances, s.instanceXML(in))
		ids = append(ids, in.InstanceID)
		addrs = append(addrs, in.Addresses()...)
	}
	if len(launched) > 0 {
		resp.Groups = resp.Instances[0].Groups
	}
	if !replayed {
		noteChange(ctx, ids, map[string]string{
			"ReservationId": reservationID,
			"ImageId":       sp.imageID,
			"InstanceType":  sp.instanceType,
			"HttpTokens":    resolved.HttpTokens,
			"HttpEndpoint":  resolved.HttpEndpoint,
			"Addresses":     strings.Join(addrs, ","),
		})
	}
	return resp, nil
}

type runInstancesResponse struct {
	respMeta
	xmlReservation
}

// newInstance builds one instance of a launch with every default EC2 would
// fill in.
func (s *Server) newInstance(tx imds.Tx, sp *launchSpec, enis []eniSpec, opts imds.MetadataOptions, reservationID string, index int) (*imds.Instance, error) {
	id, err := s.freeInstanceID(tx)
	if err != nil {
		return nil, err
	}
	gen, err := newGeneration()
	if err != nil {
		return nil, err
	}
	in := &imds.Instance{
		InstanceID:        id,
		ReservationID:     reservationID,
		AccountID:         s.opts.AccountID,
		Generation:        gen,
		State:             imds.StateRunning,
		ImageID:           sp.imageID,
		AMILaunchIndex:    index,
		AMIManifestPath:   "(unknown)",
		KernelID:          sp.kernelID,
		RamdiskID:         sp.ramdiskID,
		InstanceType:      sp.instanceType,
		Architecture:      "x86_64",
		LaunchTime:        s.opts.Now().UTC().Truncate(time.Millisecond),
		InstanceLifecycle: sp.lifecycle,
		InstanceAction:    "none",
		Monitoring:        sp.monitoring,
		Profile:           "default-hvm",
		Placement:         sp.placement,
		BlockDevices:      append([]imds.BlockDevice(nil), sp.blockDevices...),
		Tags:              append([]imds.Tag(nil), sp.tags...),
		UserData:          append([]byte(nil), sp.userData...),
		MetadataOptions:   opts,
		OptionsRevision:   tx.Revision() + 1,
	}
	if len(sp.userData) == 0 {
		in.UserData = nil
	}
	if gravitonRe.MatchString(sp.instanceType) {
		in.Architecture = "arm64"
	}
	if sp.keyName != "" {
		in.PublicKeys = []imds.PublicKey{{Name: sp.keyName, OpenSSH: sp.keyMaterial}}
	}
	if sp.profile != nil {
		prof := *sp.profile
		if prof.AssociationID, err = newID("iip-assoc-"); err != nil {
			return nil, err
		}
		in.IAMInstanceProfile = &prof
	}
	macs := map[string]bool{}
	for _, e := range enis {
		ni, err := s.newInterface(e, macs, id)
		if err != nil {
			return nil, err
		}
		in.NetworkInterfaces = append(in.NetworkInterfaces, ni)
	}
	return in, nil
}

func (s *Server) freeInstanceID(tx imds.Tx) (string, error) {
	for {
		id, err := newID("i-")
		if err != nil {
			return "", err
		}
		_, err = imds.GetInstance(tx, id)
		if errors.Is(err, imds.ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", err
		}
	}
}

// newInterface fills in an ENI. Subnet and VPC are derived from the primary
// address when the interface names no subnet: the /24 (IPv4) or /64 (IPv6)
// around it, inside a /16 (or /56) VPC. Their ids are derived from the
// CIDRs, so neighbours share them. An interface in a subnet takes its
// subnet's and VPC's ids and blocks (applySubnet).
func (s *Server) newInterface(e eniSpec, macs map[string]bool, instanceID string) (imds.NetworkInterface, error) {
	ni := imds.NetworkInterface{DeviceIndex: e.deviceIndex, NetworkCard: e.networkCard, OwnerID: s.opts.AccountID}
	for {
		mac, err := newMAC()
		if err != nil {
			return ni, err
		}
		if !macs[mac] {
			macs[mac] = true
			ni.MAC = mac
			break
		}
	}
	var err error
	if ni.InterfaceID, err = newID("eni-"); err != nil {
		return ni, err
	}
	for _, a := range e.ipv4 {
		ni.PrivateIPv4s = append(ni.PrivateIPv4s, a.String())
	}
	for _, a := range e.ipv6 {
		ni.IPv6s = append(ni.IPv6s, a.String())
	}
	var vpcKey string
	if len(e.ipv4) > 0 {
		a := e.ipv4[0]
		subnet := netip.PrefixFrom(a, 24).Masked()
		vpc := netip.PrefixFrom(a, min(16, subnet.Bits())).Masked()
		ni.SubnetIPv4CIDR = subnet.String()
		ni.VPCIPv4CIDRs = []string{vpc.String()}
		vpcKey = vpc.String()
		ni.LocalHostname = privateDNSName(s.opts.Region, a)
	} else {
		ni.LocalHostname = resourceDNSName(s.opts.Region, instanceID)
	}
	if len(e.ipv6) > 0 {
		a := e.ipv6[0]
		ni.SubnetIPv6CIDRs = []string{netip.PrefixFrom(a, 64).Masked().String()}
		vpc6 := netip.PrefixFrom(a, 56).Masked()
		ni.VPCIPv6CIDRs = []string{vpc6.String()}
		if vpcKey == "" {
			vpcKey = vpc6.String()
		}
	}
	ni.VPCID = stableID("vpc-", vpcKey)
	ni.SubnetID = e.subnetID
	if ni.SubnetID == "" {
		subnetKey := ni.SubnetIPv4CIDR
		if subnetKey == "" && len(ni.SubnetIPv6CIDRs) > 0 {
			subnetKey = ni.SubnetIPv6CIDRs[0]
		}
		ni.SubnetID = stableID("subnet-", subnetKey)
	}
	applySubnet(&ni, e)
	ni.SecurityGroups = append(ni.SecurityGroups, e.groups...)
	for _, n := range e.groupNames {
		ni.SecurityGroups = append(ni.SecurityGroups, imds.SecurityGroup{ID: stableID("sg-", ni.VPCID+"/"+n), Name: n})
	}
	if len(ni.SecurityGroups) == 0 {
		ni.SecurityGroups = []imds.SecurityGroup{{ID: stableID("sg-", ni.VPCID+"/default"), Name: "default"}}
	}
	return ni, nil
}
