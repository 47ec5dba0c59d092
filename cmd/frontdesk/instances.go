package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// cmdInstances is `frontdesk instances …`: the instance operations of the
// EC2 API, for operators without the AWS CLI.
func cmdInstances(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "instances", args, map[string]subcommand{
		"list":                    {cmdInstancesList, "list instances with their metadata options"},
		"run":                     {cmdInstancesRun, "register (launch) an instance"},
		"terminate":               {cmdInstancesTerminate, "terminate instances"},
		"modify-metadata-options": {cmdInstancesModify, "change an instance's metadata options"},
		"tag":                     {cmdInstancesTag, "add, change or delete an instance's tags"},
		"import":                  {cmdInstancesImport, "launch an inventory of run-instances JSON lines, in batches"},
		"export":                  {cmdInstancesExport, "print every live instance as a run-instances JSON line"},
	})
}

// instanceView is one instance as `instances list --json` prints it.
type instanceView struct {
	InstanceID           string            `json:"instanceId"`
	State                string            `json:"state"`
	ImageID              string            `json:"imageId,omitempty"`
	InstanceType         string            `json:"instanceType,omitempty"`
	PrivateIPs           []string          `json:"privateIpAddresses"`
	IPv6Addresses        []string          `json:"ipv6Addresses"`
	HostID               string            `json:"hostId,omitempty"`
	Profile              string            `json:"iamInstanceProfile,omitempty"`
	HttpTokens           string            `json:"httpTokens"`
	HopLimit             int32             `json:"httpPutResponseHopLimit"`
	HttpEndpoint         string            `json:"httpEndpoint"`
	HttpProtocolIpv6     string            `json:"httpProtocolIpv6"`
	InstanceMetadataTags string            `json:"instanceMetadataTags"`
	MetadataOptionsState string            `json:"metadataOptionsState"`
	Tags                 map[string]string `json:"tags"`
}

func viewInstance(in types.Instance) instanceView {
	v := instanceView{
		InstanceID:    aws.ToString(in.InstanceId),
		ImageID:       aws.ToString(in.ImageId),
		InstanceType:  string(in.InstanceType),
		PrivateIPs:    []string{},
		IPv6Addresses: []string{},
		Tags:          map[string]string{},
	}
	if in.State != nil {
		v.State = string(in.State.Name)
	}
	if in.Placement != nil {
		v.HostID = aws.ToString(in.Placement.HostId)
	}
	if in.IamInstanceProfile != nil {
		arn := aws.ToString(in.IamInstanceProfile.Arn)
		v.Profile = arn[strings.LastIndex(arn, "/")+1:]
	}
	add := func(list *[]string, a string) {
		if a != "" && !slices.Contains(*list, a) {
			*list = append(*list, a)
		}
	}
	add(&v.PrivateIPs, aws.ToString(in.PrivateIpAddress))
	add(&v.IPv6Addresses, aws.ToString(in.Ipv6Address))
	for _, ni := range in.NetworkInterfaces {
		add(&v.PrivateIPs, aws.ToString(ni.PrivateIpAddress))
		for _, p := range ni.PrivateIpAddresses {
			add(&v.PrivateIPs, aws.ToString(p.PrivateIpAddress))
		}
		for _, p := range ni.Ipv6Addresses {
			add(&v.IPv6Addresses, aws.ToString(p.Ipv6Address))
		}
	}
	if mo := in.MetadataOptions; mo != nil {
		v.HttpTokens = string(mo.HttpTokens)
		v.HopLimit = aws.ToInt32(mo.HttpPutResponseHopLimit)
		v.HttpEndpoint = string(mo.HttpEndpoint)
		v.HttpProtocolIpv6 = string(mo.HttpProtocolIpv6)
		v.InstanceMetadataTags = string(mo.InstanceMetadataTags)
		v.MetadataOptionsState = string(mo.State)
	}
	for _, t := range in.Tags {
		v.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return v
}

// describeAll pages through DescribeInstances.
func describeAll(ctx context.Context, c *apiclient.Client, in *ec2.DescribeInstancesInput) ([]instanceView, error) {
	var out []instanceView
	p := ec2.NewDescribeInstancesPaginator(c.EC2(), in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				out = append(out, viewInstance(in))
			}
		}
	}
	return out, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdInstancesList(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "instances list", "frontdesk instances list [--json] [--state NAME] [ID...]")
	asJSON := c.fs.Bool("json", false, "print JSON instead of a table")
	state := c.fs.String("state", "", "only instances in this state (e.g. running, terminated)")
	ids, err := c.parse(args, 0, -1)
	if err != nil {
		return err
	}
	if err := checkInstanceIDs(ids...); err != nil {
		return err
	}
	if *state != "" {
		if err := oneOf("state", *state, instanceStates...); err != nil {
			return err
		}
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	in := &ec2.DescribeInstancesInput{InstanceIds: ids}
	if len(ids) == 0 {
		in.MaxResults = aws.Int32(1000)
	}
	if *state != "" {
		in.Filters = []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{*state}}}
	}
	all, err := describeAll(ctx, cl, in)
	if err != nil {
		return err
	}
	if *asJSON {
		if all == nil {
			all = []instanceView{}
		}
		return writeJSON(e.stdout, all)
	}
	rows := [][]string{{"INSTANCE ID", "STATE", "TYPE", "HOST", "PRIVATE IPS", "IPV6", "PROFILE", "HTTP TOKENS", "HOP LIMIT", "ENDPOINT", "OPTIONS", "NAME"}}
	for _, v := range all {
		hop := "-"
		if v.HopLimit > 0 {
			hop = strconv.Itoa(int(v.HopLimit))
		}
		rows = append(rows, []string{v.InstanceID, v.State, dash(v.InstanceType), dash(v.HostID),
			dash(strings.Join(v.PrivateIPs, ",")), dash(strings.Join(v.IPv6Addresses, ",")), dash(v.Profile),
			dash(v.HttpTokens), hop, dash(v.HttpEndpoint), dash(v.MetadataOptionsState), dash(v.Tags["Name"])})
	}
	return table(e.stdout, rows)
}

