package controlplane

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestIamInstanceProfileAssociations(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a := *e.launch("192.0.2.1", nil).InstanceId
	b := *e.launch("192.0.2.2", func(in *ec2.RunInstancesInput) {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("launch-role")}
	}).InstanceId

	out, err := e.client.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId:         aws.String(a),
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::123456789012:instance-profile/team/app")},
	})
	if err != nil {
		t.Fatal(err)
	}
	as := out.IamInstanceProfileAssociation
	if *as.InstanceId != a || as.State != types.IamInstanceProfileAssociationStateAssociating || *as.IamInstanceProfile.Arn != "arn:aws:iam::123456789012:instance-profile/team/app" {
		t.Fatalf("association %+v", as)
	}
	if p := e.stored(a).IAMInstanceProfile; p == nil || p.Role != "app" || p.AssociationID != *as.AssociationId {
		t.Fatalf("stored profile %+v", p)
	}

	_, err = e.client.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId: aws.String(a), IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("x")},
	})
	if got := code(t, err); got != "IncorrectState" {
		t.Errorf("second association: %q", got)
	}

	desc, err := e.client.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.IamInstanceProfileAssociations) != 2 {
		t.Fatalf("described %d associations, want 2", len(desc.IamInstanceProfileAssociations))
	}
	byInstance, err := e.client.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{b}}},
	})
	if err != nil || len(byInstance.IamInstanceProfileAssociations) != 1 || *byInstance.IamInstanceProfileAssociations[0].InstanceId != b ||
		byInstance.IamInstanceProfileAssociations[0].State != types.IamInstanceProfileAssociationStateAssociated {
		t.Fatalf("filter by instance: %v %+v", err, byInstance)
	}

	if _, err := e.client.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: as.AssociationId}); err != nil {
		t.Fatal(err)
	}
	if e.stored(a).IAMInstanceProfile != nil {
		t.Fatal("profile still attached after disassociation")
	}
	_, err = e.client.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: as.AssociationId})
	if got := code(t, err); got != "InvalidAssociationID.NotFound" {
		t.Errorf("second disassociation: %q", got)
	}
	_, err = e.client.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{AssociationIds: []string{*as.AssociationId}})
	if got := code(t, err); got != "InvalidAssociationID.NotFound" {
		t.Errorf("describe gone association: %q", got)
	}
}

func TestModifyInstanceAttributeUserData(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := *e.launch("192.0.2.1", nil).InstanceId
	if _, err := e.client.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(id), UserData: &types.SecureBlobAttributeValue{Value: []byte("#cloud-config\n")},
	}); err != nil {
		t.Fatal(err)
	}
	if got := string(e.stored(id).UserData); got != "#cloud-config\n" {
		t.Fatalf("user data %q", got)
	}
	// The Attribute/Value form carries base64 too.
	if _, err := e.client.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameUserData, Value: aws.String(base64.StdEncoding.EncodeToString([]byte("v2"))),
	}); err != nil {
		t.Fatal(err)
	}
	if got := string(e.stored(id).UserData); got != "v2" {
		t.Fatalf("user data %q", got)
	}
	tests := []struct {
		name string
		in   *ec2.ModifyInstanceAttributeInput
		want string
	}{
		{"other_attribute_is_unsupported", &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), InstanceType: &types.AttributeValue{Value: aws.String("m5.large")}}, "UnsupportedOperation"},
		{"too_large", &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), UserData: &types.SecureBlobAttributeValue{Value: make([]byte, 16*1024+1)}}, "InvalidParameterValue"},
		{"unknown_instance", &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String("i-0123456789abcdef0"), UserData: &types.SecureBlobAttributeValue{Value: []byte("x")}}, "InvalidInstanceID.NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.ModifyInstanceAttribute(ctx, tt.in)
			if got := code(t, err); got != tt.want {
				t.Fatalf("got %q (%v), want %q", got, err, tt.want)
			}
			if string(e.stored(id).UserData) != "v2" {
				t.Fatal("refused modification changed user data")
			}
		})
	}
}

func TestTerminateInstances(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a := *e.launch("192.0.2.1", nil).InstanceId
	_, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{a, "i-0123456789abcdef0"}})
	if got := code(t, err); got != "InvalidInstanceID.NotFound" {
		t.Fatalf("got %q", got)
	}
	if e.stored(a).State != "running" {
		t.Fatal("a failed TerminateInstances terminated an instance")
	}
	out, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{a}})
	if err != nil {
		t.Fatal(err)
	}
	ch := out.TerminatingInstances[0]
	if *ch.InstanceId != a || ch.PreviousState.Name != types.InstanceStateNameRunning || ch.CurrentState.Name != types.InstanceStateNameTerminated || *ch.CurrentState.Code != 48 {
		t.Fatalf("state change %+v", ch)
	}
	// The address is free again for a new instance.
	b := e.launch("192.0.2.1", nil)
	if *b.InstanceId == a {
		t.Fatal("instance id reused")
	}
}
