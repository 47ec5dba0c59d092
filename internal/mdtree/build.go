package mdtree

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/region"
)

// First builds (the UG's "Version introduced") of the categories whose
// visibility depends on the version. Where the UG gives a build that is not
// in the root listing (2018-05-23, 2020-08-24, ...), the category first shows
// in the next listed build, which plain string comparison gives for free.
const (
	v1_0           = "1.0"
	v2007_01_19    = "2007-01-19"
	v2007_03_01    = "2007-03-01"
	v2007_08_29    = "2007-08-29"
	v2007_10_10    = "2007-10-10"
	v2007_12_15    = "2007-12-15"
	v2008_02_01    = "2008-02-01"
	v2008_09_01    = "2008-09-01"
	v2009_04_04    = "2009-04-04"
	v2011_01_01    = "2011-01-01"
	v2011_05_01    = "2011-05-01"
	v2012_01_12    = "2012-01-12"
	v2014_02_25    = "2014-02-25"
	v2014_11_05    = "2014-11-05"
	v2015_10_20    = "2015-10-20"
	v2016_06_30    = "2016-06-30"
	v2016_11_15    = "2016-11-15"
	v2018_05_23    = "2018-05-23"
	v2018_08_17    = "2018-08-17"
	v2019_10_01    = "2019-10-01"
	v2020_08_24    = "2020-08-24"
	v2020_10_27    = "2020-10-27"
	v2020_11_01    = "2020-11-01"
	v2021_01_03    = "2021-01-03"
	v2021_03_23    = "2021-03-23"
	v2021_07_15    = "2021-07-15"
	identityDocVer = "2017-09-30"
)

// vhostmdBody is what current instances answer at metrics/vhostmd, a
// category the UG calls "no longer available" but still lists: an XML
// declaration and nothing else. UNCONFIRMED; chosen so the listed entry is
// not a 404 for crawlers such as cloud-init.
const vhostmdBody = `<?xml version="1.0" encoding="UTF-8"?>`

// Build renders the tree of one instance. Everything static is rendered here,
// once, so that serving "latest" is a lookup. A nil instance gives a tree
// with only the always-present categories.
func Build(in *imds.Instance) *Tree {
	if in == nil {
		in = &imds.Instance{}
	}
	doc := identityDocument(in)
	metaData := metaDataDir(in)
	dynamic := dir("dynamic",
		dir("fws", leaf("instance-monitoring", v2009_04_04, defaultString(in.Monitoring, imds.Disabled))),
		// UG order. dsa2048 is left out: frontdesk cannot produce EC2's DSA
		// body for it, and cloud-init fetches every listed entry.
		dir("instance-identity",
			dynLeaf("rsa2048", v2009_04_04, IdentityRSA2048, ""),
			dynLeaf("pkcs7", v2009_04_04, IdentityPKCS7, ""),
			&entry{name: "document", since: v2009_04_04, node: Node{Kind: Static, Body: doc}},
			dynLeaf("signature", v2009_04_04, IdentitySignature, ""),
		),
	)
	var userData *entry
	if len(in.UserData) > 0 {
		userData = &entry{name: "user-data", since: v1_0,
			node: Node{Kind: UserData, Body: append([]byte(nil), in.UserData...)}}
	}
	// The version root lists its directories without the "/" (docs/behaviour.md, "The tree").
	if dynamic != nil {
		dynamic.label = "dynamic"
	}
	metaData.label = "meta-data"
	root := dir("", dynamic, metaData, userData)

	t := &Tree{root: root, latest: map[string]Node{}, doc: doc}
	t.index(root, "")
	return t
}

// index fills the "latest" map with every node below e.
func (t *Tree) index(e *entry, path string) {
	if !e.dir {
		t.latest[path] = e.node
		return
	}
	t.latest[path] = Node{Kind: Listing, Body: e.listing}
	for _, c := range e.children {
		p := c.name
		if path != "" {
			p = path + "/" + c.name
		}
		t.index(c, p)
	}
}

