package credentials

import (
	"context"
	"sync"
	"unique"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Instances is one version of the set of instances a node serves (the data
// plane's snapshot).
type Instances interface {
	// Len is the number of served instances.
	Len() int
	// InstanceByID returns a served instance, or nil.
	InstanceByID(id string) *imds.Instance
	// EachInstance calls fn for every served instance.
	EachInstance(fn func(*imds.Instance))
}

// TrackerOptions are the optional knobs of a Tracker; the zero value works.
type TrackerOptions struct {
	// Forget is called with each instance that a change removed, so that
	// per-instance state elsewhere (metric series) is freed.
	Forget func(instanceID string)
	// Keep is called after every full load with a test of which instances
	// are served; state of the others may be dropped.
	Keep func(served func(instanceID string) bool)
	// OnApply is called on Run's goroutine with each version it applies and
	// what changed (nil: everything), before the refresher's targets are
	// updated, so that other bookkeeping of the served set (releasing
	// what removed instances held) runs off the follower's path too.
	OnApply func(s Instances, changed map[string]struct{})
}

// Tracker keeps a Refresher's targets in step with the served instances.
// Add hands it each new version and never blocks; Run applies them on its
// own goroutine, newest first, so that the caller (the snapshot follower)
// moves on to the next change at once. Versions that arrive while Run is
// busy are merged: the newest set of instances with the union of what
// changed since the last one applied.
type Tracker struct {
	refresher *Refresher
	opts      TrackerOptions

	mu      sync.Mutex
	served  Instances
	changed map[string]struct{}
	full    bool
	ready   chan struct{}
}

// NewTracker returns a tracker feeding r.
func NewTracker(r *Refresher, opts TrackerOptions) *Tracker {
	return &Tracker{refresher: r, opts: opts, ready: make(chan struct{}, 1)}
}

// Add queues a new version of the served instances; changed lists the
// instances it changed, nil meaning that anything may have changed (a full
// load).
func (t *Tracker) Add(s Instances, changed []string) {
	t.mu.Lock()
	t.served = s
	if changed == nil {
		t.full, t.changed = true, nil
	} else if !t.full {
		if t.changed == nil {
			t.changed = map[string]struct{}{}
		}
		for _, id := range changed {
			t.changed[id] = struct{}{}
		}
	}
	t.mu.Unlock()
	select {
	case t.ready <- struct{}{}:
	default:
	}
}

// take returns the newest version and what changed since the last take
// (nil for everything).
func (t *Tracker) take() (Instances, map[string]struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, changed := t.served, t.changed
	if t.full {
		changed = nil
	}
	t.served, t.changed, t.full = nil, nil, false
	return s, changed
}

// Run applies queued versions until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.ready:
		}
		s, changed := t.take()
		if s == nil {
			continue // already taken with an earlier signal
		}
		t.apply(s, changed)
	}
}

func (t *Tracker) apply(s Instances, changed map[string]struct{}) {
	if t.opts.OnApply != nil {
		t.opts.OnApply(s, changed)
	}
	if changed == nil {
		ts := make([]Target, 0, s.Len())
		s.EachInstance(func(in *imds.Instance) { ts = TargetsOf(in, ts) })
		t.refresher.SetTargets(ts)
		if t.opts.Keep != nil {
			t.opts.Keep(func(id string) bool { return s.InstanceByID(id) != nil })
		}
		return
	}
	update := make(map[string][]Target, len(changed))
	for id := range changed {
		update[id] = nil
		if in := s.InstanceByID(id); in != nil {
			update[id] = TargetsOf(in, nil)
		} else if t.opts.Forget != nil {
			t.opts.Forget(id)
		}
	}
	t.refresher.UpdateTargets(update)
}

// TargetsOf appends what the refresher must keep fresh for one instance to
// ts: the role of its instance profile, if any. (Instance-identity
// credentials are derived on request; see Identity.)
func TargetsOf(in *imds.Instance, ts []Target) []Target {
	if p := in.IAMInstanceProfile; p != nil && p.Role != "" {
		// One copy of each role ARN for the whole fleet, not one per instance.
		arn := unique.Make(imds.RoleARN(in.Placement.Region, in.AccountID, p.Role)).Value()
		ts = append(ts, Target{InstanceID: in.InstanceID, AccountID: in.AccountID, Role: p.Role, RoleArn: arn})
	}
	return ts
}
