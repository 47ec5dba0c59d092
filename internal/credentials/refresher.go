package credentials

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Refresher defaults. MinRefreshBefore is the floor the issue sets: new
// credentials are fetched at least 15 minutes before the old ones expire,
// well inside the 5 minutes EC2 promises and before botocore's 15-minute
// advisory refresh window opens.
const (
	MinRefreshBefore      = 15 * time.Minute
	DefaultJitter         = 5 * time.Minute
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 5 * time.Minute
	DefaultConcurrency    = 64
	DefaultFetchTimeout   = 30 * time.Second
)

// minGap keeps a provider that returns nearly expired credentials from
// being called in a tight loop.
const minGap = time.Second

// Backoff bounds the retry delay after failed fetches: Initial, doubling per
// consecutive failure up to Max, each delay jittered down by up to half.
type Backoff struct {
	Initial, Max time.Duration
}

// RefresherOptions configure a Refresher. The zero value works.
type RefresherOptions struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Until returns a channel that receives once the clock reaches
	// deadline; a timer on Now when nil. Tests pass a fake clock's Until
	// with its Now. It takes a deadline, not a duration, so a clock that
	// moves between reading Now and arming the timer loses nothing.
	Until func(deadline time.Time) <-chan time.Time
	// Logger gets fetch failures and recoveries; slog.Default() when nil.
	Logger *slog.Logger
	// RefreshBefore is how long before expiry a refresh starts. Values
	// below MinRefreshBefore are raised to it. For long-lived credentials
	// the refresher starts earlier still, at a quarter of the lifetime (90
	// minutes for 6-hour credentials), so a long STS outage is ridden out;
	// for credentials shorter than twice the margin it starts at half the
	// lifetime.
	RefreshBefore time.Duration
	// Jitter is added to the margin at random, up to this much, so targets
	// fetched together do not refresh together. DefaultJitter when zero;
	// negative for none.
	Jitter time.Duration
	// Backoff bounds retries after failures; defaults 1 s and 5 min.
	Backoff Backoff
	// Concurrency bounds the fetches in flight; DefaultConcurrency when zero.
	Concurrency int
	// FetchTimeout bounds one Retrieve; DefaultFetchTimeout when zero.
	FetchTimeout time.Duration
	// OnRefresh, when set, is told the outcome of every fetch (for
	// metrics): the target, whether it succeeded, and the expiry of the
	// credentials now served (zero when none are valid). It runs on a
	// refresh worker and must not block.
	OnRefresh func(t Target, ok bool, expires time.Time)
}

// Refresher keeps credentials for a desired set of targets: it fetches a
// target as soon as it is added, refreshes it in the background before it
// expires, and answers Get from memory without locks. At most one Retrieve
// per target is in flight at any time, because a target is either in the
// schedule or held by exactly one worker.
type Refresher struct {
	onRefresh    func(Target, bool, time.Time)
	resolve      Resolver
	now          func() time.Time
	until        func(time.Time) <-chan time.Time
	log          *slog.Logger
	before       time.Duration
	jitter       time.Duration
	backoff      Backoff
	concurrency  int
	fetchTimeout time.Duration

	// targets holds the desired set, sharded by instance id so that a
	// change to a few instances copies a few small maps, not the fleet's.
	// Writers replace shards under setMu; Get only loads them.
	targets [targetShards]atomic.Pointer[map[string][]*slot]
	setMu   sync.Mutex // serialises SetTargets
	version atomic.Uint64
	running atomic.Bool

	mu    sync.Mutex // guards fresh, sched and slot.index
	fresh []*slot    // added targets, fetched first, in order
	sched slotHeap   // fetched targets by next refresh
	busy  int        // targets handed to workers and not yet done
	wake  chan struct{}
}