// metaDataDir renders meta-data/. It is never nil: ami-id and friends exist
// in every build.
func metaDataDir(in *imds.Instance) *entry {
	eth0 := in.Primary()
	if eth0 == nil {
		eth0 = &imds.NetworkInterface{}
	}
	region := regionOf(in.Placement)
	domain, partition := servicesFor(region)

	var iam *entry
	if p := in.IAMInstanceProfile; p != nil {
		var creds *entry
		if p.Role != "" {
			creds = dir("security-credentials", dynLeaf(p.Role, v2012_01_12, RoleCredentials, p.Role))
		}
		iam = dir("iam", dynLeaf("info", v2012_01_12, RoleInfo, p.Role), creds)
	}

	var keys []*entry
	for i, k := range in.PublicKeys {
		idx := strconv.Itoa(i)
		d := dir(idx, leaf("openssh-key", v1_0, opensshLine(k.OpenSSH)))
		if d != nil {
			d.label = idx + "=" + k.Name
		}
		keys = append(keys, d)
	}

	var devices []*entry
	for _, d := range in.BlockDevices {
		devices = append(devices, leaf(d.Name, v2007_12_15, d.Device))
	}

	var tags *entry
	if in.MetadataOptions.InstanceMetadataTags == imds.Enabled {
		var vals []*entry
		for _, tg := range in.Tags {
			// Validate rejects such keys when tags are enabled; skipping
			// them here keeps a bad record from creating odd paths.
			if imds.ValidMetadataTagKey(tg.Key) {
				vals = append(vals, &entry{name: tg.Key, since: v2021_03_23, node: Node{Kind: Static, Body: []byte(tg.Value)}})
			}
		}
		tags = dir("tags", dir("instance", vals...))
	}

	var spot *entry
	if s := in.Events.Spot; s != nil {
		spot = dir("spot",
			leaf("instance-action", v2016_11_15, `{"action": `+string(appendString(nil, s.Action))+`, "time": "`+formatTime(s.Time)+`"}`),
			leaf("termination-time", v2014_11_05, formatTime(s.Time)),
		)
	}
	var rebalance *entry
	if n := in.Events.RebalanceNotice; n != nil {
		rebalance = dir("recommendations", leaf("rebalance", v2020_10_27, `{"noticeTime": "`+formatTime(*n)+`"}`))
	}

	var partitionNumber string
	if in.Placement.PartitionNumber != 0 {
		partitionNumber = strconv.Itoa(in.Placement.PartitionNumber)
	}
	var localIPv4, ipv6 string
	if len(eth0.PrivateIPv4s) > 0 {
		localIPv4 = eth0.PrivateIPv4s[0]
	}
	if len(eth0.IPv6s) > 0 {
		ipv6 = eth0.IPv6s[0]
	}

	md := sortedDir("meta-data",
		leaf("ami-id", v1_0, in.ImageID),
		leaf("ami-launch-index", v1_0, strconv.Itoa(in.AMILaunchIndex)),
		// EBS-backed AMIs have no manifest; EC2 says "(unknown)".
		leaf("ami-manifest-path", v1_0, defaultString(in.AMIManifestPath, "(unknown)")),
		leaf("ancestor-ami-ids", v2007_10_10, strings.Join(in.AncestorAMIIDs, "\n")),
		dir("autoscaling", leaf("target-lifecycle-state", v2021_07_15, in.Events.TargetLifecycleState)),
		sortedDir("block-device-mapping", devices...),
		dir("events",
			dir("maintenance",
				leaf("history", v2018_08_17, eventsJSON(in.Events.History)),
				leaf("scheduled", v2018_08_17, eventsJSON(in.Events.Scheduled)),
			),
			rebalance,
		),
		leaf("hostname", v1_0, eth0.LocalHostname),
		iam,
		dir("identity-credentials", dir("ec2",
			dynLeaf("info", v2018_05_23, IdentityCredentialsInfo, ""),
			dir("security-credentials", dynLeaf("ec2-instance", v2018_05_23, IdentityCredentials, "")),
		)),
		leaf("instance-action", v2008_09_01, defaultString(in.InstanceAction, "none")),
		leaf("instance-id", v1_0, in.InstanceID),
		leaf("instance-life-cycle", v2019_10_01, defaultString(in.InstanceLifecycle, "on-demand")),
		leaf("instance-type", v2007_08_29, in.InstanceType),
		leaf("ipv6", v2021_01_03, ipv6),
		leaf("kernel-id", v2008_02_01, in.KernelID),
		leaf("local-hostname", v2007_01_19, eth0.LocalHostname),
		leaf("local-ipv4", v1_0, localIPv4),
		leaf("mac", v2011_01_01, eth0.MAC),
		dir("metrics", leaf("vhostmd", v2011_05_01, vhostmdBody)),
		dir("network", dir("interfaces", interfacesDir(in))),
		dir("placement",
			leaf("availability-zone", v2008_02_01, in.Placement.AvailabilityZone),
			leaf("availability-zone-id", v2019_10_01, in.Placement.AvailabilityZoneID),
			leaf("group-name", v2020_08_24, in.Placement.GroupName),
			leaf("host-id", v2020_08_24, dedicatedHostID(in.Placement.HostID)),
			leaf("partition-number", v2020_08_24, partitionNumber),
			leaf("region", v2020_08_24, region),
		),
		leaf("product-codes", v2007_03_01, strings.Join(in.ProductCodes, "\n")),
		// The UG gives no first build for profile; it is shown in all.
		leaf("profile", v1_0, in.Profile),
		leaf("public-hostname", v2007_01_19, eth0.PublicHostname),
		leaf("public-ipv4", v2007_01_19, eth0.PublicIPv4),
		dir("public-keys", keys...),
		leaf("ramdisk-id", v2007_10_10, in.RamdiskID),
		leaf("reservation-id", v1_0, in.ReservationID),
		leaf("security-groups", v1_0, strings.Join(groupNames(eth0.SecurityGroups), "\n")),
		dir("services",
			leaf("domain", v2014_02_25, domain),
			leaf("partition", v2015_10_20, partition),
		),
		spot,
		tags,
	)
	if md == nil {
		// Unreachable (ami-launch-index and instance-action always render),
		// but an empty meta-data/ must still be a directory.
		md = &entry{name: "meta-data", since: v1_0, dir: true}
	}
	return md
}

