package dataplane

import (
	"unique"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// intern replaces the instance's strings with canonical copies. A fleet
// repeats most of them (account, image, type, region, zone, subnet, VPC,
// security groups, profile, keys), and with 100,000 instances one copy
// each instead of 100,000 saves a good part of the snapshot's memory.
func intern(in *imds.Instance) {
	s := func(p *string) {
		if *p != "" {
			*p = unique.Make(*p).Value()
		}
	}
	all := func(v []string) {
		for i := range v {
			s(&v[i])
		}
	}
	s(&in.AccountID)
	s(&in.State)
	s(&in.ImageID)
	s(&in.AMIManifestPath)
	all(in.AncestorAMIIDs)
	s(&in.KernelID)
	s(&in.RamdiskID)
	all(in.ProductCodes)
	all(in.BillingProducts)
	s(&in.InstanceType)
	s(&in.Architecture)
	s(&in.InstanceLifecycle)
	s(&in.InstanceAction)
	s(&in.Monitoring)
	s(&in.Profile)
	p := &in.Placement
	s(&p.Region)
	s(&p.AvailabilityZone)
	s(&p.AvailabilityZoneID)
	s(&p.GroupName)
	s(&p.HostID)
	s(&p.Tenancy)
	for i := range in.NetworkInterfaces {
		ni := &in.NetworkInterfaces[i]
		s(&ni.OwnerID)
		s(&ni.SubnetID)
		s(&ni.SubnetIPv4CIDR)
		all(ni.SubnetIPv6CIDRs)
		s(&ni.VPCID)
		all(ni.VPCIPv4CIDRs)
		all(ni.VPCIPv6CIDRs)
		for j := range ni.SecurityGroups {
			s(&ni.SecurityGroups[j].ID)
			s(&ni.SecurityGroups[j].Name)
		}
	}
	for i := range in.BlockDevices {
		s(&in.BlockDevices[i].Name)
		s(&in.BlockDevices[i].Device)
	}
	for i := range in.PublicKeys {
		s(&in.PublicKeys[i].Name)
		s(&in.PublicKeys[i].OpenSSH)
	}
	for i := range in.Tags {
		s(&in.Tags[i].Key)
	}
	if ip := in.IAMInstanceProfile; ip != nil {
		s(&ip.Arn)
		s(&ip.ID)
		s(&ip.Role)
	}
	o := &in.MetadataOptions
	s(&o.HttpTokens)
	s(&o.HttpEndpoint)
	s(&o.HttpProtocolIPv6)
	s(&o.InstanceMetadataTags)
}
