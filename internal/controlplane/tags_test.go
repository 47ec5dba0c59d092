package controlplane

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func tags(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i < len(kv); i += 2 {
		out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func tagString(ts []imds.Tag) string {
	s := ""
	for _, t := range ts {
		s += t.Key + "=" + t.Value + ";"
	}
	return s
}

func TestCreateAndDeleteTags(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a := *e.launch("192.0.2.1", func(in *ec2.RunInstancesInput) { in.TagSpecifications = tagSpec("Name", "a") }).InstanceId
	b := *e.launch("192.0.2.2", nil).InstanceId

	if _, err := e.client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{a, b}, Tags: tags("Name", "renamed", "env", "prod")}); err != nil {
		t.Fatal(err)
	}
	if got := tagString(e.stored(a).Tags); got != "Name=renamed;env=prod;" {
		t.Errorf("a: %s (existing key overwritten in place, new key appended)", got)
	}
	if got := tagString(e.stored(b).Tags); got != "Name=renamed;env=prod;" {
		t.Errorf("b: %s", got)
	}

	t.Run("delete_by_key_and_wrong_value_keeps_tag", func(t *testing.T) {
		if _, err := e.client.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{a}, Tags: tags("env", "dev")}); err != nil {
			t.Fatal(err)
		}
		if got := tagString(e.stored(a).Tags); got != "Name=renamed;env=prod;" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("delete_by_key_only", func(t *testing.T) {
		if _, err := e.client.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{a}, Tags: []types.Tag{{Key: aws.String("env")}}}); err != nil {
			t.Fatal(err)
		}
		if got := tagString(e.stored(a).Tags); got != "Name=renamed;" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("delete_without_tags_removes_all", func(t *testing.T) {
		if _, err := e.client.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{b}}); err != nil {
			t.Fatal(err)
		}
		if got := tagString(e.stored(b).Tags); got != "" {
			t.Errorf("got %s", got)
		}
	})
}

func TestCreateTagsIsAllOrNothing(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a := *e.launch("192.0.2.1", nil).InstanceId
	strict := *e.launch("192.0.2.2", func(in *ec2.RunInstancesInput) {
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{InstanceMetadataTags: types.InstanceMetadataTagsStateEnabled}
	}).InstanceId
	tests := []struct {
		name      string
		resources []string
		tags      []types.Tag
		want      string
	}{
		{"one_unknown_instance", []string{a, "i-0123456789abcdef0"}, tags("k", "v"), "InvalidInstanceID.NotFound"},
		{"one_malformed_instance", []string{a, "i-zz"}, tags("k", "v"), "InvalidInstanceID.Malformed"},
		{"key_not_servable_on_instance_with_metadata_tags", []string{a, strict}, tags("bad key", "v"), "InvalidParameterValue"},
		{"reserved_prefix", []string{a}, tags("aws:cloudformation", "v"), "InvalidParameterValue"},
		{"non_instance_resource", []string{a, "vol-0123456789abcdef0"}, tags("k", "v"), "InvalidID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.revision()
			_, err := e.client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: tt.resources, Tags: tt.tags})
			if got := code(t, err); got != tt.want {
				t.Fatalf("got %q (%v), want %q", got, err, tt.want)
			}
			if e.revision() != before || len(e.stored(a).Tags) != 0 {
				t.Errorf("a failed CreateTags changed the store")
			}
		})
	}
	t.Run("servable_key_on_instance_with_metadata_tags", func(t *testing.T) {
		if _, err := e.client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{strict}, Tags: tags("good:key", "v")}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("tag_limit", func(t *testing.T) {
		var many []types.Tag
		for i := 0; i < 51; i++ {
			many = append(many, types.Tag{Key: aws.String("k" + itoa(i)), Value: aws.String("v")})
		}
		_, err := e.client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{a}, Tags: many})
		if got := code(t, err); got != "TagLimitExceeded" {
			t.Fatalf("got %q", got)
		}
	})
}
