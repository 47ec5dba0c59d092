package controlplane

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestLaunchAPI(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	li := LaunchInput{
		InstanceID: "i-0abcdef0123456789",
		ImageID:    ImageIDFor("busybox:latest"),
		Interfaces: []LaunchInterface{{IPv4: []netip.Addr{netip.MustParseAddr("203.0.113.10")}, IPv6: []netip.Addr{netip.MustParseAddr("2001:db8::10")}}},
		Profile:    "app-role",
		Tags:       []imds.Tag{{Key: "Name", Value: "web"}, {Key: "image", Value: "busybox:latest"}},
		UserData:   []byte("#!/bin/sh\n"),
		Options:    imds.OptionsRequest{HttpPutResponseHopLimit: aws.Int(1)},
	}
	in, err := e.srv.Launch(ctx, li)
	if err != nil {
		t.Fatal(err)
	}
	got := e.stored(li.InstanceID)
	if got.State != imds.StateRunning || got.IAMInstanceProfile == nil || got.IAMInstanceProfile.Role != "app-role" ||
		got.MetadataOptions.HttpPutResponseHopLimit != 1 || got.MetadataOptions.HttpTokens != imds.Required ||
		string(got.UserData) != "#!/bin/sh\n" || got.Generation != in.Generation || got.ImageID != li.ImageID {
		t.Fatalf("stored instance %+v", got)
	}
	if a := got.Addresses(); len(a) != 2 || a[0] != "203.0.113.10" || a[1] != "2001:db8::10" {
		t.Fatalf("addresses %v", a)
	}
	// Visible through the EC2 API like any launch.
	out, err := e.client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{li.InstanceID}})
	if err != nil || len(out.Reservations) != 1 || aws.ToString(out.Reservations[0].Instances[0].PrivateIpAddress) != "203.0.113.10" {
		t.Fatalf("DescribeInstances: %v %+v", err, out)
	}

	// The same id again without Relaunch is refused; with it, a new generation.
	if _, err := e.srv.Launch(ctx, li); err == nil || !strings.Contains(err.Error(), "InvalidInstanceID.Duplicate") {
		t.Fatalf("duplicate launch: %v", err)
	}
	li.Relaunch = true
	again, err := e.srv.Launch(ctx, li)
	if err != nil {
		t.Fatal(err)
	}
	if again.Generation == in.Generation {
		t.Fatal("relaunch kept the launch generation")
	}

	// Another id on a held address is refused, and nothing is written.
	rev := e.revision()
	other := LaunchInput{InstanceID: "i-0bbbbbbbbbbbbbbbb", Interfaces: []LaunchInterface{{IPv4: []netip.Addr{netip.MustParseAddr("203.0.113.10")}}}}
	if _, err := e.srv.Launch(ctx, other); err == nil || !strings.Contains(err.Error(), "InvalidIPAddress.InUse") {
		t.Fatalf("launch on a held address: %v", err)
	}
	if e.revision() != rev {
		t.Fatal("a refused launch wrote to the store")
	}

	// Terminate releases the address at once; the new launch gets it.
	if err := e.srv.Terminate(ctx, li.InstanceID); err != nil {
		t.Fatal(err)
	}
	if e.stored(li.InstanceID).State != imds.StateTerminated {
		t.Fatal("not terminated")
	}
	if _, err := e.srv.Launch(ctx, other); err != nil {
		t.Fatalf("launch on a released address: %v", err)
	}
	live, err := e.srv.Instances(ctx, func(in *imds.Instance) bool { return in.Live() })
	if err != nil || len(live) != 1 || live[0].InstanceID != other.InstanceID {
		t.Fatalf("live instances %v %v", live, err)
	}
	if err := e.srv.Forget(ctx, other.InstanceID); err == nil {
		t.Fatal("Forget deleted a live instance")
	}
	if err := e.srv.Forget(ctx, li.InstanceID); err != nil {
		t.Fatal(err)
	}
	all, _ := e.srv.Instances(ctx, nil)
	if len(all) != 1 {
		t.Fatalf("after Forget: %d instances", len(all))
	}
}

func TestLaunchAPIRefusesBadInput(t *testing.T) {
	e := newEnv(t, nil)
	a := []LaunchInterface{{IPv4: []netip.Addr{netip.MustParseAddr("198.51.100.2")}}}
	for name, li := range map[string]LaunchInput{
		"bad id":        {InstanceID: "i-xyz", Interfaces: a},
		"no interfaces": {},
		"bad profile":   {Profile: "no spaces allowed", Interfaces: a},
		"dup tag":       {Tags: []imds.Tag{{Key: "a"}, {Key: "a"}}, Interfaces: a},
		"aws tag":       {Tags: []imds.Tag{{Key: "aws:x"}}, Interfaces: a},
		"user data":     {UserData: make([]byte, imds.MaxUserData+1), Interfaces: a},
		"hop limit":     {Options: imds.OptionsRequest{HttpPutResponseHopLimit: aws.Int(65)}, Interfaces: a},
		"v6 as v4":      {Interfaces: []LaunchInterface{{IPv4: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}}},
	} {
		rev := e.revision()
		if _, err := e.srv.Launch(context.Background(), li); err == nil {
			t.Errorf("%s: launched", name)
		}
		if e.revision() != rev {
			t.Errorf("%s: wrote to the store", name)
		}
	}
}
