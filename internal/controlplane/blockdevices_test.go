package controlplane

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestBlockDeviceMappingsAreServedAsEC2NamesThem(t *testing.T) {
	e := newEnv(t, nil)
	inst := e.launch("192.0.2.60", func(in *ec2.RunInstancesInput) {
		in.BlockDeviceMappings = []types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(30)}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(100), VolumeType: types.VolumeTypeGp3}},
			{DeviceName: aws.String("/dev/sdb"), VirtualName: aws.String("ephemeral0")},
			{DeviceName: aws.String("sdc"), VirtualName: aws.String("ephemeral1")},
			{DeviceName: aws.String("/dev/sdd"), NoDevice: aws.String("")},
			{DeviceName: aws.String("/dev/sdg"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String("snap-0123456789abcdef0")}},
		}
	})
	got := e.stored(aws.ToString(inst.InstanceId)).BlockDevices
	want := []imds.BlockDevice{
		{Name: "ami", Device: "/dev/xvda"}, {Name: "root", Device: "/dev/xvda"},
		{Name: "ebs1", Device: "sdf"}, {Name: "ephemeral0", Device: "sdb"}, {Name: "ephemeral1", Device: "sdc"}, {Name: "ebs2", Device: "sdg"},
	}
	if len(got) != len(want) {
		t.Fatalf("block devices %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestBadBlockDeviceMappingsAreRefused(t *testing.T) {
	e := newEnv(t, nil)
	for name, tc := range map[string]struct {
		bdm  []types.BlockDeviceMapping
		code string
	}{
		"device_twice": {[]types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/sdb"), VirtualName: aws.String("ephemeral0")},
			{DeviceName: aws.String("sdb"), VirtualName: aws.String("ephemeral1")}}, "InvalidBlockDeviceMapping"},
		"virtual_name_not_ephemeral": {[]types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdb"), VirtualName: aws.String("swap0")}}, "InvalidParameterValue"},
		"ebs_and_virtual_name": {[]types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/sdb"), VirtualName: aws.String("ephemeral0"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(1)}}}, "InvalidParameterCombination"},
		"nothing_mapped":  {[]types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdb")}}, "MissingParameter"},
		"root_suppressed": {[]types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), NoDevice: aws.String("")}}, "InvalidBlockDeviceMapping"},
		"volume_too_big":  {[]types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(70000)}}}, "InvalidParameterValue"},
		"bad_device_name": {[]types.BlockDeviceMapping{{DeviceName: aws.String("/dev/../etc"), VirtualName: aws.String("ephemeral0")}}, "InvalidParameterValue"},
	} {
		t.Run(name, func(t *testing.T) {
			before := e.revision()
			_, err := e.client.RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"),
				MinCount: aws.Int32(1), MaxCount: aws.Int32(1), PrivateIpAddress: aws.String("192.0.2.61"), BlockDeviceMappings: tc.bdm})
			if got := code(t, err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
			if e.revision() != before {
				t.Error("a refused launch wrote to the store")
			}
		})
	}
}
