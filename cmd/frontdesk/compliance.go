package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// ruleIMDSv2 is AWS Config's managed rule: an instance is NON_COMPLIANT
// when HttpTokens is optional.
const ruleIMDSv2 = "ec2-imdsv2-check"

// maxUsageWindow is the longest window the control plane keeps IMDSv1
// usage for.
const maxUsageWindow = 24 * time.Hour

// Compliance values, as AWS Config spells them.
const (
	compliant    = "COMPLIANT"
	nonCompliant = "NON_COMPLIANT"
)

// complianceRow is one instance's finding; `compliance --json` prints an
// array of them. The IMDSv1 figures are null when the control plane cannot
// report usage, so "no calls" and "unknown" stay apart.
type complianceRow struct {
	InstanceID      string     `json:"instanceId"`
	Name            string     `json:"name,omitempty"`
	Rule            string     `json:"rule"`
	Compliance      string     `json:"compliance"`
	HttpTokens      string     `json:"httpTokens"`
	ImdsV1Calls     *int64     `json:"imdsV1Calls"`
	ImdsV1Rejected  *int64     `json:"imdsV1Rejected"`
	LastV1Call      *time.Time `json:"lastV1Call"`
	LastV1Path      string     `json:"lastV1Path,omitempty"`
	LastV1UserAgent string     `json:"lastV1UserAgent,omitempty"`
	Verdict         string     `json:"verdict"`
	Remediated      bool       `json:"remediated"`
}

// evaluate applies the rule to every instance that is not terminated and
// joins what the data plane saw of its IMDSv1 calls (usage nil: unknown).
func evaluate(instances []instanceView, usage map[string]apiclient.ImdsUsage) []complianceRow {
	var rows []complianceRow
	for _, in := range instances {
		if in.State == string(types.InstanceStateNameTerminated) || in.State == string(types.InstanceStateNameShuttingDown) {
			continue
		}
		r := complianceRow{
			InstanceID: in.InstanceID,
			Name:       in.Tags["Name"],
			Rule:       ruleIMDSv2,
			Compliance: compliant,
			HttpTokens: in.HttpTokens,
		}
		if in.HttpTokens == string(types.HttpTokensStateOptional) {
			r.Compliance = nonCompliant
		}
		if usage != nil {
			u := usage[in.InstanceID] // absent: no calls seen
			r.ImdsV1Calls, r.ImdsV1Rejected = &u.V1Calls, &u.V1Rejected
			if !u.LastCall.IsZero() {
				t := u.LastCall.UTC()
				r.LastV1Call = &t
				r.LastV1Path = u.LastPath
				r.LastV1UserAgent = u.LastUserAgent
			}
		}
		r.Verdict = verdict(r)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b complianceRow) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return rows
}

// verdict tells the operator what requiring IMDSv2 would do to a
// non-compliant instance: with no IMDSv1 call in the window nothing inside
// depends on it; otherwise the last caller's User-Agent points at what
// would break. For a compliant instance it reports refused IMDSv1 calls,
// the sign of something still trying.
func verdict(r complianceRow) string {
	if r.Compliance == compliant {
		if r.ImdsV1Rejected != nil && *r.ImdsV1Rejected > 0 {
			return fmt.Sprintf("%d IMDSv1 %s refused", *r.ImdsV1Rejected, plural(*r.ImdsV1Rejected, "call", "calls"))
		}
		return "-"
	}
	if r.ImdsV1Calls == nil {
		return "unknown (no usage data)"
	}
	if *r.ImdsV1Calls == 0 {
		return "safe to require"
	}
	ua := r.LastV1UserAgent
	if ua == "" {
		ua = "none"
	}
	return fmt.Sprintf("still uses IMDSv1 (%d %s, last UA %s)", *r.ImdsV1Calls, plural(*r.ImdsV1Calls, "call", "calls"), ua)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func cmdCompliance(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "compliance", "frontdesk compliance [--json] [--window 1h] [--remediate]")
	asJSON := c.fs.Bool("json", false, "print JSON instead of a table")
	window := c.fs.Duration("window", time.Hour, "how far back to count IMDSv1 calls")
	remediate := c.fs.Bool("remediate", false, "require IMDSv2 (HttpTokens=required, HttpEndpoint=enabled) on every NON_COMPLIANT instance")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if *window < time.Second || *window > maxUsageWindow {
		return usageErr("--window must be between 1s and %s, such as 1h or 30m, not %s", maxUsageWindow, *window)
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	instances, err := describeAll(ctx, cl, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)})
	if err != nil {
		return fmt.Errorf("compliance: %w", err)
	}
	var ids []string
	for _, in := range instances {
		if in.State != string(types.InstanceStateNameTerminated) {
			ids = append(ids, in.InstanceID)
		}
	}
	var usage map[string]apiclient.ImdsUsage
	if len(ids) > 0 {
		usage, err = imdsUsage(ctx, cl, *window, ids)
		if err != nil {
			// Compliance does not depend on usage: report it and go on.
			fmt.Fprintf(e.stderr, "compliance: IMDSv1 usage not available (%v); shown as n/a\n", err)
		}
	}
	rows := evaluate(instances, usage)

	// In JSON form stdout carries only the document; messages go to stderr.
	msgs := e.stdout
	if *asJSON {
		msgs = e.stderr
	}
	var failed []error
	if *remediate {
		failed = remediateRows(ctx, cl, rows, msgs)
	}

	if *asJSON {
		if rows == nil {
			rows = []complianceRow{}
		}
		if err := writeJSON(e.stdout, rows); err != nil {
			return err
		}
	} else if err := complianceTable(e.stdout, rows, *window, *remediate); err != nil {
		return err
	}

	open := 0
	for _, r := range rows {
		if r.Compliance == nonCompliant && !r.Remediated {
			open++
		}
	}
	if open == 0 {
		return nil
	}
	err = fmt.Errorf("compliance: %d of %d instances NON_COMPLIANT with %s", open, len(rows), ruleIMDSv2)
	if len(failed) > 0 {
		err = fmt.Errorf("%w; remediation failed: %w", err, errors.Join(failed...))
	}
	return &exitError{code: 1, err: err}
}

