package apiclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/usage"
)

var testCreds = controlplane.AdminCredentials{
	AccessKeyID:     "AKIAFRONTDESKAPICLNT",
	SecretAccessKey: "frontdesk/apiclient/test/secret/0123456789",
}

type testEnv struct {
	store  *memstore.Store
	url    string
	client *Client
}

func newTestEnv(t *testing.T, opts controlplane.Options) *testEnv {
	t.Helper()
	store := memstore.New()
	t.Cleanup(func() { _ = store.Close() })
	srv := httptest.NewServer(controlplane.New(store, testCreds, opts).Handler())
	t.Cleanup(srv.Close)
	return &testEnv{store: store, url: srv.URL, client: New(srv.URL, staticCreds(testCreds.SecretAccessKey), Options{})}
}

func staticCreds(secret string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(testCreds.AccessKeyID, secret, "")
}

func (e *testEnv) launch(t *testing.T, addr string) string {
	t.Helper()
	out, err := e.client.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0abcdef1234567890"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), PrivateIpAddress: aws.String(addr),
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

func (e *testEnv) stored(t *testing.T, id string) *imds.Instance {
	t.Helper()
	var in *imds.Instance
	if err := e.store.View(context.Background(), func(tx imds.Tx) error {
		var err error
		in, err = imds.GetInstance(tx, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return in
}

// The raw extension calls are signed so the control plane accepts them, and
// each one changes the instance as its action says.
func TestCLIExtensionActionsChangeTheInstance(t *testing.T) {
	e := newTestEnv(t, controlplane.Options{})
	ctx := context.Background()
	id := e.launch(t, "192.0.2.1")
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	if err := e.client.SendSpotInterruption(ctx, id, "hibernate", at); err != nil {
		t.Fatal(err)
	}
	if sp := e.stored(t, id).Events.Spot; sp == nil || sp.Action != "hibernate" || !sp.Time.Equal(at) {
		t.Errorf("spot %+v", sp)
	}
	if err := e.client.CancelSpotInterruption(ctx, id); err != nil || e.stored(t, id).Events.Spot != nil {
		t.Errorf("cancel spot: %v", err)
	}
	if err := e.client.SendRebalanceRecommendation(ctx, id, at); err != nil {
		t.Fatal(err)
	}
	if n := e.stored(t, id).Events.RebalanceNotice; n == nil || !n.Equal(at) {
		t.Errorf("rebalance %v", n)
	}
	if err := e.client.CancelRebalanceRecommendation(ctx, id); err != nil || e.stored(t, id).Events.RebalanceNotice != nil {
		t.Errorf("cancel rebalance: %v", err)
	}
	ev, err := e.client.CreateMaintenanceEvent(ctx, id, MaintenanceEvent{Code: "system-reboot", Description: "swap", NotBefore: at, NotAfter: at.Add(time.Hour)})
	if err != nil || !strings.HasPrefix(ev, "instance-event-") {
		t.Fatalf("create event: %q %v", ev, err)
	}
	if s := e.stored(t, id).Events.Scheduled; len(s) != 1 {
		t.Errorf("scheduled %+v", s)
	}
	if err := e.client.CompleteMaintenanceEvent(ctx, id, ev); err != nil {
		t.Fatal(err)
	}
	if in := e.stored(t, id); len(in.Events.Scheduled) != 0 || len(in.Events.History) != 1 {
		t.Errorf("after complete: %+v", in.Events)
	}
	ev2, err := e.client.CreateMaintenanceEvent(ctx, id, MaintenanceEvent{Code: "instance-stop"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.CancelMaintenanceEvent(ctx, id, ev2); err != nil || len(e.stored(t, id).Events.History) != 2 {
		t.Errorf("cancel event: %v", err)
	}
	if err := e.client.SetTargetLifecycleState(ctx, id, "InService"); err != nil || e.stored(t, id).Events.TargetLifecycleState != "InService" {
		t.Errorf("lifecycle: %v", err)
	}
}

func TestCLIDescribeImdsUsageDecodes(t *testing.T) {
	last := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var window atomic.Int64
	e := newTestEnv(t, controlplane.Options{V1Usage: func(_ context.Context, w time.Duration) (*usage.Report, error) {
		window.Store(int64(w))
		return usage.NewReport(w, last, last.Add(-time.Hour), []usage.Summary{
			{InstanceID: "i-0000000000000000a", Calls: 3, Rejected: 1, LastCall: last, LastPath: "/latest/meta-data/", LastUserAgent: "curl/8"},
			{InstanceID: "i-0000000000000000b"},
		}), nil
	}})
	us, err := e.client.DescribeImdsUsage(context.Background(), 90*time.Minute, []string{"i-0000000000000000a"})
	if err != nil {
		t.Fatal(err)
	}
	want := ImdsUsage{InstanceID: "i-0000000000000000a", V1Calls: 3, V1Rejected: 1, LastCall: last, LastPath: "/latest/meta-data/", LastUserAgent: "curl/8"}
	if len(us) != 1 || us[0] != want {
		t.Errorf("usage %+v, want [%+v] (filtered by InstanceId.1)", us, want)
	}
	if time.Duration(window.Load()) != 90*time.Minute {
		t.Errorf("window sent %v, want 1h30m", time.Duration(window.Load()))
	}
}

// EC2 error documents become *APIError with Code and Message, and
// ErrorCode reads SDK and raw errors alike.
func TestCLIErrorsCarryCodeAndMessage(t *testing.T) {
	e := newTestEnv(t, controlplane.Options{})
	ctx := context.Background()

	err := e.client.SendSpotInterruption(ctx, "i-00000000000000000", "", time.Time{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "InvalidInstanceID.NotFound" || ae.Message == "" || ae.StatusCode != 400 || ae.RequestID == "" {
		t.Fatalf("err %v (%+v)", err, ae)
	}
	var sae smithy.APIError
	if !errors.As(err, &sae) || ErrorCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("not a smithy.APIError: %v", err)
	}

	bad := New(e.url, staticCreds("frontdesk/wrong/secret/0123456789abcdefgh"), Options{})
	if err := bad.SetTargetLifecycleState(ctx, "i-00000000000000000", "InService"); ErrorCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("raw call with a wrong secret: %v", err)
	}
	if _, err := bad.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); ErrorCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("SDK call with a wrong secret: %v", err)
	}
	if err := e.client.Call(ctx, "FrontdeskNoSuchAction", nil, nil, true); ErrorCode(err) != "InvalidAction" {
		t.Errorf("unknown action: %v", err)
	}
	if ErrorCode(errors.New("plain")) != "" {
		t.Error("ErrorCode of a plain error must be empty")
	}
}

// A 5xx answer that is no EC2 document is still an *APIError; idempotent
// calls are retried, a maintenance event creation is sent once.
func TestCLIRetriesOnlyIdempotentCalls(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "bad gateway")
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, staticCreds(testCreds.SecretAccessKey), Options{MaxAttempts: 2})
	ctx := context.Background()

	err := c.CancelSpotInterruption(ctx, "i-00000000000000000")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "HTTP502" || !strings.Contains(ae.Message, "bad gateway") {
		t.Fatalf("err %v", err)
	}
	if n := hits.Swap(0); n != 2 {
		t.Errorf("idempotent call sent %d times, want 2", n)
	}
	if _, err := c.CreateMaintenanceEvent(ctx, "i-00000000000000000", MaintenanceEvent{Code: "system-reboot"}); err == nil {
		t.Fatal("want an error")
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("CreateMaintenanceEvent sent %d times, want 1", n)
	}
}

type recordingTransport struct{ sawWriterTo, body atomic.Value }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	_, ok := req.Body.(io.WriterTo)
	r.sawWriterTo.Store(ok)
	b, _ := io.ReadAll(req.Body)
	r.body.Store(string(b))
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

// The transport wrapper hides WriteTo (the SDK race's trigger) but passes
// the body through whole.
func TestCLIReadOnlyBodyTransportHidesWriteTo(t *testing.T) {
	rec := &recordingTransport{}
	req, err := http.NewRequest(http.MethodPost, "http://192.0.2.1/", strings.NewReader("Action=X"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := req.Body.(io.WriterTo); !ok {
		t.Fatal("test premise: the body should implement io.WriterTo")
	}
	if _, err := (ReadOnlyBodyTransport{Next: rec}).RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if rec.sawWriterTo.Load().(bool) || rec.body.Load().(string) != "Action=X" {
		t.Errorf("writerTo %v body %q", rec.sawWriterTo.Load(), rec.body.Load())
	}
}
