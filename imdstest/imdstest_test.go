package imdstest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/frontdesk-imds/frontdesk/imdstest"
)

// get makes one raw request; token "" sends none.
func get(t *testing.T, s *imdstest.Server, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-aws-ec2-metadata-token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func newToken(t *testing.T, s *imdstest.Server, ttl string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", ttl)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token PUT: %d", resp.StatusCode)
	}
	return string(b)
}

func sdkGet(t *testing.T, s *imdstest.Server, path string) string {
	t.Helper()
	out, err := imds.New(imds.Options{Endpoint: s.URL()}).GetMetadata(context.Background(), &imds.GetMetadataInput{Path: path})
	if err != nil {
		t.Fatalf("GetMetadata(%s): %v", path, err)
	}
	defer out.Content.Close()
	b, _ := io.ReadAll(out.Content)
	return string(b)
}

func TestSDKUsesIMDSv2AndEveryCallIsRecorded(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t)
	if got := sdkGet(t, s, "instance-id"); got != s.InstanceID() {
		t.Fatalf("instance-id %q, want %q", got, s.InstanceID())
	}
	creds, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = imds.New(imds.Options{Endpoint: s.URL()}) }).
		Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := s.RoleCredentials(); creds.AccessKeyID != want.AccessKeyID || creds.SessionToken != want.SessionToken {
		t.Fatalf("SDK got %s, server serves %s", creds.AccessKeyID, want.AccessKeyID)
	}
	calls := s.Calls()
	paths := map[string]bool{}
	for _, c := range calls {
		paths[c.Path] = true
		if c.Status != 200 {
			t.Errorf("%s %s answered %d", c.Method, c.Path, c.Status)
		}
		if c.Method != http.MethodPut && !c.Token {
			t.Errorf("%s %s carried no token", c.Method, c.Path)
		}
		if !strings.Contains(c.UserAgent, "aws-sdk-go-v2") {
			t.Errorf("user agent %q", c.UserAgent)
		}
		if !c.Time.Equal(s.Now()) {
			t.Errorf("call time %v, want the server clock's %v", c.Time, s.Now())
		}
	}
	for _, p := range []string{"/latest/api/token", "/latest/meta-data/instance-id", "/latest/meta-data/iam/security-credentials/" + imdstest.DefaultRole} {
		if !paths[p] {
			t.Errorf("no call to %s among %+v", p, calls)
		}
	}
}

func TestParallelServersShareNothing(t *testing.T) {
	t.Parallel()
	a, b := imdstest.New(t), imdstest.New(t)
	if a.InstanceID() == b.InstanceID() || a.URL() == b.URL() {
		t.Fatalf("two servers look alike: %s %s, %s %s", a.InstanceID(), a.URL(), b.InstanceID(), b.URL())
	}
	if got := sdkGet(t, a, "instance-id"); got != a.InstanceID() {
		t.Fatalf("a serves %q", got)
	}
	if n := len(b.Calls()); n != 0 {
		t.Fatalf("b recorded %d of a's calls", n)
	}
	tokA := newToken(t, a, "60")
	if status, _ := get(t, b, "/latest/meta-data/instance-id", tokA); status != 401 {
		t.Fatalf("b accepted a's token: %d", status)
	}
}

func TestOptionsShapeTheInstance(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t,
		imdstest.WithInstanceID("i-0aaaabbbbccccdddd"),
		imdstest.WithInstanceType("m7g.large"),
		imdstest.WithRegion("eu-central-1"),
		imdstest.WithZone("eu-central-1c"),
		imdstest.WithTags(map[string]string{"Name": "web", "team": "core"}),
		imdstest.WithUserData([]byte("#!/bin/sh\necho hi\n")),
		imdstest.WithRole("web-role"),
		imdstest.WithMetadataOptions(imdstest.MetadataOptions{HttpTokens: "optional", HttpPutResponseHopLimit: 2}),
	)
	want := map[string]string{
		"/latest/meta-data/instance-id":                 "i-0aaaabbbbccccdddd",
		"/latest/meta-data/instance-type":               "m7g.large",
		"/latest/meta-data/placement/region":            "eu-central-1",
		"/latest/meta-data/placement/availability-zone": "eu-central-1c",
		"/latest/meta-data/tags/instance":               "Name\nteam",
		"/latest/meta-data/tags/instance/team":          "core",
		"/latest/user-data":                             "#!/bin/sh\necho hi\n",
		"/latest/meta-data/iam/security-credentials/":   "web-role",
		"/latest/meta-data/local-hostname":              "ip-192-0-2-10.eu-central-1.compute.internal",
	}
	for path, body := range want {
		// HttpTokens=optional: IMDSv1 works.
		if status, got := get(t, s, path, ""); status != 200 || got != body {
			t.Errorf("GET %s: %d %q, want 200 %q", path, status, got, body)
		}
	}
}