// interfacesDir renders network/interfaces/macs/, one directory per ENI in
// device order.
func interfacesDir(in *imds.Instance) *entry {
	nis := slices.Clone(in.NetworkInterfaces)
	slices.SortStableFunc(nis, func(a, b imds.NetworkInterface) int { return cmp.Compare(a.DeviceIndex, b.DeviceIndex) })
	var macs []*entry
	for i := range nis {
		macs = append(macs, interfaceDir(&nis[i]))
	}
	return dir("macs", macs...)
}

// interfaceDir renders network/interfaces/macs/<mac>/ (docs/behaviour.md, "The tree").
func interfaceDir(ni *imds.NetworkInterface) *entry {
	if ni.MAC == "" {
		return nil
	}
	var card string
	if ni.NetworkCard != nil {
		card = strconv.Itoa(*ni.NetworkCard)
	}
	var assoc *entry
	if ni.PublicIPv4 != "" && len(ni.PrivateIPv4s) > 0 {
		assoc = dir("ipv4-associations", leaf(ni.PublicIPv4, v2011_01_01, ni.PrivateIPv4s[0]))
	}
	var vpcCIDR string
	if len(ni.VPCIPv4CIDRs) > 0 {
		vpcCIDR = ni.VPCIPv4CIDRs[0]
	}
	ids := make([]string, 0, len(ni.SecurityGroups))
	for _, g := range ni.SecurityGroups {
		ids = append(ids, g.ID)
	}
	return sortedDir(ni.MAC,
		leaf("device-number", v2011_01_01, strconv.Itoa(ni.DeviceIndex)),
		leaf("interface-id", v2011_01_01, ni.InterfaceID),
		assoc,
		multiLeaf("ipv6s", v2016_06_30, ni.IPv6s),
		leaf("local-hostname", v2011_01_01, ni.LocalHostname),
		multiLeaf("local-ipv4s", v2011_01_01, ni.PrivateIPv4s),
		leaf("mac", v2011_01_01, ni.MAC),
		leaf("network-card", v2020_11_01, card),
		leaf("owner-id", v2011_01_01, ni.OwnerID),
		leaf("public-hostname", v2011_01_01, ni.PublicHostname),
		leaf("public-ipv4s", v2011_01_01, ni.PublicIPv4),
		leaf("security-groups", v2011_01_01, strings.Join(groupNames(ni.SecurityGroups), "\n")),
		leaf("security-group-ids", v2011_01_01, strings.Join(ids, "\n")),
		leaf("subnet-id", v2011_01_01, ni.SubnetID),
		leaf("subnet-ipv4-cidr-block", v2011_01_01, ni.SubnetIPv4CIDR),
		leaf("subnet-ipv6-cidr-blocks", v2016_06_30, strings.Join(ni.SubnetIPv6CIDRs, "\n")),
		leaf("vpc-id", v2011_01_01, ni.VPCID),
		leaf("vpc-ipv4-cidr-block", v2011_01_01, vpcCIDR),
		leaf("vpc-ipv4-cidr-blocks", v2016_06_30, strings.Join(ni.VPCIPv4CIDRs, "\n")),
		leaf("vpc-ipv6-cidr-blocks", v2016_06_30, strings.Join(ni.VPCIPv6CIDRs, "\n")),
		// Delegated prefixes: 404, not an empty body, when none (NETUTILS).
		leaf("ipv4-prefix", v2021_07_15, strings.Join(ni.IPv4Prefixes, "\n")),
		leaf("ipv6-prefix", v2021_07_15, strings.Join(ni.IPv6Prefixes, "\n")),
	)
}

