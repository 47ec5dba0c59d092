package controlplane

import (
	"net/netip"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// ec2Namespace is the XML namespace of every EC2 Query answer.
const ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// ec2TimeFormat is how EC2 writes timestamps (millisecond precision, UTC).
const ec2TimeFormat = "2006-01-02T15:04:05.000Z"

// response is an action's answer. Every answer starts with its requestId;
// embedding respMeta provides both the element and the setter.
type response interface{ setRequestID(string) }

type respMeta struct {
	RequestID string `xml:"requestId"`
}

func (m *respMeta) setRequestID(id string) { m.RequestID = id }

// returnResponse is the answer of actions that only acknowledge.
type returnResponse struct {
	respMeta
	Return bool `xml:"return"`
}

// errorResponse is EC2's error document.
type errorResponse struct {
	XMLName   struct{} `xml:"Response"`
	Errors    []xmlErr `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

type xmlErr struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type xmlInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

// stateCodes are EC2's numeric instance-state codes.
var stateCodes = map[string]int{
	imds.StatePending: 0, imds.StateRunning: 16, "shutting-down": 32,
	imds.StateTerminated: 48, "stopping": 64, imds.StateStopped: 80,
}

func instanceState(s string) xmlInstanceState { return xmlInstanceState{Code: stateCodes[s], Name: s} }

type xmlGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlPlacement struct {
	AvailabilityZone   string `xml:"availabilityZone"`
	AvailabilityZoneID string `xml:"availabilityZoneId,omitempty"`
	GroupName          string `xml:"groupName"`
	PartitionNumber    int    `xml:"partitionNumber,omitempty"`
	HostID             string `xml:"hostId,omitempty"`
	Tenancy            string `xml:"tenancy"`
}

type xmlMetadataOptions struct {
	State                   string `xml:"state"`
	HttpTokens              string `xml:"httpTokens"`
	HttpPutResponseHopLimit int    `xml:"httpPutResponseHopLimit"`
	HttpEndpoint            string `xml:"httpEndpoint"`
	HttpProtocolIpv6        string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags"`
}

type xmlProfile struct {
	Arn string `xml:"arn"`
	ID  string `xml:"id"`
}

type xmlMonitoring struct {
	State string `xml:"state"`
}

type xmlAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	NetworkCardIndex    *int   `xml:"networkCardIndex,omitempty"`
}

type xmlPrivateIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
	PrivateDNSName   string `xml:"privateDnsName,omitempty"`
	Primary          bool   `xml:"primary"`
}

type xmlIPv6 struct {
	Ipv6Address   string `xml:"ipv6Address"`
	IsPrimaryIpv6 bool   `xml:"isPrimaryIpv6"`
}

type xmlENI struct {
	NetworkInterfaceID string         `xml:"networkInterfaceId"`
	SubnetID           string         `xml:"subnetId"`
	VpcID              string         `xml:"vpcId"`
	Description        string         `xml:"description"`
	OwnerID            string         `xml:"ownerId"`
	Status             string         `xml:"status"`
	MacAddress         string         `xml:"macAddress"`
	PrivateIPAddress   string         `xml:"privateIpAddress,omitempty"`
	PrivateDNSName     string         `xml:"privateDnsName,omitempty"`
	SourceDestCheck    bool           `xml:"sourceDestCheck"`
	Groups             []xmlGroup     `xml:"groupSet>item,omitempty"`
	Attachment         xmlAttachment  `xml:"attachment"`
	PrivateIPs         []xmlPrivateIP `xml:"privateIpAddressesSet>item,omitempty"`
	IPv6s              []xmlIPv6      `xml:"ipv6AddressesSet>item,omitempty"`
	InterfaceType      string         `xml:"interfaceType"`
	// Association is the interface's public address (addresses.go).
	Association *xmlENIAssociation `xml:"association,omitempty"`
}

