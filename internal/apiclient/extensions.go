package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Names of frontdesk's extension actions (internal/controlplane's
// EXTENSIONS.md documents their parameters). The client keeps its own copy
// so that it does not link the server; a test checks them against the
// server's list.
const (
	ActionSendSpotInterruption          = "FrontdeskSendSpotInterruption"
	ActionCancelSpotInterruption        = "FrontdeskCancelSpotInterruption"
	ActionSendRebalanceRecommendation   = "FrontdeskSendRebalanceRecommendation"
	ActionCancelRebalanceRecommendation = "FrontdeskCancelRebalanceRecommendation"
	ActionCreateMaintenanceEvent        = "FrontdeskCreateMaintenanceEvent"
	ActionCompleteMaintenanceEvent      = "FrontdeskCompleteMaintenanceEvent"
	ActionCancelMaintenanceEvent        = "FrontdeskCancelMaintenanceEvent"
	ActionSetTargetLifecycleState       = "FrontdeskSetTargetLifecycleState"
	ActionDescribeImdsUsage             = "FrontdeskDescribeImdsUsage"
)

// extensionAnswer is the common shape of the event actions' answers.
type extensionAnswer struct {
	InstanceID string `xml:"instanceId"`
	EventID    string `xml:"eventId"`
	Return     bool   `xml:"return"`
}