func groupNames(gs []imds.SecurityGroup) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

// regionOf is the placement's region, or the AZ without its letter when the
// record has no region (the way BOTO derives it).
func regionOf(p imds.Placement) string {
	if p.Region == "" && len(p.AvailabilityZone) > 1 {
		return p.AvailabilityZone[:len(p.AvailabilityZone)-1]
	}
	return p.Region
}

// opensshLine is public-keys/N/openssh-key: the key line ending in a
// newline, as EC2 serves it. (Metadata recorded from real instances in
// cloud-init's unit tests shows the key decoded as a one-line list, which
// cloud-init's leaf decoder produces only for a value containing "\n".)
func opensshLine(key string) string {
	if key == "" || strings.HasSuffix(key, "\n") {
		return key
	}
	return key + "\n"
}

// dedicatedHostID is placement/host-id: served only for an EC2 Dedicated
// Host id (h- and 17 hex digits). Frontdesk's own node names, which fleet
// mode keeps in the same Placement.HostId field, stay operator-visible
// (DescribeInstances) and never reach the guest.
func dedicatedHostID(id string) string {
	if len(id) != 19 || !strings.HasPrefix(id, "h-") {
		return ""
	}
	for _, c := range id[2:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return id
}

// servicesFor derives services/domain and services/partition from the region.
func servicesFor(name string) (domain, partition string) {
	return region.Domain(name), region.Partition(name)
}

func defaultString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// leaf is a text leaf, or nil (absent) when its value is empty: EC2 answers
// 404 for a category that does not apply rather than an empty body.
func leaf(name, since, body string) *entry {
	if body == "" || name == "" {
		return nil
	}
	return &entry{name: name, since: since, node: Node{Kind: Static, Body: []byte(body)}}
}

// multiLeaf is a leaf listing addresses one per line, which builds before
// multiValueSince show as the first address only.
func multiLeaf(name, since string, values []string) *entry {
	e := leaf(name, since, strings.Join(values, "\n"))
	if e != nil && len(values) > 1 {
		e.legacy = []byte(values[0])
	}
	return e
}

// dynLeaf is a leaf the data plane renders per request.
func dynLeaf(name, since string, kind Kind, role string) *entry {
	if name == "" {
		return nil
	}
	return &entry{name: name, since: since, node: Node{Kind: kind, Role: role}}
}

// dir is a directory listing its children in the given order, or nil when
// no child applies. It first appears with its oldest child, so a version
// never lists an empty directory.
func dir(name string, children ...*entry) *entry {
	kept := make([]*entry, 0, len(children))
	seen := make(map[string]bool, len(children))
	for _, c := range children {
		if c == nil || seen[c.name] {
			continue // absent, or a duplicate name (first one wins)
		}
		seen[c.name] = true
		kept = append(kept, c)
	}
	if len(kept) == 0 {
		return nil
	}
	e := &entry{name: name, label: name + "/", dir: true, children: kept, since: kept[0].since}
	for _, c := range kept {
		if c.label == "" {
			c.label = c.name
		}
		e.since = min(e.since, c.since)
		e.listing = appendListingLine(e.listing, c)
	}
	return e
}

// sortedDir is a directory listed alphabetically, as meta-data/ is in the UG.
func sortedDir(name string, children ...*entry) *entry {
	children = slices.DeleteFunc(slices.Clone(children), func(e *entry) bool { return e == nil })
	slices.SortStableFunc(children, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	return dir(name, children...)
}

// eventsJSON renders events/maintenance/{scheduled,history}: a JSON array in
// the UG's layout, "[]" when there are none (docs/behaviour.md, "The tree").
func eventsJSON(events []imds.MaintenanceEvent) string {
	if len(events) == 0 {
		return "[]"
	}
	b := []byte("[\n")
	for i, ev := range events {
		if i > 0 {
			b = append(b, ",\n"...)
		}
		o := newObject("    ")
		o.buf = []byte("  {\n")
		o.str("NotBefore", ev.NotBefore.UTC().Format(eventTimeLayout))
		o.str("Code", ev.Code)
		o.str("Description", ev.Description)
		o.str("EventId", ev.EventID)
		if !ev.NotAfter.IsZero() {
			o.str("NotAfter", ev.NotAfter.UTC().Format(eventTimeLayout))
		}
		o.str("State", ev.State)
		b = append(b, o.bytes()...)
	}
	return string(append(b, "\n]"...))
}

// identityDocument renders dynamic/instance-identity/document in the byte
// layout of real instances (docs/behaviour.md, "Identity document"): that field order, null for absent values.
func identityDocument(in *imds.Instance) []byte {
	var privateIP string
	if eth0 := in.Primary(); eth0 != nil && len(eth0.PrivateIPv4s) > 0 {
		privateIP = eth0.PrivateIPv4s[0]
	}
	region := regionOf(in.Placement)
	o := newObject("  ")
	o.str("accountId", in.AccountID)
	o.str("architecture", in.Architecture)
	o.str("availabilityZone", in.Placement.AvailabilityZone)
	o.list("billingProducts", in.BillingProducts)
	o.raw("devpayProductCodes", "null")
	o.list("marketplaceProductCodes", in.ProductCodes)
	o.str("imageId", in.ImageID)
	o.str("instanceId", in.InstanceID)
	o.str("instanceType", in.InstanceType)
	o.strOrNull("kernelId", in.KernelID)
	o.str("pendingTime", formatTime(in.LaunchTime))
	o.strOrNull("privateIp", privateIP)
	o.strOrNull("ramdiskId", in.RamdiskID)
	o.str("region", region)
	o.str("version", identityDocVer)
	return o.bytes()
}