// slot is the cache entry of one target.
type slot struct {
	t     Target
	state atomic.Pointer[state]
	// sig is closed on the first successful fetch or on removal,
	// whichever comes first (one channel, not two: 200,000 of them).
	sig       chan struct{}
	sigClosed atomic.Bool
	removed   atomic.Bool

	// Owned by the worker holding the slot (one at a time).
	failures int

	// Guarded by Refresher.mu.
	due   time.Time
	index int // in sched; -1 when not scheduled
}

func (s *slot) closeSig() {
	if s.sigClosed.CompareAndSwap(false, true) {
		close(s.sig)
	}
}

// state is what Get reads: ok, until ok's credentials run out; then an
// entry built from the fail fields, so expired credentials are never served
// even if a refresh is late.
type state struct {
	ok Entry
	// expires is false for a failure entry, which has nothing to expire.
	expires bool
	// failCode and failMsg are the last failure since ok was fetched
	// ("" when none); failVersion is the expired entry's Version.
	failCode, failMsg string
	failVersion       uint64
}

// expiredEntry is served once ok's credentials have expired. Building it
// here, not in advance, keeps a message per target out of memory.
func (st *state) expiredEntry(t Target) Entry {
	e := Entry{Code: st.failCode, Message: st.failMsg, LastUpdated: st.ok.Credentials.Expiration, Version: st.failVersion}
	if e.Code == "" {
		e.Code = CodeInternalError
		e.Message = fmt.Sprintf("The credentials for role %s expired and could not be renewed.", roleName(t))
	}
	return e
}

// NewRefresher returns a Refresher that picks providers with resolve. Call
// Run to start fetching.
func NewRefresher(resolve Resolver, opts RefresherOptions) *Refresher {
	r := &Refresher{
		resolve:      resolve,
		now:          opts.Now,
		until:        opts.Until,
		log:          opts.Logger,
		before:       max(opts.RefreshBefore, MinRefreshBefore),
		jitter:       opts.Jitter,
		backoff:      opts.Backoff,
		concurrency:  opts.Concurrency,
		fetchTimeout: opts.FetchTimeout,
		onRefresh:    opts.OnRefresh,
		wake:         make(chan struct{}, 1),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.until == nil {
		r.until = func(t time.Time) <-chan time.Time { return time.After(t.Sub(r.now())) }
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.jitter == 0 {
		r.jitter = DefaultJitter
	}
	if r.backoff.Initial <= 0 {
		r.backoff.Initial = DefaultBackoffInitial
	}
	if r.backoff.Max <= 0 {
		r.backoff.Max = DefaultBackoffMax
	}
	r.backoff.Max = max(r.backoff.Max, r.backoff.Initial)
	if r.concurrency <= 0 {
		r.concurrency = DefaultConcurrency
	}
	if r.fetchTimeout <= 0 {
		r.fetchTimeout = DefaultFetchTimeout
	}
	for i := range r.targets {
		empty := map[string][]*slot{}
		r.targets[i].Store(&empty)
	}
	return r
}

// Get returns the entry for an instance's role. ok is false when the target is not in the desired set or its first
// fetch has not finished. It never blocks and never calls a provider.
func (r *Refresher) Get(instanceID, role string) (e Entry, ok bool) {
	s := r.lookup(instanceID, role)
	if s == nil {
		return Entry{}, false
	}
	st := s.state.Load()
	if st == nil {
		return Entry{}, false
	}
	if st.expires && !r.now().Before(st.ok.Credentials.Expiration) {
		return st.expiredEntry(s.t), true
	}
	return st.ok, true
}

func (r *Refresher) lookup(instanceID, role string) *slot {
	for _, s := range (*r.targets[shardOf(instanceID)].Load())[instanceID] {
		if s.t.Role == role {
			return s
		}
	}
	return nil
}

// Wait blocks until the target has had valid credentials once, and returns
// nil then. It returns ErrUnknownTarget if the target is not (or no longer)
// in the desired set, and the context's error, with the entry's code, if ctx
// ends first.
func (r *Refresher) Wait(ctx context.Context, instanceID, role string) error {
	for {
		s := r.lookup(instanceID, role)
		if s == nil {
			return fmt.Errorf("wait for %s %q: %w", instanceID, role, ErrUnknownTarget)
		}
		select {
		case <-s.sig:
			if !s.removed.Load() {
				return nil
			}
			// Replaced or removed: look again.
		case <-ctx.Done():
			if e, ok := r.Get(instanceID, role); ok && e.Code != CodeSuccess {
				return fmt.Errorf("wait for %s %q (last code %s): %w", instanceID, role, e.Code, ctx.Err())
			}
			return fmt.Errorf("wait for %s %q: %w", instanceID, role, ctx.Err())
		}
	}
}

// Refresh moves a target's next fetch to now (a forced rotation). It reports
// false when the target is unknown or a fetch of it is already queued or in
// flight, in which case that fetch serves the purpose.
func (r *Refresher) Refresh(instanceID, role string) bool {
	s := r.lookup(instanceID, role)
	if s == nil {
		return false
	}
	r.mu.Lock()
	queued := s.index < 0
	if !queued {
		heap.Remove(&r.sched, s.index)
		r.fresh = append(r.fresh, s)
	}
	r.mu.Unlock()
	if !queued {
		r.signal()
	}
	return !queued
}

// Idle reports whether nothing is to be done at Now: no fetch queued, due
// or in flight. A test that moves a fake clock waits for it before reading
// entries, so that a refresh the move made due has been served.
func (r *Refresher) Idle() bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.fresh) == 0 && r.busy == 0 && (len(r.sched) == 0 || r.sched[0].due.After(now))
}