type xmlInstance struct {
	InstanceID         string             `xml:"instanceId"`
	ImageID            string             `xml:"imageId"`
	State              xmlInstanceState   `xml:"instanceState"`
	PrivateDNSName     string             `xml:"privateDnsName"`
	DNSName            string             `xml:"dnsName"`
	KeyName            string             `xml:"keyName,omitempty"`
	AmiLaunchIndex     int                `xml:"amiLaunchIndex"`
	InstanceType       string             `xml:"instanceType"`
	LaunchTime         string             `xml:"launchTime"`
	Placement          xmlPlacement       `xml:"placement"`
	KernelID           string             `xml:"kernelId,omitempty"`
	RamdiskID          string             `xml:"ramdiskId,omitempty"`
	Monitoring         xmlMonitoring      `xml:"monitoring"`
	SubnetID           string             `xml:"subnetId,omitempty"`
	VpcID              string             `xml:"vpcId,omitempty"`
	PrivateIPAddress   string             `xml:"privateIpAddress,omitempty"`
	IPAddress          string             `xml:"ipAddress,omitempty"`
	Groups             []xmlGroup         `xml:"groupSet>item,omitempty"`
	Architecture       string             `xml:"architecture"`
	RootDeviceType     string             `xml:"rootDeviceType"`
	RootDeviceName     string             `xml:"rootDeviceName"`
	InstanceLifecycle  string             `xml:"instanceLifecycle,omitempty"`
	VirtualizationTyp  string             `xml:"virtualizationType"`
	Tags               []xmlTag           `xml:"tagSet>item,omitempty"`
	Hypervisor         string             `xml:"hypervisor"`
	NetworkInterfaces  []xmlENI           `xml:"networkInterfaceSet>item,omitempty"`
	IamInstanceProfile *xmlProfile        `xml:"iamInstanceProfile,omitempty"`
	Ipv6Address        string             `xml:"ipv6Address,omitempty"`
	MetadataOptions    xmlMetadataOptions `xml:"metadataOptions"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item,omitempty"`
	Instances     []xmlInstance `xml:"instancesSet>item,omitempty"`
}

// optionsXML renders metadata options with their derived state.
func optionsXML(o imds.MetadataOptions, state string) xmlMetadataOptions {
	return xmlMetadataOptions{
		State:                   state,
		HttpTokens:              o.HttpTokens,
		HttpPutResponseHopLimit: o.HttpPutResponseHopLimit,
		HttpEndpoint:            o.HttpEndpoint,
		HttpProtocolIpv6:        o.HttpProtocolIPv6,
		InstanceMetadataTags:    o.InstanceMetadataTags,
	}
}

