package controlplane

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/usage"
)

func TestMetadataOptionsStateUsesTheServedInstance(t *testing.T) {
	var mu sync.Mutex
	snapshot := map[string]int64{} // instance → OptionsRevision the data plane holds
	e := newEnv(t, func(o *Options) {
		o.AppliedOptions = func(id string) (int64, bool) {
			mu.Lock()
			defer mu.Unlock()
			rev, ok := snapshot[id]
			return rev, ok
		}
	})
	served := *e.launch("192.0.2.1", nil).InstanceId
	other := *e.launch("192.0.2.2", nil).InstanceId
	if _, err := e.client.ModifyInstanceMetadataOptions(context.Background(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(served), HttpTokens: types.HttpTokensStateOptional,
	}); err != nil {
		t.Fatal(err)
	}
	stored := e.stored(served).OptionsRevision
	tests := []struct {
		name     string
		id       string
		snapRev  int64 // -1: not served here
		applied  int64
		wantSate types.InstanceMetadataOptionsState
	}{
		// etcd can commit after read revision + 1: the store revision the
		// snapshot reached may pass OptionsRevision before the change.
		{"served and the snapshot holds an older copy is pending whatever the store revision", served, stored - 1, stored + 100, types.InstanceMetadataOptionsStatePending},
		{"served and the snapshot holds the change is applied whatever the store revision", served, stored, 0, types.InstanceMetadataOptionsStateApplied},
		{"not served here falls back on the store revision (behind)", other, -1, 0, types.InstanceMetadataOptionsStatePending},
		{"not served here falls back on the store revision (caught up)", other, -1, e.revision(), types.InstanceMetadataOptionsStateApplied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			delete(snapshot, tc.id)
			if tc.snapRev >= 0 {
				snapshot[tc.id] = tc.snapRev
			}
			mu.Unlock()
			e.applied.Store(tc.applied)
			if st := e.describeOne(tc.id).MetadataOptions.State; st != tc.wantSate {
				t.Errorf("state %s, want %s", st, tc.wantSate)
			}
		})
	}
}

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

type usageAnswer struct {
	XMLName       xml.Name
	RequestID     string `xml:"requestId"`
	WindowSeconds int    `xml:"windowSeconds"`
	Items         []struct {
		InstanceID    string `xml:"instanceId"`
		Calls         int64  `xml:"imdsV1Calls"`
		Rejected      int64  `xml:"imdsV1Rejected"`
		LastCall      string `xml:"lastCall"`
		LastPath      string `xml:"lastPath"`
		LastUserAgent string `xml:"lastUserAgent"`
	} `xml:"usageSet>item"`
}

func TestDescribeImdsUsage(t *testing.T) {
	last := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var gotWindow atomic.Int64
	h := &hookRecorder{}
	e := newEnv(t, func(o *Options) {
		h.install(o)
		o.V1Usage = func(_ context.Context, w time.Duration) (*usage.Report, error) {
			gotWindow.Store(int64(w))
			return usage.NewReport(w, last, last.Add(-time.Hour), []usage.Summary{
				{InstanceID: "i-0bbbbbbbbbbbbbbbb", Calls: 3, LastCall: last, LastPath: "/latest/meta-data/", LastUserAgent: "curl/8.5.0"},
				{InstanceID: "i-0aaaaaaaaaaaaaaaa", Calls: 0, Rejected: 7, LastCall: last.Add(-time.Minute), LastPath: "/latest/user-data", LastUserAgent: "aws-sdk-go/1.44"},
			}), nil
		}
	})
	ask := func(kv ...string) (int, usageAnswer, string) {
		t.Helper()
		v := url.Values{"Action": {ActionDescribeImdsUsage}, "Version": {"2016-11-15"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		status, body := e.call(v.Encode())
		var a usageAnswer
		if status == 200 {
			if err := xml.Unmarshal([]byte(body), &a); err != nil || a.XMLName.Local != ActionDescribeImdsUsage+"Response" || a.XMLName.Space != ec2Namespace || a.RequestID == "" {
				t.Fatalf("answer %v %s", err, body)
			}
			return status, a, ""
		}
		c, _ := errorOf(t, body)
		return status, a, c
	}

	_, a, _ := ask()
	if a.WindowSeconds != 3600 || time.Duration(gotWindow.Load()) != time.Hour || len(a.Items) != 2 {
		t.Fatalf("default window: %+v (asked %v)", a, time.Duration(gotWindow.Load()))
	}
	first := a.Items[0]
	if first.InstanceID != "i-0aaaaaaaaaaaaaaaa" || first.Calls != 0 || first.Rejected != 7 || first.LastCall != "2030-01-02T03:03:05Z" ||
		first.LastPath != "/latest/user-data" || first.LastUserAgent != "aws-sdk-go/1.44" {
		t.Errorf("first item (sorted by instance) %+v", first)
	}
	_, a, _ = ask("WindowSeconds", "86400", "InstanceId.1", "i-0bbbbbbbbbbbbbbbb")
	if a.WindowSeconds != 86400 || time.Duration(gotWindow.Load()) != 24*time.Hour || len(a.Items) != 1 || a.Items[0].Calls != 3 {
		t.Errorf("filtered: %+v", a)
	}
	for _, bad := range []string{"0", "1209601", "soon"} {
		if s, _, c := ask("WindowSeconds", bad); s != 400 || c != "InvalidParameterValue" {
			t.Errorf("WindowSeconds=%s: %d %s", bad, s, c)
		}
	}
	if _, _, c := ask("InstanceId.1", "web-1"); c != "InvalidInstanceID.Malformed" {
		t.Errorf("malformed id: %s", c)
	}
	if _, changes := h.take(); len(changes) != 0 {
		t.Errorf("a usage report is not a change: %+v", changes)
	}

	bare := newEnv(t, nil)
	status, body := bare.call("Action=" + ActionDescribeImdsUsage + "&Version=2016-11-15")
	if status != 400 || !strings.Contains(body, "<Code>UnsupportedOperation</Code>") {
		t.Errorf("without V1Usage: %d %s, want UnsupportedOperation (an empty set would read as no IMDSv1 calls)", status, body)
	}
}

// flakyStore is a store whose transactions run but then fail to commit
// (or to read), as an unreachable etcd does.
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
	opts := Options{Credentials: testCreds, PublicIPv4Pool: netip.MustParsePrefix("203.0.113.0/28")}
	h.install(&opts)
	srv := New(fs, opts)
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