// SetTargets replaces the desired set. Targets not in ts stop being served
// at once; new ones (and ones whose AccountID or RoleArn changed) are queued
// for an immediate fetch; unchanged ones keep their entries and schedule.
// Duplicate (instance, role) pairs after the first are ignored. ts is not
// retained.
func (r *Refresher) SetTargets(ts []Target) {
	byInstance := make(map[string][]Target, len(ts)/2+1)
	for _, t := range ts {
		byInstance[t.InstanceID] = append(byInstance[t.InstanceID], t)
	}
	r.setMu.Lock()
	defer r.setMu.Unlock()
	// Instances no longer in the set lose their targets.
	for i := range r.targets {
		for id := range *r.targets[i].Load() {
			if _, ok := byInstance[id]; !ok {
				byInstance[id] = nil
			}
		}
	}
	r.update(byInstance)
}

// UpdateTargets replaces the targets of the instances named in byInstance
// (nil or empty: the instance has none any more) and leaves every other
// instance's alone: a change to one instance costs work for that instance,
// not for the fleet.
func (r *Refresher) UpdateTargets(byInstance map[string][]Target) {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	r.update(byInstance)
}

// update applies byInstance shard by shard. Called with setMu held.
func (r *Refresher) update(byInstance map[string][]Target) {
	var shards [targetShards][]string
	for id := range byInstance {
		i := shardOf(id)
		shards[i] = append(shards[i], id)
	}
	var added, removed []*slot
	for i, ids := range shards {
		if len(ids) == 0 {
			continue
		}
		old := *r.targets[i].Load()
		next := make(map[string][]*slot, len(old)+len(ids))
		for id, list := range old {
			next[id] = list
		}
		for _, id := range ids {
			prev := old[id]
			var list []*slot
			for _, t := range byInstance[id] {
				if findRole(list, t.Role) != nil {
					continue
				}
				s := findRole(prev, t.Role)
				if s == nil || s.t != t {
					s = &slot{t: t, sig: make(chan struct{}), index: -1}
					added = append(added, s)
				}
				list = append(list, s)
			}
			for _, s := range prev {
				if !containsSlot(list, s) {
					removed = append(removed, s)
				}
			}
			if len(list) == 0 {
				delete(next, id)
			} else {
				next[id] = list
			}
		}
		r.targets[i].Store(&next)
	}
	r.mu.Lock()
	for _, s := range removed {
		s.removed.Store(true)
		s.closeSig()
		if s.index >= 0 {
			heap.Remove(&r.sched, s.index)
		}
	}
	r.fresh = append(r.fresh, added...)
	r.mu.Unlock()
	if len(added) > 0 {
		r.signal()
	}
}

