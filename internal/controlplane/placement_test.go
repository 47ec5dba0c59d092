package controlplane

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestModifyInstancePlacementMovesARunningInstance(t *testing.T) {
	h := &hookRecorder{}
	e := newEnv(t, h.install)
	ctx := context.Background()
	id := *e.launch("192.0.2.1", func(in *ec2.RunInstancesInput) {
		in.Placement = &types.Placement{HostId: aws.String("node-a")}
	}).InstanceId
	if got := e.describeOne(id).Placement; got == nil || aws.ToString(got.HostId) != "node-a" {
		t.Fatalf("launched on %+v", got)
	}
	before := e.stored(id)
	h.take()
	out, err := e.client.ModifyInstancePlacement(ctx, &ec2.ModifyInstancePlacementInput{InstanceId: aws.String(id), HostId: aws.String("node-b")})
	if err != nil || !aws.ToBool(out.Return) {
		t.Fatalf("ModifyInstancePlacement: %v %+v", err, out)
	}
	after := e.stored(id)
	if after.Placement.HostID != "node-b" || after.State != imds.StateRunning || after.Generation != before.Generation {
		t.Fatalf("after the move: host %q state %s generation %d→%d", after.Placement.HostID, after.State, before.Generation, after.Generation)
	}
	if got := aws.ToString(e.describeOne(id).Placement.HostId); got != "node-b" {
		t.Errorf("DescribeInstances host %q", got)
	}
	if _, changes := h.take(); len(changes) != 1 || changes[0].detail["HostId"] != "node-b" || changes[0].detail["PreviousHostId"] != "node-a" {
		t.Errorf("change %+v", changes)
	}

	errs := []struct {
		name string
		in   *ec2.ModifyInstancePlacementInput
		want string
	}{
		{"nothing to change is MissingParameter", &ec2.ModifyInstancePlacementInput{InstanceId: aws.String(id)}, "MissingParameter"},
		{"a host id with a space is refused", &ec2.ModifyInstancePlacementInput{InstanceId: aws.String(id), HostId: aws.String("node c")}, "InvalidParameterValue"},
		{"tenancy is unsupported", &ec2.ModifyInstancePlacementInput{InstanceId: aws.String(id), Tenancy: types.HostTenancyDedicated}, "UnsupportedOperation"},
		{"an unknown instance is NotFound", &ec2.ModifyInstancePlacementInput{InstanceId: aws.String("i-0000000000000000f"), HostId: aws.String("node-c")}, "InvalidInstanceID.NotFound"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.ModifyInstancePlacement(ctx, tc.in)
			if c := code(t, err); c != tc.want {
				t.Errorf("code %q, want %q", c, tc.want)
			}
			if got := e.stored(id).Placement.HostID; got != "node-b" {
				t.Errorf("host changed to %q", got)
			}
		})
	}
	if _, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.ModifyInstancePlacement(ctx, &ec2.ModifyInstancePlacementInput{InstanceId: aws.String(id), HostId: aws.String("node-c")})
	if c := code(t, err); c != "IncorrectInstanceState" {
		t.Errorf("terminated instance: %q", c)
	}
}
