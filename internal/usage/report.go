package usage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Summary is one instance's IMDSv1 usage over a window, merged across the
// nodes of the fleet.
type Summary struct {
	InstanceID string
	// Calls were answered (each would be refused once tokens are
	// required); Rejected were refused because tokens are required.
	Calls, Rejected int64
	// LastCall is the latest tokenless call within the retention (it may
	// lie before the window); LastPath and LastUserAgent name the caller.
	LastCall      time.Time
	LastPath      string
	LastUserAgent string
	LastRejected  bool
	// Agents and Paths are the most frequent User-Agents and paths of the
	// window, most frequent first.
	Agents, Paths []imds.UsageCount
	// Hourly holds calls plus rejections per hour of the window, oldest
	// first (len = Report.Hours).
	Hourly []int64
}

// Report is the fleet's IMDSv1 usage over a window.
type Report struct {
	// Window is the window asked for, clamped to the retention; Hours is
	// the number of hourly buckets it covers, the current one included,
	// starting at Start. A window is rounded up to whole hours, so no call
	// inside it is missed.
	Window time.Duration
	Hours  int
	Start  time.Time
	Now    time.Time
	// ObservedSince is when recording began, as far as the retention
	// reaches: a window reaching further back than it was not watched
	// whole, and an instance without calls then is not proven quiet.
	ObservedSince time.Time
	// Instances holds every instance with a record, sorted by id; those
	// absent made no tokenless call within the retention.
	Instances []Summary
	index     map[string]int
}

// Observed is how long usage has been recorded, capped at the window.
func (r *Report) Observed() time.Duration {
	if r.ObservedSince.IsZero() {
		return 0
	}
	return min(r.Now.Sub(r.ObservedSince), r.Window)
}

// Covers reports whether the whole window was observed.
func (r *Report) Covers() bool {
	return !r.ObservedSince.IsZero() && !r.ObservedSince.After(r.Now.Add(-r.Window))
}

// Get returns the summary of an instance (zero Calls when it has none).
func (r *Report) Get(id string) (Summary, bool) {
	if i, ok := r.index[id]; ok {
		return r.Instances[i], true
	}
	return Summary{InstanceID: id, Hourly: make([]int64, r.Hours)}, false
}

// Report reads the fleet's usage over the last window (at most the
// retention), merged across nodes, with this node's calls not yet flushed.
func (t *Tracker) Report(ctx context.Context, window time.Duration) (*Report, error) {
	now := t.opts.Now()
	window = min(max(window, time.Second), t.opts.Retention)
	cur := floorHour(now)
	first := floorHour(now.Add(-window))
	rep := &Report{Window: window, Hours: int(cur - first + 1), Start: hourTime(first), Now: now, index: map[string]int{}}
	oldest := now.Add(-t.opts.Retention)
	merged := map[string]*merging{}
	get := func(id string) *merging {
		m := merged[id]
		if m == nil {
			m = &merging{s: Summary{InstanceID: id, Hourly: make([]int64, rep.Hours)}, agents: map[string]int64{}, paths: map[string]int64{}}
			merged[id] = m
		}
		return m
	}
	err := t.store.View(ctx, func(tx imds.Tx) error {
		if err := imds.ListUsageNodes(tx, func(n imds.UsageNode) error {
			if n.Seen.Before(oldest) {
				return nil
			}
			if rep.ObservedSince.IsZero() || n.Since.Before(rep.ObservedSince) {
				rep.ObservedSince = n.Since
			}
			return nil
		}); err != nil {
			return err
		}
		return imds.ScanUsage(tx, "", func(r *imds.UsageRecord) error {
			m := get(r.InstanceID)
			for _, h := range r.Hours {
				m.hour(h.Hour-first, h.Hour >= first, h.Calls, h.Rejected)
				if h.Hour >= first {
					for _, c := range h.Agents {
						m.agents[c.Value] += c.N
					}
					for _, c := range h.Paths {
						m.paths[c.Value] += c.N
					}
				}
			}
			m.last(r.Last)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", err)
	}
	// This node's calls since the last flush.
	t.mu.Lock()
	for id, d := range t.pending {
		m := get(id)
		for h, hd := range d.hours {
			m.hour(h-first, h >= first, hd.calls, hd.rejected)
			if h >= first {
				for k, v := range hd.agents {
					m.agents[k] += v
				}
				for k, v := range hd.paths {
					m.paths[k] += v
				}
			}
		}
		m.last(d.last)
	}
	t.mu.Unlock()
	if rep.ObservedSince.IsZero() || t.start.Before(rep.ObservedSince) {
		// This node is observing even if its mark did not reach the store.
		rep.ObservedSince = t.start
	}
	if rep.ObservedSince.Before(oldest) {
		rep.ObservedSince = oldest
	}
	rep.Instances = make([]Summary, 0, len(merged))
	for _, m := range merged {
		if m.s.LastCall.Before(oldest) && m.s.Calls == 0 && m.s.Rejected == 0 {
			continue
		}
		m.s.Agents = topOf(m.agents, imds.MaxUsageTop)
		m.s.Paths = topOf(m.paths, imds.MaxUsageTop)
		rep.Instances = append(rep.Instances, m.s)
	}
	slices.SortFunc(rep.Instances, func(a, b Summary) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	for i, s := range rep.Instances {
		rep.index[s.InstanceID] = i
	}
	return rep, nil
}

type merging struct {
	s             Summary
	agents, paths map[string]int64
}

func (m *merging) hour(i int64, inWindow bool, calls, rejected int64) {
	if !inWindow || i >= int64(len(m.s.Hourly)) {
		return
	}
	m.s.Calls += calls
	m.s.Rejected += rejected
	m.s.Hourly[i] += calls + rejected
}

func (m *merging) last(c imds.UsageCall) {
	if c.At.After(m.s.LastCall) {
		m.s.LastCall, m.s.LastPath, m.s.LastUserAgent, m.s.LastRejected = c.At, c.Path, c.UserAgent, c.Rejected
	}
}

// NewReport builds a report from summaries (for fakes and tests, and for a
// caller that assembles usage some other way): they are sorted by instance
// id, and Hours, Start and each Hourly are derived from window and now.
func NewReport(window time.Duration, now, observedSince time.Time, ss []Summary) *Report {
	cur, first := floorHour(now), floorHour(now.Add(-window))
	r := &Report{Window: window, Hours: int(cur - first + 1), Start: hourTime(first), Now: now, ObservedSince: observedSince, index: map[string]int{}}
	r.Instances = slices.Clone(ss)
	slices.SortFunc(r.Instances, func(a, b Summary) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	for i := range r.Instances {
		s := &r.Instances[i]
		if len(s.Hourly) != r.Hours {
			h := make([]int64, r.Hours)
			h[r.Hours-1] = s.Calls + s.Rejected
			s.Hourly = h
		}
		r.index[s.InstanceID] = i
	}
	return r
}