// targetShards is how many pieces the desired set is kept in.
const targetShards = 256

// shardOf picks an instance id's shard (FNV-1a).
func shardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % targetShards)
}

func findRole(list []*slot, role string) *slot {
	for _, s := range list {
		if s.t.Role == role {
			return s
		}
	}
	return nil
}

func containsSlot(list []*slot, s *slot) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r *Refresher) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run fetches and refreshes until ctx ends, then waits for fetches in flight
// and returns nil. It may be called once.
func (r *Refresher) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("credentials refresher already running")
	}
	work := make(chan *slot)
	var wg sync.WaitGroup
	for range r.concurrency {
		wg.Go(func() {
			for s := range work {
				r.refresh(ctx, s)
				r.mu.Lock()
				r.busy--
				r.mu.Unlock()
			}
		})
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	for {
		batch, next := r.due()
		for _, s := range batch {
			select {
			case work <- s:
			case <-ctx.Done():
				return nil
			}
		}
		if len(batch) > 0 {
			continue // more may have become due while handing these out
		}
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = r.until(next)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-timer:
		}
	}
}

// due takes the targets to fetch now (added ones first) and says when the
// next one is due (zero when nothing is scheduled).
func (r *Refresher) due() (batch []*slot, next time.Time) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	batch, r.fresh = r.fresh, nil
	for len(r.sched) > 0 && !r.sched[0].due.After(now) {
		batch = append(batch, heap.Pop(&r.sched).(*slot))
	}
	r.busy += len(batch)
	if len(r.sched) == 0 {
		return batch, time.Time{}
	}
	return batch, r.sched[0].due
}

// refresh fetches one target and reschedules it. It runs on one worker with
// the slot out of the schedule, so no other fetch of this target can start.
func (r *Refresher) refresh(ctx context.Context, s *slot) {
	if s.removed.Load() {
		return
	}
	p := r.resolve(s.t.Role)
	var c Credentials
	var err error
	if p == nil {
		err = &Error{Code: CodeNoProvider, Message: fmt.Sprintf("No credential provider is configured for role %s.", s.t.Role)}
	} else if l, ok := p.(*Local); ok {
		// Local never blocks: skip the timer, which would be a good part
		// of the cost of filling 200,000 targets.
		c, err = l.Retrieve(ctx, s.t)
	} else {
		fctx, cancel := context.WithTimeout(ctx, r.fetchTimeout)
		c, err = p.Retrieve(fctx, s.t)
		cancel()
	}
	if ctx.Err() != nil || s.removed.Load() {
		return
	}
	now := r.now()
	if err == nil {
		c, err = normalise(c, now)
	}
	var due time.Time
	if err != nil {
		due = r.failed(s, now, err)
	} else {
		due = r.succeeded(s, p, now, c)
	}
	r.mu.Lock()
	if !s.removed.Load() {
		s.due = due
		heap.Push(&r.sched, s)
		if s.index == 0 {
			r.signal()
		}
	}
	r.mu.Unlock()
}

// normalise puts times in the served form and rejects unusable credentials.
func normalise(c Credentials, now time.Time) (Credentials, error) {
	c.Expiration = c.Expiration.UTC().Truncate(time.Second)
	if c.LastUpdated.IsZero() {
		c.LastUpdated = now
	}
	c.LastUpdated = c.LastUpdated.UTC().Truncate(time.Second)
	switch {
	case c.AccessKeyID == "" || c.SecretAccessKey == "":
		return Credentials{}, errors.New("provider returned credentials without keys")
	case !c.Expiration.After(now):
		return Credentials{}, fmt.Errorf("provider returned credentials that expired at %s", c.Expiration.Format(time.RFC3339))
	}
	return c, nil
}