func (c *Client) event(ctx context.Context, action string, p url.Values, idempotent bool) (extensionAnswer, error) {
	var a extensionAnswer
	if err := c.Call(ctx, action, p, &a, idempotent); err != nil {
		return a, err
	}
	if !a.Return {
		return a, fmt.Errorf("%s: the control plane did not confirm the change", action)
	}
	return a, nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// SendSpotInterruption announces a Spot interruption: action is
// terminate, stop or hibernate ("" lets the server pick terminate), at the
// given time (zero: the server's now + 2 minutes).
func (c *Client) SendSpotInterruption(ctx context.Context, instanceID, action string, at time.Time) error {
	p := url.Values{"InstanceId": {instanceID}}
	if action != "" {
		p.Set("SpotAction", action)
	}
	if !at.IsZero() {
		p.Set("Time", rfc3339(at))
	}
	_, err := c.event(ctx, ActionSendSpotInterruption, p, true)
	return err
}

// CancelSpotInterruption withdraws a Spot interruption notice.
func (c *Client) CancelSpotInterruption(ctx context.Context, instanceID string) error {
	_, err := c.event(ctx, ActionCancelSpotInterruption, url.Values{"InstanceId": {instanceID}}, true)
	return err
}

// SendRebalanceRecommendation serves a rebalance recommendation noticed at
// at (zero: the server's now).
func (c *Client) SendRebalanceRecommendation(ctx context.Context, instanceID string, at time.Time) error {
	p := url.Values{"InstanceId": {instanceID}}
	if !at.IsZero() {
		p.Set("NoticeTime", rfc3339(at))
	}
	_, err := c.event(ctx, ActionSendRebalanceRecommendation, p, true)
	return err
}

// CancelRebalanceRecommendation withdraws a rebalance recommendation.
func (c *Client) CancelRebalanceRecommendation(ctx context.Context, instanceID string) error {
	_, err := c.event(ctx, ActionCancelRebalanceRecommendation, url.Values{"InstanceId": {instanceID}}, true)
	return err
}

// MaintenanceEvent describes a scheduled event to create; empty fields take
// the server's defaults.
type MaintenanceEvent struct {
	// Code is the event code, e.g. system-reboot (required).
	Code string
	// Description defaults to the code's usual text.
	Description string
	// NotBefore defaults to the server's now + 24 h.
	NotBefore time.Time
	// NotAfter is optional and must follow NotBefore.
	NotAfter time.Time
}

// CreateMaintenanceEvent schedules ev on the instance and returns the event
// id (instance-event-…). It is sent once: a retry could schedule two.
func (c *Client) CreateMaintenanceEvent(ctx context.Context, instanceID string, ev MaintenanceEvent) (string, error) {
	p := url.Values{"InstanceId": {instanceID}, "Code": {ev.Code}}
	if ev.Description != "" {
		p.Set("Description", ev.Description)
	}
	if !ev.NotBefore.IsZero() {
		p.Set("NotBefore", rfc3339(ev.NotBefore))
	}
	if !ev.NotAfter.IsZero() {
		p.Set("NotAfter", rfc3339(ev.NotAfter))
	}
	a, err := c.event(ctx, ActionCreateMaintenanceEvent, p, false)
	if err != nil {
		return "", err
	}
	if a.EventID == "" {
		return "", errors.New(ActionCreateMaintenanceEvent + ": the answer carries no eventId")
	}
	return a.EventID, nil
}

// CompleteMaintenanceEvent moves a scheduled event to the history as
// completed.
func (c *Client) CompleteMaintenanceEvent(ctx context.Context, instanceID, eventID string) error {
	_, err := c.event(ctx, ActionCompleteMaintenanceEvent, url.Values{"InstanceId": {instanceID}, "EventId": {eventID}}, true)
	return err
}

// CancelMaintenanceEvent moves a scheduled event to the history as
// canceled.
func (c *Client) CancelMaintenanceEvent(ctx context.Context, instanceID, eventID string) error {
	_, err := c.event(ctx, ActionCancelMaintenanceEvent, url.Values{"InstanceId": {instanceID}, "EventId": {eventID}}, true)
	return err
}

// SetTargetLifecycleState serves an Auto Scaling target lifecycle state
// (e.g. InService, Terminated); "" clears it.
func (c *Client) SetTargetLifecycleState(ctx context.Context, instanceID, state string) error {
	_, err := c.event(ctx, ActionSetTargetLifecycleState, url.Values{"InstanceId": {instanceID}, "State": {state}}, true)
	return err
}

// ImdsUsage is what the data plane saw of one instance's IMDSv1 calls
// within the window asked for.
type ImdsUsage struct {
	// InstanceID is the instance.
	InstanceID string
	// V1Calls counts tokenless calls that were answered (HttpTokens=optional).
	V1Calls int64
	// V1Rejected counts tokenless calls refused with 401 (HttpTokens=required).
	V1Rejected int64
	// LastCall is the time of the latest tokenless call (zero: none).
	LastCall time.Time
	// LastPath and LastUserAgent describe that call, to find the caller.
	LastPath      string
	LastUserAgent string
}

// ImdsUsageReport is DescribeImdsUsage's whole answer.
type ImdsUsageReport struct {
	// Observed is how long the control plane has recorded usage, capped
	// at the window; ObservedSince is when recording began (zero if the
	// control plane does not say). A quiet instance is proven quiet only
	// over what was observed.
	Observed      time.Duration
	ObservedSince time.Time
	Usage         []ImdsUsage
}

type usageAnswer struct {
	ObservedSince   string `xml:"observedSince"`
	ObservedSeconds string `xml:"observedSeconds"`
	Items           []struct {
		InstanceID    string `xml:"instanceId"`
		V1Calls       string `xml:"imdsV1Calls"`
		V1Rejected    string `xml:"imdsV1Rejected"`
		LastCall      string `xml:"lastCall"`
		LastPath      string `xml:"lastPath"`
		LastUserAgent string `xml:"lastUserAgent"`
	} `xml:"usageSet>item"`
}

// DescribeImdsUsage returns the IMDSv1 usage of the given instances (none:
// every instance) over the last window (zero: the server's default).
// Control planes older than the action answer InvalidAction.
func (c *Client) DescribeImdsUsage(ctx context.Context, window time.Duration, instanceIDs []string) ([]ImdsUsage, error) {
	r, err := c.DescribeImdsUsageReport(ctx, window, instanceIDs)
	if err != nil {
		return nil, err
	}
	return r.Usage, nil
}

// DescribeImdsUsageReport is DescribeImdsUsage with how long usage has been
// observed.
func (c *Client) DescribeImdsUsageReport(ctx context.Context, window time.Duration, instanceIDs []string) (ImdsUsageReport, error) {
	p := url.Values{}
	if window > 0 {
		p.Set("WindowSeconds", strconv.FormatInt(int64((window+time.Second-1)/time.Second), 10))
	}
	for i, id := range instanceIDs {
		p.Set("InstanceId."+strconv.Itoa(i+1), id)
	}
	var a usageAnswer
	if err := c.Call(ctx, ActionDescribeImdsUsage, p, &a, true); err != nil {
		return ImdsUsageReport{}, err
	}
	rep := ImdsUsageReport{}
	if n, err := parseCount(a.ObservedSeconds); err == nil {
		rep.Observed = time.Duration(n) * time.Second
	}
	if s := strings.TrimSpace(a.ObservedSince); s != "" {
		rep.ObservedSince, _ = time.Parse(time.RFC3339, s)
	}
	out := make([]ImdsUsage, 0, len(a.Items))
	for _, it := range a.Items {
		u := ImdsUsage{InstanceID: it.InstanceID, LastPath: it.LastPath, LastUserAgent: it.LastUserAgent}
		var err error
		if u.V1Calls, err = parseCount(it.V1Calls); err != nil {
			return ImdsUsageReport{}, fmt.Errorf("%s: imdsV1Calls of %s: %w", ActionDescribeImdsUsage, it.InstanceID, err)
		}
		if u.V1Rejected, err = parseCount(it.V1Rejected); err != nil {
			return ImdsUsageReport{}, fmt.Errorf("%s: imdsV1Rejected of %s: %w", ActionDescribeImdsUsage, it.InstanceID, err)
		}
		if s := strings.TrimSpace(it.LastCall); s != "" {
			if u.LastCall, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return ImdsUsageReport{}, fmt.Errorf("%s: lastCall of %s: %w", ActionDescribeImdsUsage, it.InstanceID, err)
			}
		}
		out = append(out, u)
	}
	rep.Usage = out
	return rep, nil
}

func parseCount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a count: %q", s)
	}
	return n, nil
}
