package controlplane

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

type flakyStore struct {
	*memstore.Store
	fail atomic.Bool
}

func (f *flakyStore) Update(ctx context.Context, fn func(imds.Tx) error) error {
	if !f.fail.Load() {
		return f.Store.Update(ctx, fn)
	}
	return f.Store.Update(ctx, func(tx imds.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return fmt.Errorf("etcd commit: %w", imds.ErrUnavailable)
	})
}

func (f *flakyStore) View(ctx context.Context, fn func(imds.Tx) error) error {
	if f.fail.Load() {
		return fmt.Errorf("etcd range: %w", imds.ErrUnavailable)
	}
	return f.Store.View(ctx, fn)
}

func TestUnavailableStoreIsUnavailableForEveryAction(t *testing.T) {
	fs := &flakyStore{Store: memstore.New()}
	t.Cleanup(func() { _ = fs.Close() })
	h := &hookRecorder{}
	opts := Options{PublicIPv4Pool: netip.MustParsePrefix("203.0.113.0/28")}
	h.install(&opts)
	srv := New(fs, testCreds, opts)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e := &env{t: t, srv: srv, store: fs.Store, url: hs.URL, client: newClient(hs.URL, testCreds)}

	id := *e.launch("192.0.2.1", func(in *ec2.RunInstancesInput) {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("web")}
	}).InstanceId
	bare := *e.launch("192.0.2.2", nil).InstanceId
	assoc := e.stored(id).IAMInstanceProfile.AssociationID
	_, eventID := e.ext(ActionCreateMaintenanceEvent, "InstanceId", id, "Code", "system-reboot")
	net := seedNetwork(t, e.client, id)

	params := map[string][]string{
		"RunInstances":                           {"ImageId", "ami-0123456789abcdef0", "PrivateIpAddress", "192.0.2.9", "ClientToken", "t-1"},
		"DescribeInstances":                      {},
		"TerminateInstances":                     {"InstanceId.1", id},
		"CreateTags":                             {"ResourceId.1", id, "Tag.1.Key", "k", "Tag.1.Value", "v"},
		"DeleteTags":                             {"ResourceId.1", id},
		"ModifyInstanceAttribute":                {"InstanceId", id, "UserData.Value", "eA=="},
		"ModifyInstanceMetadataOptions":          {"InstanceId", id, "HttpTokens", "optional"},
		"GetInstanceMetadataDefaults":            {},
		"ModifyInstanceMetadataDefaults":         {"HttpTokens", "optional"},
		"AssociateIamInstanceProfile":            {"InstanceId", bare, "IamInstanceProfile.Name", "web"},
		"DisassociateIamInstanceProfile":         {"AssociationId", assoc},
		"DescribeIamInstanceProfileAssociations": {},
		"ModifyInstancePlacement":                {"InstanceId", id, "HostId", "node-b"},
		"ImportKeyPair":                          {"KeyName", "k", "PublicKeyMaterial", "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUJEbFZuaTBPdTM2cWtFZ3BkUXFPWk4yMm5OamNCVDcwRGFXVytDVUFGQy8gYm9iQGV4YW1wbGU="},
		"CreateKeyPair":                          {"KeyName", "k2"},
		"DescribeKeyPairs":                       {},
		"DeleteKeyPair":                          {"KeyName", "k"},
		"CreateVpc":                              {"CidrBlock", "10.0.0.0/16"},
		"DescribeVpcs":                           {},
		"DeleteVpc":                              {"VpcId", net.emptyVPC},
		"CreateSubnet":                           {"VpcId", net.vpc, "CidrBlock", "10.0.2.0/24"},
		"DescribeSubnets":                        {},
		"DeleteSubnet":                           {"SubnetId", net.subnet},
		"AllocateAddress":                        {"Domain", "vpc"},
		"AssociateAddress":                       {"AllocationId", net.freeEIP, "InstanceId", bare},
		"DisassociateAddress":                    {"AssociationId", net.assoc},
		"ReleaseAddress":                         {"AllocationId", net.freeEIP},
		"DescribeAddresses":                      {},
		ActionSendSpotInterruption:               {"InstanceId", id},
		ActionCancelSpotInterruption:             {"InstanceId", id},
		ActionSendRebalanceRecommendation:        {"InstanceId", id},
		ActionCancelRebalanceRecommendation:      {"InstanceId", id},
		ActionCreateMaintenanceEvent:             {"InstanceId", id, "Code", "system-reboot"},
		ActionCompleteMaintenanceEvent:           {"InstanceId", id, "EventId", eventID},
		ActionCancelMaintenanceEvent:             {"InstanceId", id, "EventId", eventID},
		ActionSetTargetLifecycleState:            {"InstanceId", id, "State", "InService"},
		ActionImportInstances:                    {"Instance.1.Json", `{"ImageId":"ami-0123456789abcdef0","PrivateIpAddress":"192.0.2.8"}`},
		ActionExportInstances:                    {},
	}
	// FrontdeskDescribeImdsUsage reads no store: it answers from the data
	// plane's counters; regions and zones come from the configuration.
	noStore := map[string]bool{ActionDescribeImdsUsage: true, "DescribeRegions": true, "DescribeAvailabilityZones": true}

	h.take()
	revBefore := e.revision()
	fs.fail.Store(true)
	for _, name := range Actions() {
		if noStore[name] {
			continue
		}
		t.Run(name+" is Unavailable and writes nothing", func(t *testing.T) {
			kv, ok := params[name]
			if !ok {
				t.Fatalf("no parameters for %s: add them to this test", name)
			}
			v := url.Values{"Action": {name}, "Version": {"2016-11-15"}}
			for i := 0; i < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			status, body := e.call(v.Encode())
			if c, _ := errorOf(t, body); status != 503 || c != "Unavailable" {
				t.Errorf("%d %s", status, body)
			}
			reqs, changes := h.take()
			if len(reqs) != 1 || reqs[0] != (requestEvent{name, "Unavailable"}) || len(changes) != 0 {
				t.Errorf("hooks told %+v %+v", reqs, changes)
			}
		})
	}
	// The SDK sees EC2's code too.
	_, err := e.client.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if c := code(t, err); c != "Unavailable" {
		t.Errorf("SDK: %q", c)
	}
	fs.fail.Store(false)
	if rev := e.revision(); rev != revBefore {
		t.Errorf("store revision moved from %d to %d while unavailable", revBefore, rev)
	}
	if in := e.stored(id); in.State != imds.StateRunning || len(in.Tags) != 0 || in.Placement.HostID != "" || in.Events.Spot != nil {
		t.Errorf("instance changed while unavailable: %+v", in)
	}
	if n := e.countInstances(); n != 2 {
		t.Errorf("%d instances", n)
	}
}