func (r *Refresher) succeeded(s *slot, p Provider, now time.Time, c Credentials) time.Time {
	if s.failures > 0 {
		r.log.Info("credentials fetch recovered", "instance", s.t.InstanceID, "role", roleName(s.t), "failures", s.failures)
	}
	s.failures = 0
	cur := s.state.Load()
	switch {
	case cur == nil || !cur.ok.Credentials.equal(c):
		v := r.version.Add(2) // one for ok, one for its expired form
		s.state.Store(&state{
			ok:          Entry{Credentials: c, Code: CodeSuccess, LastUpdated: c.LastUpdated, Version: v - 1},
			expires:     true,
			failVersion: v,
		})
	case cur.failCode != "":
		// Same credentials (a polled file that did not change) after a
		// failure: forget the failure, keep the served entry's version.
		s.state.Store(&state{ok: cur.ok, expires: true, failVersion: r.version.Add(1)})
	}
	s.closeSig()
	if r.onRefresh != nil {
		r.onRefresh(s.t, true, c.Expiration)
	}

	life := c.Expiration.Sub(now)
	margin := max(r.before, life/4)
	if r.jitter > 0 {
		margin += rand.N(r.jitter)
	}
	margin = min(margin, life/2)
	due := c.Expiration.Add(-margin)
	if pl, ok := p.(Poller); ok && pl.PollInterval() > 0 {
		due = minTime(due, now.Add(pl.PollInterval()))
	}
	return maxTime(due, now.Add(minGap))
}

func (r *Refresher) failed(s *slot, now time.Time, err error) time.Time {
	s.failures++
	delay := r.backoff.Initial << min(s.failures-1, 30)
	if delay <= 0 || delay > r.backoff.Max {
		delay = r.backoff.Max
	}
	delay -= rand.N(delay/2 + 1)
	code, msg := publicError(s.t, err)
	// Warn once per outage and target; retries go to Debug, or an STS
	// outage with 100,000 instances would flood the log.
	level := slog.LevelDebug
	if s.failures == 1 {
		level = slog.LevelWarn
	}
	r.log.Log(context.Background(), level, "credentials fetch failed", "instance", s.t.InstanceID, "role", roleName(s.t),
		"code", code, "failures", s.failures, "retry_in", delay, "err", err)

	cur := s.state.Load()
	if r.onRefresh != nil {
		var exp time.Time
		if cur != nil && cur.ok.Code == CodeSuccess && cur.ok.Credentials.Valid(now) {
			exp = cur.ok.Credentials.Expiration
		}
		r.onRefresh(s.t, false, exp)
	}
	fail := Entry{Code: code, Message: msg, LastUpdated: now.UTC().Truncate(time.Second)}
	switch {
	case cur != nil && cur.ok.Code == CodeSuccess && cur.ok.Credentials.Valid(now):
		// Keep serving what is still valid; once it expires, say why.
		if cur.failCode != code || cur.failMsg != msg {
			s.state.Store(&state{ok: cur.ok, expires: true, failCode: code, failMsg: msg, failVersion: r.version.Add(1)})
		}
		// Wake at expiry at the latest, to try once more before then.
		return minTime(now.Add(delay), maxTime(cur.ok.Credentials.Expiration, now.Add(minGap)))
	case cur != nil && cur.ok.Code == code && cur.ok.Message == msg:
		// Same failure as before: same entry, same version.
	default:
		fail.Version = r.version.Add(1)
		s.state.Store(&state{ok: fail})
	}
	return now.Add(delay)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// slotHeap orders scheduled slots by due time (container/heap).
type slotHeap []*slot

func (h slotHeap) Len() int           { return len(h) }
func (h slotHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h slotHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *slotHeap) Push(x any) {
	s := x.(*slot)
	s.index = len(*h)
	*h = append(*h, s)
}

func (h *slotHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.index = -1
	return s
}