func TestMetadataOptionsAtRuntime(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t)
	if status, _ := get(t, s, "/latest/meta-data/instance-id", ""); status != 401 {
		t.Fatalf("IMDSv1 by default: %d, want 401 (tokens required)", status)
	}
	s.ModifyMetadataOptions(imdstest.MetadataOptions{HttpTokens: "optional"})
	if status, body := get(t, s, "/latest/meta-data/instance-id", ""); status != 200 || body != s.InstanceID() {
		t.Fatalf("IMDSv1 with tokens optional: %d %q", status, body)
	}
	s.ModifyMetadataOptions(imdstest.MetadataOptions{HttpEndpoint: "disabled"})
	if status, _ := get(t, s, "/latest/meta-data/instance-id", ""); status != 403 {
		t.Fatalf("endpoint disabled: %d, want 403", status)
	}
	if _, err := imds.New(imds.Options{Endpoint: s.URL()}).GetMetadata(context.Background(), &imds.GetMetadataInput{Path: "instance-id"}); err == nil {
		t.Fatal("the SDK read metadata from a disabled endpoint")
	}
}

func TestEventsAppearAndClear(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t, imdstest.WithMetadataOptions(imdstest.MetadataOptions{HttpTokens: "optional"}))
	at := s.Now().Add(2 * time.Minute)
	if status, _ := get(t, s, "/latest/meta-data/spot/instance-action", ""); status != 404 {
		t.Fatalf("spot/instance-action before an interruption: %d", status)
	}
	s.InterruptSpot("terminate", at)
	s.RecommendRebalance(s.Now())
	s.ScheduleMaintenance(imdstest.MaintenanceEvent{ID: "instance-event-0123456789abcdef0", Code: "system-reboot", Description: "scheduled reboot", NotBefore: at.Add(time.Hour)})
	s.SetTargetLifecycleState("Terminated")

	var action struct{ Action, Time string }
	_, body := get(t, s, "/latest/meta-data/spot/instance-action", "")
	if err := json.Unmarshal([]byte(body), &action); err != nil || action.Action != "terminate" || action.Time != at.Format("2006-01-02T15:04:05Z") {
		t.Errorf("spot/instance-action %q (%v)", body, err)
	}
	if _, body := get(t, s, "/latest/meta-data/instance-life-cycle", ""); body != "spot" {
		t.Errorf("instance-life-cycle %q", body)
	}
	if _, body := get(t, s, "/latest/meta-data/events/recommendations/rebalance", ""); !strings.Contains(body, s.Now().Format("2006-01-02T15:04:05Z")) {
		t.Errorf("rebalance %q", body)
	}
	var events []map[string]string
	_, body = get(t, s, "/latest/meta-data/events/maintenance/scheduled", "")
	if err := json.Unmarshal([]byte(body), &events); err != nil || len(events) != 1 || events[0]["Code"] != "system-reboot" || events[0]["EventId"] != "instance-event-0123456789abcdef0" {
		t.Errorf("scheduled events %q (%v)", body, err)
	}
	if _, body := get(t, s, "/latest/meta-data/autoscaling/target-lifecycle-state", ""); body != "Terminated" {
		t.Errorf("target-lifecycle-state %q", body)
	}

	s.ClearEvents()
	for _, p := range []string{"/latest/meta-data/spot/instance-action", "/latest/meta-data/events/recommendations/rebalance"} {
		if status, _ := get(t, s, p, ""); status != 404 {
			t.Errorf("%s after ClearEvents: %d", p, status)
		}
	}
	if _, body := get(t, s, "/latest/meta-data/events/maintenance/scheduled", ""); body != "[]" {
		t.Errorf("scheduled after ClearEvents: %q", body)
	}
}

func TestTokensExpireOnTheServerClock(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t)
	tok := newToken(t, s, "60")
	s.Advance(59 * time.Second)
	if status, _ := get(t, s, "/latest/meta-data/instance-id", tok); status != 200 {
		t.Fatalf("token after 59 of 60 s: %d", status)
	}
	s.Advance(time.Second)
	if status, _ := get(t, s, "/latest/meta-data/instance-id", tok); status != 401 {
		t.Fatalf("token after 60 of 60 s: %d, want 401", status)
	}
}