// instanceStates are EC2's instance state names, what --state accepts.
var instanceStates = []string{"pending", "running", "shutting-down", "terminated", "stopping", "stopped"}

// metadataFlags are the metadata options shared by run and
// modify-metadata-options.
type metadataFlags struct {
	httpTokens, httpEndpoint, tags, ipv6 string
	hopLimit                             int
}

func (m *metadataFlags) register(c *command) {
	c.fs.StringVar(&m.httpTokens, "http-tokens", "", "HttpTokens: required (IMDSv2 only) or optional (unset: the account default from `frontdesk defaults`, else required)")
	c.fs.IntVar(&m.hopLimit, "hop-limit", 0, "HttpPutResponseHopLimit, 1-64 (unset: the account default, else 2)")
	c.fs.StringVar(&m.httpEndpoint, "http-endpoint", "", "HttpEndpoint: enabled or disabled")
	c.fs.StringVar(&m.tags, "instance-metadata-tags", "", "InstanceMetadataTags: enabled or disabled")
	c.fs.StringVar(&m.ipv6, "http-protocol-ipv6", "", "HttpProtocolIpv6: enabled or disabled")
}

// check validates the flags the command line set.
func (m *metadataFlags) check(set map[string]bool) error {
	checks := []struct {
		name, v string
		allowed []string
	}{
		{"http-tokens", m.httpTokens, []string{"required", "optional"}},
		{"http-endpoint", m.httpEndpoint, []string{"enabled", "disabled"}},
		{"instance-metadata-tags", m.tags, []string{"enabled", "disabled"}},
		{"http-protocol-ipv6", m.ipv6, []string{"enabled", "disabled"}},
	}
	for _, ch := range checks {
		if set[ch.name] {
			if err := oneOf(ch.name, ch.v, ch.allowed...); err != nil {
				return err
			}
		}
	}
	if set["hop-limit"] && (m.hopLimit < 1 || m.hopLimit > 64) {
		return usageErr("--hop-limit must be between 1 and 64, not %d", m.hopLimit)
	}
	return nil
}

func (m *metadataFlags) any(set map[string]bool) bool {
	for _, n := range []string{"http-tokens", "hop-limit", "http-endpoint", "instance-metadata-tags", "http-protocol-ipv6"} {
		if set[n] {
			return true
		}
	}
	return false
}

// request is the metadata options the command line set, the others left
// unset (the server keeps or defaults them).
func (m *metadataFlags) request(set map[string]bool) *types.InstanceMetadataOptionsRequest {
	mo := &types.InstanceMetadataOptionsRequest{}
	if set["http-tokens"] {
		mo.HttpTokens = types.HttpTokensState(m.httpTokens)
	}
	if set["hop-limit"] {
		mo.HttpPutResponseHopLimit = aws.Int32(int32(m.hopLimit))
	}
	if set["http-endpoint"] {
		mo.HttpEndpoint = types.InstanceMetadataEndpointState(m.httpEndpoint)
	}
	if set["instance-metadata-tags"] {
		mo.InstanceMetadataTags = types.InstanceMetadataTagsState(m.tags)
	}
	if set["http-protocol-ipv6"] {
		mo.HttpProtocolIpv6 = types.InstanceMetadataProtocolState(m.ipv6)
	}
	return mo
}