// instanceXML renders an instance as DescribeInstances shows it.
func (s *Server) instanceXML(in *imds.Instance) xmlInstance {
	x := xmlInstance{
		InstanceID:        in.InstanceID,
		ImageID:           in.ImageID,
		State:             instanceState(in.State),
		AmiLaunchIndex:    in.AMILaunchIndex,
		InstanceType:      in.InstanceType,
		LaunchTime:        in.LaunchTime.UTC().Format(ec2TimeFormat),
		KernelID:          in.KernelID,
		RamdiskID:         in.RamdiskID,
		Monitoring:        xmlMonitoring{State: orDefault(in.Monitoring, "disabled")},
		Architecture:      in.Architecture,
		RootDeviceType:    "ebs",
		RootDeviceName:    rootDevice(in),
		VirtualizationTyp: "hvm",
		Hypervisor:        "xen",
		Placement: xmlPlacement{
			AvailabilityZone:   in.Placement.AvailabilityZone,
			AvailabilityZoneID: in.Placement.AvailabilityZoneID,
			GroupName:          in.Placement.GroupName,
			PartitionNumber:    in.Placement.PartitionNumber,
			HostID:             in.Placement.HostID,
			Tenancy:            orDefault(in.Placement.Tenancy, "default"),
		},
		MetadataOptions: optionsXML(in.MetadataOptions, s.optionsState(in)),
	}
	if in.InstanceLifecycle == "spot" {
		x.InstanceLifecycle = "spot"
	}
	if len(in.PublicKeys) > 0 {
		x.KeyName = in.PublicKeys[0].Name
	}
	for _, t := range in.Tags {
		x.Tags = append(x.Tags, xmlTag{Key: t.Key, Value: t.Value})
	}
	if p := in.IAMInstanceProfile; p != nil {
		x.IamInstanceProfile = &xmlProfile{Arn: p.Arn, ID: p.ID}
	}
	if pri := in.Primary(); pri != nil {
		x.SubnetID = pri.SubnetID
		x.VpcID = pri.VPCID
		x.IPAddress = pri.PublicIPv4
		if len(pri.PrivateIPv4s) > 0 {
			x.PrivateIPAddress = pri.PrivateIPv4s[0]
		}
		x.PrivateDNSName = pri.LocalHostname
		if pri.PublicHostname != "" {
			x.DNSName = pri.PublicHostname
		}
		if len(pri.IPv6s) > 0 {
			x.Ipv6Address = pri.IPv6s[0]
		}
		for _, g := range pri.SecurityGroups {
			x.Groups = append(x.Groups, xmlGroup{GroupID: g.ID, GroupName: g.Name})
		}
	}
	for _, ni := range in.NetworkInterfaces {
		e := xmlENI{
			NetworkInterfaceID: ni.InterfaceID,
			SubnetID:           ni.SubnetID,
			VpcID:              ni.VPCID,
			OwnerID:            ni.OwnerID,
			Status:             "in-use",
			MacAddress:         ni.MAC,
			PrivateDNSName:     ni.LocalHostname,
			SourceDestCheck:    true,
			InterfaceType:      "interface",
			Attachment: xmlAttachment{
				AttachmentID:        "eni-attach-" + stableID("", ni.InterfaceID)[:17],
				DeviceIndex:         ni.DeviceIndex,
				Status:              "attached",
				AttachTime:          x.LaunchTime,
				DeleteOnTermination: true,
				NetworkCardIndex:    ni.NetworkCard,
			},
		}
		if in.State == imds.StateTerminated {
			e.Status = "available"
			e.Attachment.Status = "detached"
		}
		for i, a := range ni.PrivateIPv4s {
			if i == 0 {
				e.PrivateIPAddress = a
			}
			pip := xmlPrivateIP{PrivateIPAddress: a, Primary: i == 0}
			if addr, err := netip.ParseAddr(a); err == nil {
				pip.PrivateDNSName = privateDNSName(s.opts.Region, addr)
			}
			e.PrivateIPs = append(e.PrivateIPs, pip)
		}
		for i, a := range ni.IPv6s {
			e.IPv6s = append(e.IPv6s, xmlIPv6{Ipv6Address: a, IsPrimaryIpv6: i == 0 && len(ni.PrivateIPv4s) == 0})
		}
		for _, g := range ni.SecurityGroups {
			e.Groups = append(e.Groups, xmlGroup{GroupID: g.ID, GroupName: g.Name})
		}
		e.Association = eniAssociation(ni)
		x.NetworkInterfaces = append(x.NetworkInterfaces, e)
	}
	if in.State == imds.StateTerminated {
		// EC2 clears the addresses of a terminated instance.
		x.PrivateIPAddress, x.IPAddress, x.Ipv6Address, x.PrivateDNSName = "", "", "", ""
		x.NetworkInterfaces = nil
	}
	return x
}

// optionsState is "applied" once the local data plane serves the instance's
// current metadata options. For an instance served here that is exact: the
// snapshot's copy of the instance carries the OptionsRevision of the change.
// Otherwise the snapshot's store revision is compared (see DataPlane).
func (s *Server) optionsState(in *imds.Instance) string {
	dp := s.opts.DataPlane
	if dp == nil {
		return imds.OptionsApplied
	}
	if rev, served := dp.AppliedOptions(in.InstanceID); served {
		if rev >= in.OptionsRevision {
			return imds.OptionsApplied
		}
		return imds.OptionsPending
	}
	if in.OptionsRevision <= dp.Applied() {
		return imds.OptionsApplied
	}
	return imds.OptionsPending
}

func rootDevice(in *imds.Instance) string {
	for _, b := range in.BlockDevices {
		if b.Name == "root" {
			return b.Device
		}
	}
	return "/dev/xvda"
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func ec2Time(t time.Time) string { return t.UTC().Format(ec2TimeFormat) }
