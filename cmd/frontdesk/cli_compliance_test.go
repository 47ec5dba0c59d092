package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	v1usage "github.com/frontdesk-imds/frontdesk/internal/usage"
)

func parseCompliance(t *testing.T, out string) map[string]complianceRow {
	t.Helper()
	var rows []complianceRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("compliance --json: %v\n%s", err, out)
	}
	m := map[string]complianceRow{}
	for _, r := range rows {
		m[r.InstanceID] = r
	}
	return m
}

// Through the real daemon: the optional demo instance, which made IMDSv1
// calls, is NON_COMPLIANT and still in use; an optional one that made none
// is not yet safe on a fresh daemon's short history, safe in a short window;
// --remediate requires IMDSv2 on it alone, --include-active on the demo
// too, after which the demo's tokenless GET is refused and the report is
// clean.
func TestCLIComplianceThroughDaemon(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional")
	started := time.Now() // the daemon observes IMDSv1 usage from (before) now
	idle := strings.TrimSpace(d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.2", "--http-tokens", "optional", "--tag", "Name=idle"))
	good := strings.TrimSpace(d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.3", "--http-tokens", "required"))
	gone := strings.TrimSpace(d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.4", "--http-tokens", "optional"))
	d.cli(t, "instances", "terminate", gone)
	for range 3 {
		if s, _, _ := d.do(t, "GET", "/latest/meta-data/instance-id", map[string]string{"User-Agent": "legacy-agent/1.0"}); s != 200 {
			t.Fatalf("v1 GET: %d", s)
		}
	}

	r := d.cliResult(t, "compliance")
	if r.code() != 1 {
		t.Fatalf("compliance with optional instances: exit %d (%v), want 1\n%s", r.code(), r.err, r.stdout)
	}
	for _, want := range []string{
		demoInstanceID + `\s+frontdesk-demo\s+ec2-imdsv2-check\s+NON_COMPLIANT\s+optional\s+3\s+still uses IMDSv1 \(3 calls, last UA legacy-agent/1\.0\)`,
		idle + `\s+idle\s+ec2-imdsv2-check\s+NON_COMPLIANT\s+optional\s+0\s+not yet safe`,
		good + `\s+-\s+ec2-imdsv2-check\s+COMPLIANT\s+required\s+0\s+-`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("table lacks /%s/:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, gone) {
		t.Errorf("a terminated instance is listed:\n%s", r.stdout)
	}

	r = d.cliResult(t, "compliance", "--json", "--window", "10m")
	if r.code() != 1 {
		t.Fatalf("compliance --json: exit %d (%v)", r.code(), r.err)
	}
	rows := parseCompliance(t, r.stdout)
	demo := rows[demoInstanceID]
	if len(rows) != 3 || demo.Compliance != "NON_COMPLIANT" || demo.Rule != "ec2-imdsv2-check" || demo.HttpTokens != "optional" ||
		demo.ImdsV1Calls == nil || *demo.ImdsV1Calls != 3 || demo.LastV1UserAgent != "legacy-agent/1.0" ||
		demo.LastV1Call == nil || time.Since(*demo.LastV1Call) > time.Minute || demo.Remediated {
		t.Errorf("json rows %+v; demo %+v", rows, demo)
	}
	if g := rows[good]; g.Compliance != "COMPLIANT" || g.ImdsV1Calls == nil || *g.ImdsV1Calls != 0 || g.LastV1Call != nil {
		t.Errorf("compliant row %+v", g)
	}

	// --remediate requires IMDSv2 on the idle instance only (its short
	// window was watched whole) and leaves the one still in use alone.
	time.Sleep(time.Until(started.Add(2 * time.Second))) // the 1s window must have been watched whole
	r = d.cliResult(t, "compliance", "--remediate", "--window", "1s")
	if r.code() != 1 || !strings.Contains(r.stdout, "remediated "+idle+":") || !strings.Contains(r.stdout, "skipped "+demoInstanceID+": still uses IMDSv1") {
		t.Fatalf("compliance --remediate: exit %d (%v)\n%s", r.code(), r.err, r.stdout)
	}
	if list := d.cliInstances(t); list[demoInstanceID].HttpTokens != "optional" {
		t.Fatalf("--remediate changed the instance still in use: %+v", list[demoInstanceID])
	}
	r = d.cliResult(t, "compliance", "--remediate", "--include-active", "--window", "1s")
	if r.code() != 0 {
		t.Fatalf("compliance --remediate --include-active: exit %d (%v)\n%s", r.code(), r.err, r.stdout)
	}
	for _, want := range []string{"remediated " + demoInstanceID + ": HttpTokens optional -> required", "warning: " + demoInstanceID + " made 3 IMDSv1 calls"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--remediate output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "remediated "+good) {
		t.Errorf("a compliant instance was remediated:\n%s", r.stdout)
	}
	list := d.cliInstances(t)
	if list[demoInstanceID].HttpTokens != "required" || list[idle].HttpTokens != "required" || list[demoInstanceID].HttpEndpoint != "enabled" {
		t.Errorf("after --remediate: demo %+v idle %+v", list[demoInstanceID], list[idle])
	}
	d.waitGuest(t, "127.0.0.1", "/latest/meta-data/instance-id", false, 401)

	r = d.cliResult(t, "compliance", "--json")
	if r.code() != 0 {
		t.Fatalf("compliance after remediation: exit %d (%v)", r.code(), r.err)
	}
	if demo := parseCompliance(t, r.stdout)[demoInstanceID]; demo.Compliance != "COMPLIANT" || demo.ImdsV1Rejected == nil || *demo.ImdsV1Rejected < 1 || demo.Verdict == "-" {
		t.Errorf("demo after remediation: %+v (the refused tokenless GET must show)", demo)
	}
}

// cpEnv is a control plane behind httptest whose IMDSv1 usage the test
// decides, with its admin credentials in a data dir as serve writes them.
type cpEnv struct {
	url, dataDir string
	client       *apiclient.Client
	mu           sync.Mutex
	usage        []v1usage.Summary
	observed     time.Time
}

func newCPEnv(t *testing.T, wrap func(http.Handler) http.Handler) *cpEnv {
	t.Helper()
	creds := controlplane.AdminCredentials{AccessKeyID: "AKIAFRONTDESKCLITEST", SecretAccessKey: "frontdesk/cli/test/secret/0123456789abcdef"}
	store := memstore.New()
	t.Cleanup(func() { _ = store.Close() })
	c := &cpEnv{dataDir: t.TempDir(), observed: time.Now().Add(-30 * 24 * time.Hour)}
	cp := controlplane.New(store, creds, controlplane.Options{V1Usage: func(_ context.Context, w time.Duration) (*v1usage.Report, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return v1usage.NewReport(w, time.Now(), c.observed, c.usage), nil
	}})
	h := cp.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c.url = srv.URL
	if err := controlplane.WriteSharedCredentialsFile(filepath.Join(c.dataDir, "admin.credentials"), creds); err != nil {
		t.Fatal(err)
	}
	c.client = apiclient.New(srv.URL, credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""), apiclient.Options{})
	return c
}

func (c *cpEnv) launch(t *testing.T, addr string, tokens types.HttpTokensState) string {
	t.Helper()
	out, err := c.client.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0abcdef1234567890"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		PrivateIpAddress: aws.String(addr), MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: tokens},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

func (c *cpEnv) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return cliRun(t, "", append(args, "--endpoint", c.url, "--data-dir", c.dataDir)...)
}

// The verdict comes from the usage the control plane reports: the last
// caller's User-Agent for an instance in use, "safe to require" for one
// without calls.
func TestCLIComplianceVerdictFromUsage(t *testing.T) {
	c := newCPEnv(t, nil)
	busy := c.launch(t, "192.0.2.10", types.HttpTokensStateOptional)
	quiet := c.launch(t, "192.0.2.11", types.HttpTokensStateOptional)
	last := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.mu.Lock()
	c.usage = []v1usage.Summary{{InstanceID: busy, Calls: 42, LastCall: last, LastPath: "/latest/meta-data/iam/security-credentials/", LastUserAgent: "aws-cli/1.16"}}
	c.mu.Unlock()

	r := c.cli(t, "compliance", "--json")
	if r.code() != 1 {
		t.Fatalf("exit %d (%v)", r.code(), r.err)
	}
	rows := parseCompliance(t, r.stdout)
	b, q := rows[busy], rows[quiet]
	if b.ImdsV1Calls == nil || *b.ImdsV1Calls != 42 || b.LastV1Call == nil || !b.LastV1Call.Equal(last) || b.LastV1UserAgent != "aws-cli/1.16" ||
		b.LastV1Path != "/latest/meta-data/iam/security-credentials/" || b.Verdict != "still uses IMDSv1 (42 calls, last UA aws-cli/1.16)" {
		t.Errorf("busy row %+v", b)
	}
	if q.ImdsV1Calls == nil || *q.ImdsV1Calls != 0 || q.Verdict != "safe to require" {
		t.Errorf("quiet row %+v", q)
	}
	if !strings.Contains(r.err.Error(), "2 of 2 instances NON_COMPLIANT") {
		t.Errorf("error %v", r.err)
	}

	// --dry-run prints the plan and changes nothing.
	r = c.cli(t, "compliance", "--remediate", "--dry-run")
	if !strings.Contains(r.stdout, "would require IMDSv2 on "+quiet) || !strings.Contains(r.stdout, "would skip "+busy+": still uses IMDSv1") {
		t.Errorf("dry run plan:\n%s", r.stdout)
	}
	// --remediate leaves the instance still called over IMDSv1 alone and
	// says why. In JSON form, messages stay off stdout, which remains one
	// document whose rows say what was fixed and what was skipped.
	r = c.cli(t, "compliance", "--json", "--remediate")
	if r.code() != 1 {
		t.Fatalf("--remediate with an active instance left: exit %d (%v), want 1", r.code(), r.err)
	}
	rows = parseCompliance(t, r.stdout)
	if rows[busy].Remediated || !strings.HasPrefix(rows[busy].Skipped, "still uses IMDSv1") || !rows[quiet].Remediated ||
		!strings.Contains(r.stderr, "skipped "+busy) || !strings.Contains(r.stderr, "remediated "+quiet) {
		t.Errorf("rows %+v stderr %q", rows, r.stderr)
	}
	r = c.cli(t, "compliance", "--json", "--remediate", "--include-active")
	if r.code() != 0 {
		t.Fatalf("--remediate --include-active: exit %d (%v)", r.code(), r.err)
	}
	if rows = parseCompliance(t, r.stdout); !rows[busy].Remediated || !strings.Contains(r.stderr, "warning: "+busy+" made 42 IMDSv1 calls") {
		t.Errorf("rows %+v stderr %q", rows, r.stderr)
	}
}

// "safe" is never claimed on an empty history: an instance without calls
// is not safe until usage was observed over the whole window, and
// --remediate leaves it alone.
func TestCLIComplianceNeedsTheWindowObserved(t *testing.T) {
	c := newCPEnv(t, nil)
	quiet := c.launch(t, "192.0.2.12", types.HttpTokensStateOptional)
	c.mu.Lock()
	c.observed = time.Now().Add(-5 * time.Minute)
	c.mu.Unlock()
	r := c.cli(t, "compliance", "--remediate", "--window", "24h")
	if !strings.Contains(r.stdout, "IMDSv1 usage observed for 5m of the 24h window") || !strings.Contains(r.stdout, "skipped "+quiet+": not yet safe") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	r = c.cli(t, "compliance", "--remediate", "--window", "1m")
	if !strings.Contains(r.stdout, "remediated "+quiet) {
		t.Errorf("a window observed whole: stdout:\n%s", r.stdout)
	}
}

// A control plane without FrontdeskDescribeImdsUsage still gets a
// compliance report, with the usage shown as n/a rather than as zero.
func TestCLIComplianceWithoutUsageAction(t *testing.T) {
	c := newCPEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if bytes.Contains(b, []byte("Action="+apiclient.ActionDescribeImdsUsage)) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidAction</Code><Message>The action is not valid for this web service.</Message></Error></Errors><RequestID>r</RequestID></Response>`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			next.ServeHTTP(w, r)
		})
	})
	id := c.launch(t, "192.0.2.20", types.HttpTokensStateOptional)
	r := c.cli(t, "compliance")
	if r.code() != 1 {
		t.Fatalf("exit %d (%v)", r.code(), r.err)
	}
	if !regexp.MustCompile(id+`\s+-\s+ec2-imdsv2-check\s+NON_COMPLIANT\s+optional\s+n/a\s+unknown`).MatchString(r.stdout) || !strings.Contains(r.stderr, "n/a") {
		t.Errorf("stdout:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
	r = c.cli(t, "compliance", "--json")
	if row := parseCompliance(t, r.stdout)[id]; row.ImdsV1Calls != nil || row.ImdsV1Rejected != nil || !strings.Contains(r.stdout, `"imdsV1Calls": null`) {
		t.Errorf("row %+v: usage must be null, not zero", row)
	}
}

func TestCLIComplianceVerdicts(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	cases := []struct {
		name string
		row  complianceRow
		want string
	}{
		{"compliant_without_refusals_has_no_verdict", complianceRow{Compliance: compliant, ImdsV1Calls: n(0), ImdsV1Rejected: n(0)}, "-"},
		{"compliant_with_refusals_reports_them", complianceRow{Compliance: compliant, ImdsV1Calls: n(0), ImdsV1Rejected: n(7)}, "7 IMDSv1 calls refused"},
		{"one_refusal_is_singular", complianceRow{Compliance: compliant, ImdsV1Calls: n(0), ImdsV1Rejected: n(1)}, "1 IMDSv1 call refused"},
		{"non_compliant_without_calls_is_safe", complianceRow{Compliance: nonCompliant, ImdsV1Calls: n(0), UsageObservedSeconds: n(3600)}, "safe to require"},
		{"non_compliant_without_calls_on_a_short_history_is_not_safe", complianceRow{Compliance: nonCompliant, ImdsV1Calls: n(0), UsageObservedSeconds: n(60)}, "not yet safe (no IMDSv1 call, but usage observed for 1m of 1h)"},
		{"non_compliant_with_calls_names_the_caller", complianceRow{Compliance: nonCompliant, ImdsV1Calls: n(5), LastV1UserAgent: "curl/8.0"}, "still uses IMDSv1 (5 calls, last UA curl/8.0)"},
		{"non_compliant_without_usage_is_unknown", complianceRow{Compliance: nonCompliant}, "unknown (no usage data)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdict(tc.row, time.Hour); got != tc.want {
				t.Errorf("verdict = %q, want %q", got, tc.want)
			}
		})
	}
}
