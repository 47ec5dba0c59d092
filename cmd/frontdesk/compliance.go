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
// usage for (its default retention).
const maxUsageWindow = 14 * 24 * time.Hour

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
	// UsageObservedSeconds is how long IMDSv1 usage had been recorded
	// (capped at the window); null when unknown.
	UsageObservedSeconds *int64 `json:"usageObservedSeconds"`
	Remediated           bool   `json:"remediated"`
	// Skipped says why --remediate left a NON_COMPLIANT instance alone.
	Skipped string `json:"skipped,omitempty"`
}

// usageView is what compliance knows of IMDSv1 usage: per instance, and how
// much of the window was observed (nil map: usage unknown).
type usageView struct {
	byID     map[string]apiclient.ImdsUsage
	observed time.Duration
	window   time.Duration
}

// evaluate applies the rule to every instance that is not terminated and
// joins what the data plane saw of its IMDSv1 calls (usage nil: unknown).
func evaluate(instances []instanceView, uv usageView) []complianceRow {
	usage := uv.byID
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
			obs := int64(min(uv.observed, uv.window) / time.Second)
			r.UsageObservedSeconds = &obs
			if !u.LastCall.IsZero() {
				t := u.LastCall.UTC()
				r.LastV1Call = &t
				r.LastV1Path = u.LastPath
				r.LastV1UserAgent = u.LastUserAgent
			}
		}
		r.Verdict = verdict(r, uv.window)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b complianceRow) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return rows
}

// verdict tells the operator what requiring IMDSv2 would do to a
// non-compliant instance: with no IMDSv1 call in the window nothing inside
// depends on it; otherwise the last caller's User-Agent points at what
// would break. For a compliant instance it reports refused IMDSv1 calls,
// the sign of something still trying. An instance without calls is "safe"
// only if usage was observed over the whole window: an empty history
// proves nothing.
func verdict(r complianceRow, window time.Duration) string {
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
		if r.UsageObservedSeconds != nil && time.Duration(*r.UsageObservedSeconds)*time.Second < window {
			return fmt.Sprintf("not yet safe (no IMDSv1 call, but usage observed for %s of %s)", shortDuration(time.Duration(*r.UsageObservedSeconds)*time.Second), shortDuration(window))
		}
		return verdictSafe
	}
	ua := r.LastV1UserAgent
	if ua == "" {
		ua = "none"
	}
	return fmt.Sprintf("still uses IMDSv1 (%d %s, last UA %s)", *r.ImdsV1Calls, plural(*r.ImdsV1Calls, "call", "calls"), ua)
}

// verdictSafe is the verdict of an instance that can be required.
const verdictSafe = "safe to require"

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func cmdCompliance(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "compliance", "frontdesk compliance [--json] [--window 24h] [--remediate [--dry-run] [--include-active]]")
	asJSON := c.fs.Bool("json", false, "print JSON instead of a table")
	window := c.fs.Duration("window", 24*time.Hour, "how far back to count IMDSv1 calls (up to the daemon's --usage-retention, default 336h)")
	remediate := c.fs.Bool("remediate", false, "require IMDSv2 (HttpTokens=required, HttpEndpoint=enabled) on every NON_COMPLIANT instance that made no IMDSv1 call in the window, observed whole")
	dryRun := c.fs.Bool("dry-run", false, "with --remediate: print what would be changed and change nothing")
	includeActive := c.fs.Bool("include-active", false, "with --remediate: also require IMDSv2 on instances that still use IMDSv1 or whose usage is not known (their IMDSv1 callers then get 401)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if *window < time.Second || *window > maxUsageWindow {
		return usageErr("--window must be between 1s and %s, such as 1h or 30m, not %s", maxUsageWindow, *window)
	}
	if (*dryRun || *includeActive) && !*remediate {
		return usageErr("--dry-run and --include-active go with --remediate")
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
	uv := usageView{window: *window}
	if len(ids) > 0 {
		uv, err = imdsUsage(ctx, cl, *window, ids)
		if err != nil {
			// Compliance does not depend on usage: report it and go on.
			fmt.Fprintf(e.stderr, "compliance: IMDSv1 usage not available (%v); shown as n/a\n", err)
		}
	}
	rows := evaluate(instances, uv)

	// In JSON form stdout carries only the document; messages go to stderr.
	msgs := e.stdout
	if *asJSON {
		msgs = e.stderr
	}
	if uv.byID != nil {
		fmt.Fprintf(msgs, "IMDSv1 usage observed for %s of the %s window (every node of the fleet)\n", shortDuration(min(uv.observed, *window).Round(time.Second)), shortDuration(*window))
	}
	var failed []error
	if *remediate {
		failed = remediateRows(ctx, cl, rows, msgs, *includeActive, *dryRun)
	}

	if *asJSON {
		if rows == nil {
			rows = []complianceRow{}
		}
		if err := writeJSON(e.stdout, rows); err != nil {
			return err
		}
	} else if err := complianceTable(e.stdout, rows, *window, *remediate && !*dryRun); err != nil {
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
func imdsUsage(ctx context.Context, cl *apiclient.Client, window time.Duration, ids []string) (usageView, error) {
	rep, err := cl.DescribeImdsUsageReport(ctx, window, ids)
	if err != nil {
		switch apiclient.ErrorCode(err) {
		case "InvalidAction", "UnsupportedOperation":
			return usageView{window: window}, errors.New("this control plane does not report " + apiclient.ActionDescribeImdsUsage)
		}
		return usageView{window: window}, err
	}
	m := make(map[string]apiclient.ImdsUsage, len(rep.Usage))
	for _, u := range rep.Usage {
		m[u.InstanceID] = u
	}
	return usageView{byID: m, observed: rep.Observed, window: window}, nil
}

// remediateRows requires IMDSv2 on each non-compliant instance that is
// safe to require (no IMDSv1 call in the window, observed whole), marking
// the rows it fixed and saying what it changed; it says why it skipped the
// others. includeActive requires it on those too, warning about the callers
// that now get 401. dryRun prints the plan and changes nothing.
func remediateRows(ctx context.Context, cl *apiclient.Client, rows []complianceRow, w io.Writer, includeActive, dryRun bool) []error {
	var failed []error
	for i := range rows {
		r := &rows[i]
		if r.Compliance != nonCompliant {
			continue
		}
		if r.Verdict != verdictSafe && !includeActive {
			r.Skipped = r.Verdict
			if dryRun {
				fmt.Fprintf(w, "would skip %s: %s\n", r.InstanceID, r.Verdict)
			} else {
				fmt.Fprintf(w, "skipped %s: %s; --include-active requires IMDSv2 on it anyway\n", r.InstanceID, r.Verdict)
			}
			continue
		}
		if dryRun {
			fmt.Fprintf(w, "would require IMDSv2 on %s (HttpTokens %s -> required, HttpEndpoint enabled): %s\n", r.InstanceID, r.HttpTokens, r.Verdict)
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
