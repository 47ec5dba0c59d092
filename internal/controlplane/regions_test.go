package controlplane

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// newRegionEnv is a control plane for eu-west-1 of account 210987654321
// whose zones are a and c, with a client signing for that region.
func newRegionEnv(t *testing.T) *env {
	e := newEnv(t, func(o *Options) {
		o.Region, o.AccountID, o.Zones = "eu-west-1", "210987654321", []string{"eu-west-1a", "eu-west-1c"}
	})
	e.client = ec2.New(e.client.Options(), func(o *ec2.Options) { o.Region = "eu-west-1" })
	return e
}

func TestRegionAccountAndZonesFollowTheOptions(t *testing.T) {
	e := newRegionEnv(t)
	ctx := context.Background()
	inst := e.launch("192.0.2.40", func(in *ec2.RunInstancesInput) {
		in.Placement = &types.Placement{AvailabilityZone: aws.String("eu-west-1c")}
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("web")}
	})
	got := e.stored(aws.ToString(inst.InstanceId))
	if got.AccountID != "210987654321" || got.Placement.Region != "eu-west-1" || got.Placement.AvailabilityZone != "eu-west-1c" ||
		got.Placement.AvailabilityZoneID != "euw1-az3" || got.NetworkInterfaces[0].OwnerID != "210987654321" {
		t.Errorf("instance %+v placement %+v", got.AccountID, got.Placement)
	}
	if got.IAMInstanceProfile.Arn != "arn:aws:iam::210987654321:instance-profile/web" {
		t.Errorf("profile arn %s", got.IAMInstanceProfile.Arn)
	}
	if got.NetworkInterfaces[0].LocalHostname != "ip-192-0-2-40.eu-west-1.compute.internal" {
		t.Errorf("hostname %s", got.NetworkInterfaces[0].LocalHostname)
	}
	def := e.stored(aws.ToString(e.launch("192.0.2.41", nil).InstanceId))
	if def.Placement.AvailabilityZone != "eu-west-1a" {
		t.Errorf("default zone %s, want the first configured", def.Placement.AvailabilityZone)
	}
	_, err := e.client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		PrivateIpAddress: aws.String("192.0.2.42"), Placement: &types.Placement{AvailabilityZone: aws.String("eu-west-1b")}})
	if code(t, err) != "InvalidParameterValue" || message(t, err) != "Invalid availability zone: [eu-west-1b]" {
		t.Errorf("unconfigured zone: %v", err)
	}

	zones, err := e.client.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(zones.AvailabilityZones) != 2 || aws.ToString(zones.AvailabilityZones[1].ZoneName) != "eu-west-1c" ||
		aws.ToString(zones.AvailabilityZones[1].ZoneId) != "euw1-az3" || zones.AvailabilityZones[1].State != types.AvailabilityZoneStateAvailable ||
		aws.ToString(zones.AvailabilityZones[1].RegionName) != "eu-west-1" {
		t.Errorf("zones %+v", zones.AvailabilityZones)
	}
	one, err := e.client.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{Filters: []types.Filter{{Name: aws.String("zone-id"), Values: []string{"*az1"}}}})
	if err != nil || len(one.AvailabilityZones) != 1 || aws.ToString(one.AvailabilityZones[0].ZoneName) != "eu-west-1a" {
		t.Errorf("filtered zones %v %+v", err, one)
	}
	if _, err := e.client.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"eu-west-1b"}}); code(t, err) != "InvalidParameterValue" {
		t.Errorf("unknown zone name: %v", err)
	}
	regions, err := e.client.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil || len(regions.Regions) != 1 || aws.ToString(regions.Regions[0].RegionName) != "eu-west-1" ||
		aws.ToString(regions.Regions[0].Endpoint) != "ec2.eu-west-1.amazonaws.com" {
		t.Errorf("regions %v %+v", err, regions)
	}
	if _, err := e.client.DescribeRegions(ctx, &ec2.DescribeRegionsInput{RegionNames: []string{"us-east-1"}}); code(t, err) != "InvalidParameterValue" {
		t.Errorf("other region: %v", err)
	}
}

func TestSignatureScopedToAnotherRegionIsRefused(t *testing.T) {
	e := newRegionEnv(t)
	other := ec2.New(e.client.Options(), func(o *ec2.Options) {
		o.Region = "us-east-1"
		o.Credentials = credentials.NewStaticCredentialsProvider(testCreds.AccessKeyID, testCreds.SecretAccessKey, "")
	})
	if _, err := other.DescribeRegions(context.Background(), &ec2.DescribeRegionsInput{}); code(t, err) != "AuthFailure" {
		t.Fatalf("us-east-1 signature against eu-west-1: %v", err)
	}
}

func TestPartitionFollowsTheRegion(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Region, o.AccountID = "cn-north-1", "210987654321" })
	e.client = ec2.New(e.client.Options(), func(o *ec2.Options) { o.Region = "cn-north-1" })
	inst := e.launch("192.0.2.50", func(in *ec2.RunInstancesInput) {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("web")}
	})
	got := e.stored(aws.ToString(inst.InstanceId))
	if got.IAMInstanceProfile.Arn != "arn:aws-cn:iam::210987654321:instance-profile/web" || got.Placement.AvailabilityZoneID != "cnn1-az1" {
		t.Errorf("cn-north-1: arn %s zone id %s", got.IAMInstanceProfile.Arn, got.Placement.AvailabilityZoneID)
	}
}