func cmdInstancesRun(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "instances run", "frontdesk instances run --image-id AMI (--private-ip ADDR | --subnet-id SUBNET [--count N|MIN:MAX]) [--associate-public-ip-address] [--ipv6 ADDR]... [--instance-type T] [--iam-instance-profile NAME|ARN] [--key-name K] [--user-data-file F|-] [--tag K=V]... [--host-id H] [--http-tokens required|optional] [--hop-limit N] [--http-endpoint enabled|disabled] [--instance-metadata-tags enabled|disabled] [--http-protocol-ipv6 enabled|disabled]")
	imageID := c.fs.String("image-id", "", "AMI id (required)")
	privateIP := c.fs.String("private-ip", "", "primary private IPv4 address: the data plane knows the instance by it")
	var ipv6, tags listFlag
	c.fs.Var(&ipv6, "ipv6", "IPv6 address of the instance (repeatable)")
	instanceType := c.fs.String("instance-type", "", "instance type (default t3.micro)")
	profile := c.fs.String("iam-instance-profile", "", "instance profile name or ARN: its name is the role whose credentials are served")
	keyName := c.fs.String("key-name", "", "key pair name")
	userDataFile := c.fs.String("user-data-file", "", "file whose content is the user data (- reads stdin)")
	c.fs.Var(&tags, "tag", "instance tag KEY=VALUE (repeatable)")
	hostID := c.fs.String("host-id", "", "Placement.HostId: the frontdesk node (serve --host-id) that serves the instance")
	var nf networkFlags
	nf.register(c)
	var mf metadataFlags
	mf.register(c)
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	set := c.set()
	if *imageID == "" {
		return usageErr("instances run: --image-id is required")
	}
	if err := mf.check(set); err != nil {
		return err
	}
	if a, err := netip.ParseAddr(*privateIP); *privateIP != "" && (err != nil || !a.Is4()) {
		return usageErr("--private-ip must be an IPv4 address, not %q", *privateIP)
	}
	for _, v := range ipv6 {
		if a, err := netip.ParseAddr(v); err != nil || !a.Is6() || a.Is4In6() {
			return usageErr("--ipv6 must be an IPv6 address, not %q", v)
		}
	}
	pairs, err := parseTags("--tag", tags)
	if err != nil {
		return err
	}
	in := &ec2.RunInstancesInput{
		ImageId:  imageID,
		MinCount: aws.Int32(1),
		MaxCount: aws.Int32(1),
	}
	if *privateIP != "" {
		in.PrivateIpAddress = privateIP
	}
	for _, a := range ipv6 {
		in.Ipv6Addresses = append(in.Ipv6Addresses, types.InstanceIpv6Address{Ipv6Address: aws.String(a)})
	}
	if *instanceType != "" {
		in.InstanceType = types.InstanceType(*instanceType)
	}
	if p := *profile; p != "" {
		if strings.HasPrefix(p, "arn:") {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String(p)}
		} else {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(p)}
		}
	}
	if *keyName != "" {
		in.KeyName = keyName
	}
	if f := *userDataFile; f != "" {
		var b []byte
		if f == "-" {
			b, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20))
		} else {
			b, err = os.ReadFile(f)
		}
		if err != nil {
			return usageErr("--user-data-file: %w", err)
		}
		in.UserData = aws.String(base64.StdEncoding.EncodeToString(b))
	}
	if len(pairs) > 0 {
		ts := types.TagSpecification{ResourceType: types.ResourceTypeInstance}
		for _, p := range pairs {
			ts.Tags = append(ts.Tags, types.Tag{Key: aws.String(p.key), Value: aws.String(p.value)})
		}
		in.TagSpecifications = []types.TagSpecification{ts}
	}
	if *hostID != "" {
		in.Placement = &types.Placement{HostId: hostID}
	}
	if mf.any(set) {
		in.MetadataOptions = mf.request(set)
	}
	if err := nf.apply(in); err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	out, err := cl.EC2().RunInstances(ctx, in)
	if err != nil {
		return fmt.Errorf("instances run: %w", err)
	}
	for _, inst := range out.Instances {
		fmt.Fprintln(e.stdout, aws.ToString(inst.InstanceId))
	}
	return nil
}

