package controlplane

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Usage is one instance's tokenless (IMDSv1) traffic over a window, as
// Options.V1Usage reports it: an instance with no Calls can be switched to
// HttpTokens=required without breaking a client.
type Usage struct {
	InstanceID string
	// Calls are tokenless requests that were answered; Rejected are those
	// refused because tokens are already required.
	Calls, Rejected int64
	// LastCall is the latest tokenless request; LastPath and LastUserAgent
	// name the process to migrate.
	LastCall      time.Time
	LastPath      string
	LastUserAgent string
}

// Bounds of FrontdeskDescribeImdsUsage's WindowSeconds.
const (
	defaultUsageWindow = time.Hour
	maxUsageWindow     = 24 * time.Hour
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
	WindowSeconds int        `xml:"windowSeconds"`
	Usage         []xmlUsage `xml:"usageSet>item"`
}

// describeImdsUsage answers FrontdeskDescribeImdsUsage: WindowSeconds
// (1–86400, default 3600) and InstanceId.N (optional filter). It reports
// what this node's data plane saw; in a fleet, ask every node.
func (s *Server) describeImdsUsage(_ context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	window := defaultUsageWindow
	if n, err := p.intOpt("WindowSeconds"); err != nil {
		return nil, err
	} else if n != nil {
		if *n < 1 || time.Duration(*n)*time.Second > maxUsageWindow {
			return nil, errInvalid("Invalid value '" + strconv.Itoa(*n) + "' for WindowSeconds. Valid values: 1-86400.")
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
	resp := &describeImdsUsageResponse{WindowSeconds: int(window / time.Second)}
	for _, u := range s.opts.V1Usage(window) {
		if len(want) > 0 && !want[u.InstanceID] {
			continue
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
