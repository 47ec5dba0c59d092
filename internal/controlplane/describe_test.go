package controlplane

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func ids(out *ec2.DescribeInstancesOutput) []string {
	var r []string
	for _, res := range out.Reservations {
		for _, in := range res.Instances {
			r = append(r, *in.InstanceId)
		}
	}
	sort.Strings(r)
	return r
}

func sorted(s ...string) []string {
	sort.Strings(s)
	return s
}

func tagSpec(kv ...string) []types.TagSpecification {
	var tags []types.Tag
	for i := 0; i < len(kv); i += 2 {
		tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}}
}

func TestDescribeInstancesFilters(t *testing.T) {
	e := newEnv(t, nil)
	a := *e.launch("192.0.2.1", func(in *ec2.RunInstancesInput) { in.TagSpecifications = tagSpec("Name", "web-1", "team", "blue") }).InstanceId
	b := *e.launch("192.0.2.2", func(in *ec2.RunInstancesInput) {
		in.TagSpecifications = tagSpec("Name", "db-1")
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateOptional, HttpEndpoint: types.InstanceMetadataEndpointStateDisabled}
	}).InstanceId
	c := *e.launch("192.0.2.3", nil).InstanceId
	if _, err := e.client.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{c}}); err != nil {
		t.Fatal(err)
	}
	f := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	tests := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"no_filter_lists_all_including_terminated", nil, sorted(a, b, c)},
		{"instance_id", []types.Filter{f("instance-id", b)}, []string{b}},
		{"state_running", []types.Filter{f("instance-state-name", "running")}, sorted(a, b)},
		{"state_terminated", []types.Filter{f("instance-state-name", "terminated")}, []string{c}},
		{"private_ip", []types.Filter{f("private-ip-address", "192.0.2.2")}, []string{b}},
		{"terminated_instance_has_no_address", []types.Filter{f("private-ip-address", "192.0.2.3")}, nil},
		{"tag_key_value", []types.Filter{f("tag:Name", "web-1")}, []string{a}},
		{"tag_wildcard", []types.Filter{f("tag:Name", "*-1")}, sorted(a, b)},
		{"tag_key", []types.Filter{f("tag-key", "team")}, []string{a}},
		{"http_tokens_optional", []types.Filter{f("metadata-options.http-tokens", "optional")}, []string{b}},
		{"http_tokens_required", []types.Filter{f("metadata-options.http-tokens", "required")}, sorted(a, c)},
		{"http_endpoint_disabled", []types.Filter{f("metadata-options.http-endpoint", "disabled")}, []string{b}},
		{"values_are_ored", []types.Filter{f("instance-id", a, b)}, sorted(a, b)},
		{"filters_are_anded", []types.Filter{f("instance-id", a, b), f("tag:Name", "db-*")}, []string{b}},
		{"question_mark_wildcard", []types.Filter{f("private-ip-address", "192.0.2.?")}, sorted(a, b)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.client.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: tt.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(out); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDescribeInstancesErrors(t *testing.T) {
	e := newEnv(t, nil)
	a := *e.launch("192.0.2.1", nil).InstanceId
	tests := []struct {
		name string
		in   *ec2.DescribeInstancesInput
		want string
	}{
		{"unknown_id_is_not_found", &ec2.DescribeInstancesInput{InstanceIds: []string{a, "i-0123456789abcdef0"}}, "InvalidInstanceID.NotFound"},
		{"malformed_id", &ec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}}, "InvalidInstanceID.Malformed"},
		{"unknown_filter", &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}}, "InvalidParameterValue"},
		{"max_results_too_small", &ec2.DescribeInstancesInput{MaxResults: aws.Int32(2)}, "InvalidParameterValue"},
		{"max_results_with_ids", &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), InstanceIds: []string{a}}, "InvalidParameterCombination"},
		{"bad_next_token", &ec2.DescribeInstancesInput{NextToken: aws.String("garbage")}, "InvalidPaginationToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.DescribeInstances(context.Background(), tt.in)
			if got := code(t, err); got != tt.want {
				t.Fatalf("got %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestDescribeInstancesPaging(t *testing.T) {
	e := newEnv(t, nil)
	var all []string
	for i := 1; i <= 12; i++ {
		all = append(all, *e.launch("192.0.2."+itoa(i), nil).InstanceId)
	}
	sort.Strings(all)
	var seen []string
	pages := 0
	p := ec2.NewDescribeInstancesPaginator(e.client, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		n := len(ids(out))
		if n > 5 {
			t.Fatalf("page of %d instances, MaxResults 5", n)
		}
		seen = append(seen, ids(out)...)
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
	sort.Strings(seen)
	if strings.Join(seen, ",") != strings.Join(all, ",") {
		t.Errorf("paging lost or repeated instances:\n%v\n%v", seen, all)
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

func TestDescribeInstancesRendersInstance(t *testing.T) {
	e := newEnv(t, nil)
	id := *e.launch("192.0.2.1", func(in *ec2.RunInstancesInput) {
		in.TagSpecifications = tagSpec("Name", "web")
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("role")}
	}).InstanceId
	out, err := e.client.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Reservations[0]
	in := r.Instances[0]
	if *r.OwnerId != "123456789012" || !strings.HasPrefix(*r.ReservationId, "r-") {
		t.Errorf("reservation %+v", r)
	}
	if *in.ImageId != "ami-0123456789abcdef0" || in.InstanceType != "t3.micro" || *in.Placement.AvailabilityZone != "us-east-1a" ||
		*in.SubnetId == "" || *in.VpcId == "" || len(in.SecurityGroups) != 1 || len(in.NetworkInterfaces) != 1 ||
		*in.NetworkInterfaces[0].MacAddress == "" || *in.IamInstanceProfile.Arn != "arn:aws:iam::123456789012:instance-profile/role" ||
		len(in.Tags) != 1 || *in.Tags[0].Value != "web" || in.LaunchTime == nil || in.Architecture != types.ArchitectureValuesX8664 {
		t.Errorf("instance rendered incompletely: %+v", in)
	}
}