// imdsUsage asks the control plane for IMDSv1 usage, by instance.
func imdsUsage(ctx context.Context, cl *apiclient.Client, window time.Duration, ids []string) (map[string]apiclient.ImdsUsage, error) {
	us, err := cl.DescribeImdsUsage(ctx, window, ids)
	if err != nil {
		switch apiclient.ErrorCode(err) {
		case "InvalidAction", "UnsupportedOperation":
			return nil, errors.New("this control plane does not report " + apiclient.ActionDescribeImdsUsage)
		}
		return nil, err
	}
	m := make(map[string]apiclient.ImdsUsage, len(us))
	for _, u := range us {
		m[u.InstanceID] = u
	}
	return m, nil
}

// remediateRows requires IMDSv2 on each non-compliant instance, marking the
// rows it fixed and saying what it changed. It warns when an instance was
// still using IMDSv1: those callers now get 401 until they take a token.
func remediateRows(ctx context.Context, cl *apiclient.Client, rows []complianceRow, w io.Writer) []error {
	var failed []error
	for i := range rows {
		r := &rows[i]
		if r.Compliance != nonCompliant {
			continue
		}
		_, err := cl.EC2().ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
			InstanceId:   aws.String(r.InstanceID),
			HttpTokens:   types.HttpTokensStateRequired,
			HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
		})
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", r.InstanceID, err))
			fmt.Fprintf(w, "remediation of %s failed: %v\n", r.InstanceID, err)
			continue
		}
		r.Remediated = true
		fmt.Fprintf(w, "remediated %s: HttpTokens %s -> required, HttpEndpoint enabled\n", r.InstanceID, r.HttpTokens)
		if r.ImdsV1Calls != nil && *r.ImdsV1Calls > 0 {
			fmt.Fprintf(w, "warning: %s made %d IMDSv1 calls in the window (last User-Agent %q); they now get 401\n", r.InstanceID, *r.ImdsV1Calls, r.LastV1UserAgent)
		}
	}
	return failed
}

func complianceTable(w io.Writer, rows []complianceRow, window time.Duration, remediate bool) error {
	head := []string{"INSTANCE ID", "NAME", "RULE", "COMPLIANCE", "HTTP TOKENS", "IMDSV1 CALLS (" + shortDuration(window) + ")", "VERDICT"}
	if remediate {
		head = append(head, "REMEDIATED")
	}
	out := [][]string{head}
	for _, r := range rows {
		calls := "n/a"
		if r.ImdsV1Calls != nil {
			calls = strconv.FormatInt(*r.ImdsV1Calls, 10)
		}
		row := []string{r.InstanceID, dash(r.Name), r.Rule, r.Compliance, dash(r.HttpTokens), calls, r.Verdict}
		if remediate {
			row = append(row, map[bool]string{true: "yes", false: "-"}[r.Remediated])
		}
		out = append(out, row)
	}
	return table(w, out)
}

// shortDuration prints 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