func cmdInstancesTerminate(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "instances terminate", "frontdesk instances terminate ID...")
	ids, err := c.parse(args, 1, -1)
	if err != nil {
		return err
	}
	if err := checkInstanceIDs(ids...); err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	out, err := cl.EC2().TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil {
		return fmt.Errorf("instances terminate: %w", err)
	}
	rows := [][]string{{"INSTANCE ID", "PREVIOUS STATE", "STATE"}}
	for _, ch := range out.TerminatingInstances {
		var prev, cur string
		if ch.PreviousState != nil {
			prev = string(ch.PreviousState.Name)
		}
		if ch.CurrentState != nil {
			cur = string(ch.CurrentState.Name)
		}
		rows = append(rows, []string{aws.ToString(ch.InstanceId), dash(prev), dash(cur)})
	}
	return table(e.stdout, rows)
}

func cmdInstancesModify(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "instances modify-metadata-options", "frontdesk instances modify-metadata-options ID [--http-tokens required|optional] [--hop-limit N] [--http-endpoint enabled|disabled] [--instance-metadata-tags enabled|disabled] [--http-protocol-ipv6 enabled|disabled]")
	var mf metadataFlags
	mf.register(c)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	id := pos[0]
	if err := checkInstanceIDs(id); err != nil {
		return err
	}
	set := c.set()
	if err := mf.check(set); err != nil {
		return err
	}
	if !mf.any(set) {
		return usageErr("instances modify-metadata-options: nothing to change: give at least one of --http-tokens, --hop-limit, --http-endpoint, --instance-metadata-tags, --http-protocol-ipv6")
	}
	mo := mf.request(set)
	in := &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId:              aws.String(id),
		HttpTokens:              mo.HttpTokens,
		HttpPutResponseHopLimit: mo.HttpPutResponseHopLimit,
		HttpEndpoint:            mo.HttpEndpoint,
		InstanceMetadataTags:    mo.InstanceMetadataTags,
		HttpProtocolIpv6:        mo.HttpProtocolIpv6,
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	out, err := cl.EC2().ModifyInstanceMetadataOptions(ctx, in)
	if err != nil {
		return fmt.Errorf("instances modify-metadata-options: %w", err)
	}
	if mo := out.InstanceMetadataOptions; mo != nil {
		fmt.Fprintf(e.stdout, "%s httpTokens=%s hopLimit=%d httpEndpoint=%s instanceMetadataTags=%s httpProtocolIpv6=%s state=%s\n",
			aws.ToString(out.InstanceId), mo.HttpTokens, aws.ToInt32(mo.HttpPutResponseHopLimit), mo.HttpEndpoint,
			mo.InstanceMetadataTags, mo.HttpProtocolIpv6, mo.State)
	}
	return nil
}

func cmdInstancesTag(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "instances tag", "frontdesk instances tag ID [KEY=VALUE]... [--delete KEY]...")
	var del listFlag
	c.fs.Var(&del, "delete", "tag key to delete (repeatable)")
	pos, err := c.parse(args, 1, -1)
	if err != nil {
		return err
	}
	id := pos[0]
	if err := checkInstanceIDs(id); err != nil {
		return err
	}
	pairs, err := parseTags("instances tag", pos[1:])
	if err != nil {
		return err
	}
	if len(pairs) == 0 && len(del) == 0 {
		return usageErr("instances tag: nothing to do: give KEY=VALUE arguments or --delete KEY")
	}
	for _, k := range del {
		if k == "" {
			return usageErr("--delete needs a tag key")
		}
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	if len(pairs) > 0 {
		in := &ec2.CreateTagsInput{Resources: []string{id}}
		for _, p := range pairs {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(p.key), Value: aws.String(p.value)})
		}
		if _, err := cl.EC2().CreateTags(ctx, in); err != nil {
			return fmt.Errorf("instances tag: %w", err)
		}
	}
	if len(del) > 0 {
		in := &ec2.DeleteTagsInput{Resources: []string{id}}
		for _, k := range del {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(k)})
		}
		if _, err := cl.EC2().DeleteTags(ctx, in); err != nil {
			return fmt.Errorf("instances tag: %w", err)
		}
	}
	var done []string
	for _, p := range pairs {
		done = append(done, "set "+p.key+"="+p.value)
	}
	for _, k := range del {
		done = append(done, "deleted "+k)
	}
	_, err = fmt.Fprintf(e.stdout, "%s: %s\n", id, strings.Join(done, ", "))
	return err
}
