package metrics

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Usage is one instance's tokenless (IMDSv1) traffic over a window, for
// `frontdesk compliance`: an instance with no Calls can be switched to
// HttpTokens=required without breaking a client.
type Usage struct {
	InstanceID string
	// Calls are tokenless requests that were answered (200, 404, ...):
	// each would be refused once tokens are required.
	Calls int64
	// Rejected are tokenless requests refused with 401 because tokens are
	// already required (MetadataNoTokenRejected).
	Rejected int64
	// LastCall is the time of the latest tokenless request, answered or
	// rejected; LastPath and LastUserAgent are its path and User-Agent
	// (truncated), which name the process to migrate.
	LastCall      time.Time
	LastPath      string
	LastUserAgent string
}

// MaxUsageWindow is the longest window V1Usage can report.
const MaxUsageWindow = 24 * time.Hour

// Ring sizes: one bucket more than the window they serve, because the
// current bucket is only partly elapsed.
const (
	minuteBuckets = 61
	hourBuckets   = 25
	maxTextLen    = 256 // bytes kept of a path or User-Agent
)

// usageBucket counts calls in one minute or hour; at is the bucket's start
// in minutes or hours since the Unix epoch, so a stale bucket is recognised
// and reset instead of being cleared by a timer.
type usageBucket struct {
	at              int64
	calls, rejected int64
}

// usage is a fixed-size ring of minute buckets (last hour) and hour buckets
// (last day): about 2 KiB per instance that made tokenless calls, however
// busy it is.
type usage struct {
	mu      sync.Mutex
	minutes [minuteBuckets]usageBucket
	hours   [hourBuckets]usageBucket
	last    time.Time
	path    string
	ua      string
}

func (u *usage) add(t time.Time, rejected bool, path, ua string) {
	sec := t.Unix()
	mi, hi := floorDiv(sec, 60), floorDiv(sec, 3600)
	path, ua = truncate(path), truncate(ua)
	u.mu.Lock()
	defer u.mu.Unlock()
	bump(&u.minutes[mod(mi, minuteBuckets)], mi, rejected)
	bump(&u.hours[mod(hi, hourBuckets)], hi, rejected)
	if t.Before(u.last) {
		return
	}
	u.last = t
	// Copy only when the value changes: a client polling the same path
	// costs no allocation, and the request's memory is not kept alive.
	if path != u.path {
		u.path = strings.Clone(path)
	}
	if ua != u.ua {
		u.ua = strings.Clone(ua)
	}
}

func bump(b *usageBucket, at int64, rejected bool) {
	if b.at != at {
		*b = usageBucket{at: at}
	}
	if rejected {
		b.rejected++
	} else {
		b.calls++
	}
}

// sum adds up the buckets covering window before now. The window is rounded
// up to whole minutes (up to an hour) or whole hours (up to a day) and
// includes the current, partly elapsed, bucket: no call inside the window is
// missed, and at most one bucket's worth older is included.
func (u *usage) sum(now time.Time, window time.Duration) (calls, rejected int64, last time.Time, path, ua string) {
	ring, size, unit := u.minutes[:], int64(60), time.Minute
	if window > time.Hour {
		ring, size, unit = u.hours[:], 3600, time.Hour
	}
	n := int64((window + unit - 1) / unit)
	cur := floorDiv(now.Unix(), size)
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range ring {
		if b := &ring[i]; b.at <= cur && b.at >= cur-n {
			calls += b.calls
			rejected += b.rejected
		}
	}
	return calls, rejected, u.last, u.path, u.ua
}

// V1Usage reports, per instance, the tokenless (IMDSv1) requests of the last
// window (at most MaxUsageWindow; see usage.sum for the rounding), sorted by
// instance ID. Instances without tokenless requests in the window are left
// out. Usage is kept in memory only: a restart starts from zero.
func (m *Metrics) V1Usage(window time.Duration) []Usage {
	if window <= 0 {
		return nil
	}
	window = min(window, MaxUsageWindow)
	now := m.now()
	// Copy the index first so requests of new instances do not wait while
	// every ring is summed.
	type entry struct {
		id string
		in *instance
	}
	m.instMu.RLock()
	all := make([]entry, 0, len(m.instances))
	for id, in := range m.instances {
		all = append(all, entry{id, in})
	}
	m.instMu.RUnlock()
	var out []Usage
	for _, e := range all {
		id, in := e.id, e.in
		calls, rejected, last, path, ua := in.usage.sum(now, window)
		if calls == 0 && rejected == 0 {
			continue
		}
		out = append(out, Usage{InstanceID: id, Calls: calls, Rejected: rejected, LastCall: last, LastPath: path, LastUserAgent: ua})
	}
	slices.SortFunc(out, func(a, b Usage) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return out
}

func truncate(s string) string {
	if len(s) <= maxTextLen {
		return s
	}
	s = s[:maxTextLen]
	// Do not cut a UTF-8 sequence in half.
	for i := 0; i < 3 && len(s) > 0 && s[len(s)-1]&0xC0 == 0x80; i++ {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(a, n int64) int64 {
	r := a % n
	if r < 0 {
		r += n
	}
	return r
}
