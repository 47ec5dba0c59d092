package controlplane

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/usage"
)

// UsageReporter reads the fleet's IMDSv1 usage over a window (see
// usage.Tracker.Report).
type UsageReporter func(ctx context.Context, window time.Duration) (*usage.Report, error)

// Bounds of FrontdeskDescribeImdsUsage's WindowSeconds.
const (
	defaultUsageWindow = time.Hour
	maxUsageWindow     = 14 * 24 * time.Hour
)

type xmlUsage struct {
	InstanceID    string `xml:"instanceId"`
	Calls         int64  `xml:"imdsV1Calls"`
	Rejected      int64  `xml:"imdsV1Rejected"`
	LastCall      string `xml:"lastCall,omitempty"`
	LastPath      string `xml:"lastPath"`
	LastUserAgent string `xml:"lastUserAgent"`
}

type describeImdsUsageResponse struct {
	respMeta
	WindowSeconds int `xml:"windowSeconds"`
	// ObservedSince is when usage recording began (within the
	// retention): a window reaching further back was not watched whole.
	ObservedSince   string     `xml:"observedSince,omitempty"`
	ObservedSeconds int64      `xml:"observedSeconds"`
	Usage           []xmlUsage `xml:"usageSet>item"`
}

// describeImdsUsage answers FrontdeskDescribeImdsUsage: WindowSeconds
// (1–1209600, default 3600) and InstanceId.N (optional filter). It reports
// the fleet's usage as stored (every node's), with the calls this node has
// not written yet.
func (s *Server) describeImdsUsage(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	window := defaultUsageWindow
	if n, err := p.intOpt("WindowSeconds"); err != nil {
		return nil, err
	} else if n != nil {
		if *n < 1 || time.Duration(*n)*time.Second > maxUsageWindow {
			return nil, errInvalid("Invalid value '" + strconv.Itoa(*n) + "' for WindowSeconds. Valid values: 1-1209600.")
		}
		window = time.Duration(*n) * time.Second
	}
	ids, err := parseInstanceIDs(p)
	if err != nil {
		return nil, err
	}
	if dry {
		return nil, errDryRun
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	if s.opts.V1Usage == nil {
		// An empty answer would read as "no IMDSv1 calls", and compliance
		// would call every instance safe to require: say it is not known.
		return nil, errUsageUnavailable
	}
	rep, err := s.opts.V1Usage(ctx, window)
	if err != nil {
		return nil, err
	}
	resp := &describeImdsUsageResponse{WindowSeconds: int(window / time.Second), ObservedSeconds: int64(rep.Observed() / time.Second)}
	if !rep.ObservedSince.IsZero() {
		resp.ObservedSince = rep.ObservedSince.UTC().Format(time.RFC3339)
	}
	for _, u := range rep.Instances {
		if len(want) > 0 && !want[u.InstanceID] {
			continue
		}
		if u.Calls == 0 && u.Rejected == 0 {
			continue // calls before the window only
		}
		x := xmlUsage{InstanceID: u.InstanceID, Calls: u.Calls, Rejected: u.Rejected, LastPath: u.LastPath, LastUserAgent: u.LastUserAgent}
		if !u.LastCall.IsZero() {
			x.LastCall = u.LastCall.UTC().Format(time.RFC3339)
		}
		resp.Usage = append(resp.Usage, x)
	}
	sort.Slice(resp.Usage, func(i, j int) bool { return resp.Usage[i].InstanceID < resp.Usage[j].InstanceID })
	return resp, nil
}

var errUsageUnavailable = newAPIError(http.StatusBadRequest, "UnsupportedOperation", "This frontdesk does not track IMDSv1 usage.")