func TestRoleCredentialsRotateFailAndExpire(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t, imdstest.WithCredentialLifetime(time.Hour))
	first := s.RoleCredentials()
	if first.Code != "Success" || !first.Expiration.Equal(s.Now().Add(time.Hour)) {
		t.Fatalf("first credentials %+v at %v", first, s.Now())
	}

	s.RotateCredentials()
	rotated := s.RoleCredentials()
	if rotated.AccessKeyID == first.AccessKeyID {
		t.Fatal("RotateCredentials served the same key")
	}

	// Refreshed in the background before expiry, as the daemon does.
	s.Advance(50 * time.Minute)
	if c := s.RoleCredentials(); c.AccessKeyID == rotated.AccessKeyID || c.Code != "Success" {
		t.Fatalf("10 minutes before expiry the credentials were not refreshed: %+v", c)
	}

	s.FailCredentials("AssumeRoleUnauthorizedAccess", "EC2 cannot assume the role.")
	valid := s.RoleCredentials()
	if valid.Code != "Success" {
		t.Fatalf("valid credentials stopped being served on the first failure: %+v", valid)
	}
	s.Advance(valid.Expiration.Add(time.Second).Sub(s.Now()))
	failed := s.RoleCredentials()
	if failed.Code != "AssumeRoleUnauthorizedAccess" || failed.AccessKeyID != "" {
		t.Fatalf("after expiry with fetches failing: %+v", failed)
	}
	status, body := get(t, s, "/latest/meta-data/iam/security-credentials/"+imdstest.DefaultRole, newToken(t, s, "60"))
	if status != 200 || !strings.Contains(body, `"Code" : "AssumeRoleUnauthorizedAccess"`) {
		t.Fatalf("served %d %q", status, body)
	}
	if _, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = imds.New(imds.Options{Endpoint: s.URL()}) }).
		Retrieve(context.Background()); err == nil {
		t.Fatal("the SDK accepted a failed credentials entry")
	}

	s.RecoverCredentials()
	if c := s.RoleCredentials(); c.Code != "Success" || !c.Expiration.After(s.Now()) {
		t.Fatalf("after RecoverCredentials: %+v", c)
	}
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t, imdstest.WithMetadataOptions(imdstest.MetadataOptions{HttpTokens: "optional"}))
	s.SetRateLimit(1, 2)
	var statuses []int
	for range 3 {
		status, _ := get(t, s, "/latest/meta-data/instance-id", "")
		statuses = append(statuses, status)
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 429 {
		t.Fatalf("statuses %v, want 200 200 429", statuses)
	}
	s.Advance(time.Second)
	if status, _ := get(t, s, "/latest/meta-data/instance-id", ""); status != 200 {
		t.Fatalf("a second later: %d", status)
	}
	s.SetRateLimit(0, 0)
	for range 5 {
		if status, _ := get(t, s, "/latest/meta-data/instance-id", ""); status != 200 {
			t.Fatalf("unthrottled: %d", status)
		}
	}
}

func TestNoRoleMeansNoCredentials(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t, imdstest.WithRole(""), imdstest.WithMetadataOptions(imdstest.MetadataOptions{HttpTokens: "optional"}))
	if status, _ := get(t, s, "/latest/meta-data/iam/security-credentials/", ""); status != 404 {
		t.Fatalf("iam/security-credentials/ without a role: %d", status)
	}
}

func TestBadOptionsFailStart(t *testing.T) {
	for name, o := range map[string]imdstest.Option{
		"bad_instance_id":   imdstest.WithInstanceID("vm-1"),
		"bad_http_tokens":   imdstest.WithMetadataOptions(imdstest.MetadataOptions{HttpTokens: "sometimes"}),
		"user_data_too_big": imdstest.WithUserData(make([]byte, 16*1024+1)),
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := imdstest.Start(o); err == nil {
				s.Close()
				t.Fatal("started")
			}
		})
	}
}

// The signing keys are made on the first request for a signature (the
// signatures themselves are checked in internal/identity).
func TestIdentityDocumentIsSigned(t *testing.T) {
	t.Parallel()
	s := imdstest.New(t)
	tok := newToken(t, s, "300")
	status, doc := get(t, s, "/latest/dynamic/instance-identity/document", tok)
	if status != 200 || !strings.Contains(doc, `"instanceId" : "`+s.InstanceID()+`"`) {
		t.Fatalf("document: %d %q", status, doc)
	}
	for _, form := range []string{"signature", "pkcs7", "rsa2048"} {
		if status, body := get(t, s, "/latest/dynamic/instance-identity/"+form, tok); status != 200 || len(body) < 100 {
			t.Errorf("%s: %d, %d bytes", form, status, len(body))
		}
	}
}
