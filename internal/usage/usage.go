// Package usage keeps a durable, fleet-wide record of IMDSv1 (tokenless)
// metadata calls per instance: what `frontdesk compliance`, the console and
// the metrics read to tell which instances can be switched to
// HttpTokens=required without breaking a caller.
//
// The data plane tells a Tracker about every answered request through the
// dataplane.Observer interface; the Tracker counts tokenless calls in
// memory and writes them to the store in batches, at most one flush every
// Options.FlushInterval whatever the guests do (a flush is one store
// transaction per FlushChunk instances that made calls since the last one).
// Each node writes only its own records (imds.UsageKey), so nodes of a
// fleet never contend; readers merge the nodes. A crash loses at most the
// calls of the last interval.
//
// Records hold hourly buckets (calls, rejected calls, the most frequent
// User-Agents and paths) and the last call; buckets older than
// Options.Retention are dropped when a record is written and by Prune,
// which also removes the records of instances that no longer exist.
package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Defaults of Options.
const (
	DefaultRetention     = 14 * 24 * time.Hour
	DefaultFlushInterval = 10 * time.Second
	DefaultFlushChunk    = 32
	DefaultMaxPending    = 100000
	// maxDistinct bounds the distinct agents or paths counted per pending
	// hour; later ones are not named (their calls are still counted).
	maxDistinct = 32
)

// Options are the optional knobs of New; the zero value works.
type Options struct {
	// Node names this node's records (default: the host name). Two nodes
	// of a fleet must not share a name.
	Node string
	// Retention is how long hourly buckets are kept (DefaultRetention).
	Retention time.Duration
	// FlushInterval is the time between two flushes (DefaultFlushInterval).
	FlushInterval time.Duration
	// FlushChunk is the number of instances written per store transaction
	// (DefaultFlushChunk), which keeps a transaction within etcd's limits.
	FlushChunk int
	// MaxPending bounds the instances with unflushed calls; calls of
	// further instances are dropped (and logged) until the next flush.
	MaxPending int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives flush failures; nil discards.
	Logger *slog.Logger
	// OnFlush is told about every flush that had calls to write: the
	// instances and calls written, and the error of the chunks that failed
	// (their calls are kept for the next flush).
	OnFlush func(instances int, calls int64, err error)
}

// Tracker counts IMDSv1 calls and persists them. It implements
// dataplane.Observer. Its methods are safe for concurrent use.
type Tracker struct {
	store imds.Store
	opts  Options
	log   *slog.Logger
	start time.Time

	mu      sync.Mutex
	pending map[string]*delta
	dropped int64

	flushMu sync.Mutex // one flush at a time
	// own caches this node's records: the node is their only writer, so a
	// flush writes without reading them back.
	own map[string]*imds.UsageRecord
}

// delta is one instance's calls since the last flush.
type delta struct {
	hours map[int64]*hourDelta
	last  imds.UsageCall
}

type hourDelta struct {
	calls, rejected int64
	agents, paths   map[string]int64
}

// New returns a Tracker over store. Call Run to flush in the background.
func New(store imds.Store, opts Options) *Tracker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Node == "" {
		opts.Node, _ = os.Hostname()
		if opts.Node == "" {
			opts.Node = "frontdesk"
		}
	}
	opts.Node = strings.ReplaceAll(opts.Node, "/", "_")
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.FlushChunk <= 0 {
		opts.FlushChunk = DefaultFlushChunk
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	return &Tracker{store: store, opts: opts, log: opts.Logger, start: opts.Now(),
		pending: map[string]*delta{}, own: map[string]*imds.UsageRecord{}}
}

// Retention is the configured retention.
func (t *Tracker) Retention() time.Duration { return t.opts.Retention }

// Node is this node's name in the records.
func (t *Tracker) Node() string { return t.opts.Node }

// Request implements dataplane.Observer: it counts tokenless calls of known
// instances (answered or refused) and ignores everything else. It takes a
// short lock and allocates only for an instance, hour, agent or path not
// yet seen since the last flush.
func (t *Tracker) Request(r *http.Request, ev *dataplane.RequestEvent) {
	if ev.IMDSVersion != 1 || ev.InstanceID == "" || r == nil {
		return
	}
	rejected := ev.Outcome == dataplane.OutcomeNoTokenRejected
	if !rejected && ev.Outcome != dataplane.OutcomeServed {
		return
	}
	at := ev.Start
	if at.IsZero() {
		at = t.opts.Now()
	}
	path := clip(r.URL.Path)
	var ua string
	if v := r.Header["User-Agent"]; len(v) > 0 {
		ua = clip(v[0])
	}
	t.add(ev.InstanceID, at, rejected, path, ua)
}

func (t *Tracker) add(id string, at time.Time, rejected bool, path, ua string) {
	h := floorHour(at)
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.pending[id]
	if d == nil {
		if len(t.pending) >= t.opts.MaxPending {
			t.dropped++
			return
		}
		d = &delta{hours: map[int64]*hourDelta{}}
		t.pending[strings.Clone(id)] = d
	}
	hd := d.hours[h]
	if hd == nil {
		hd = &hourDelta{agents: map[string]int64{}, paths: map[string]int64{}}
		d.hours[h] = hd
	}
	if rejected {
		hd.rejected++
	} else {
		hd.calls++
	}
	bumpName(hd.agents, ua)
	bumpName(hd.paths, path)
	if !at.Before(d.last.At) {
		if d.last.Path != path {
			path = strings.Clone(path)
		} else {
			path = d.last.Path
		}
		if d.last.UserAgent != ua {
			ua = strings.Clone(ua)
		} else {
			ua = d.last.UserAgent
		}
		d.last = imds.UsageCall{At: at, Path: path, UserAgent: ua, Rejected: rejected}
	}
}

func bumpName(m map[string]int64, v string) {
	if _, ok := m[v]; ok {
		m[v]++
		return
	}
	if len(m) < maxDistinct {
		m[strings.Clone(v)] = 1
	}
}

// Run flushes every FlushInterval and prunes every hour until ctx ends,
// then flushes once more (with a short deadline of its own) so that a
// clean shutdown loses nothing.
func (t *Tracker) Run(ctx context.Context) error {
	flush := time.NewTicker(t.opts.FlushInterval)
	defer flush.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	if err := t.Begin(ctx); err != nil && ctx.Err() == nil {
		t.log.Warn("recording the IMDSv1 usage observation start failed", "err", err)
	}
	if err := t.Prune(ctx); err != nil && ctx.Err() == nil {
		t.log.Warn("pruning IMDSv1 usage failed", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := t.Flush(fctx)
			cancel()
			return err
		case <-flush.C:
			_ = t.Flush(ctx)
		case <-prune.C:
			if err := t.Prune(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("pruning IMDSv1 usage failed", "err", err)
			}
		}
	}
}

// Begin records in the store that this node observes usage from now on,
// keeping an earlier start that is still within the retention. Run calls
// it first.
func (t *Tracker) Begin(ctx context.Context) error {
	now := t.opts.Now()
	err := t.store.Update(ctx, func(tx imds.Tx) error {
		n, err := imds.GetUsageNode(tx, t.opts.Node)
		if err != nil && !errors.Is(err, imds.ErrNotFound) {
			return err
		}
		if err != nil || n.Seen.Before(now.Add(-t.opts.Retention)) {
			// A node that was gone longer than the retention has a gap
			// as long as its history: start over.
			n = imds.UsageNode{Node: t.opts.Node, Since: now}
		}
		n.Seen = now
		return imds.PutUsageNode(tx, n)
	})
	if err != nil {
		return fmt.Errorf("usage observation start: %w", err)
	}
	return nil
}

// Flush writes the calls counted since the last flush. On failure the
// calls are kept for the next flush (up to MaxPending instances).
func (t *Tracker) Flush(ctx context.Context) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	batch := t.pending
	dropped := t.dropped
	t.pending, t.dropped = map[string]*delta{}, 0
	t.mu.Unlock()
	if dropped > 0 {
		t.log.Warn("IMDSv1 usage calls dropped: too many instances between flushes", "calls", dropped, "max_pending", t.opts.MaxPending)
	}
	if len(batch) == 0 {
		return nil
	}
	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := t.opts.Now()
	oldest := floorHour(now.Add(-t.opts.Retention))
	var errs []error
	written := 0
	var calls int64
	for chunk := range slices.Chunk(ids, t.opts.FlushChunk) {
		recs := make(map[string]*imds.UsageRecord, len(chunk))
		err := t.store.Update(ctx, func(tx imds.Tx) error {
			clear(recs)
			for _, id := range chunk {
				r, err := t.ownRecord(tx, id)
				if err != nil {
					return err
				}
				r = mergeDelta(r, batch[id], oldest)
				if err := imds.PutUsage(tx, r); err != nil {
					return err
				}
				recs[id] = r
			}
			n, err := imds.GetUsageNode(tx, t.opts.Node)
			if err != nil && !errors.Is(err, imds.ErrNotFound) {
				return err
			}
			if err != nil {
				n = imds.UsageNode{Node: t.opts.Node, Since: t.start}
			}
			n.Seen = now
			return imds.PutUsageNode(tx, n)
		})
		if err != nil {
			errs = append(errs, err)
			t.requeue(chunk, batch)
			continue
		}
		for id, r := range recs {
			t.own[id] = r
		}
		written += len(chunk)
		for _, id := range chunk {
			for _, hd := range batch[id].hours {
				calls += hd.calls + hd.rejected
			}
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		t.log.Warn("flushing IMDSv1 usage failed; kept for the next flush", "err", err)
		err = fmt.Errorf("flush usage: %w", err)
	}
	if t.opts.OnFlush != nil {
		t.opts.OnFlush(written, calls, err)
	}
	return err
}

// ownRecord returns a copy of this node's record of id, from the cache or
// the store (nil if there is none).
func (t *Tracker) ownRecord(tx imds.Tx, id string) (*imds.UsageRecord, error) {
	if r, ok := t.own[id]; ok {
		c := *r
		c.Hours = slices.Clone(r.Hours)
		return &c, nil
	}
	r, err := imds.GetUsage(tx, id, t.opts.Node)
	if errors.Is(err, imds.ErrNotFound) {
		return &imds.UsageRecord{InstanceID: id, Node: t.opts.Node}, nil
	}
	return r, err
}

// requeue puts the deltas of a failed chunk back, merged with whatever
// arrived since.
func (t *Tracker) requeue(ids []string, batch map[string]*delta) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		old := batch[id]
		cur := t.pending[id]
		if cur == nil {
			if len(t.pending) >= t.opts.MaxPending {
				t.dropped++
				continue
			}
			t.pending[id] = old
			continue
		}
		for h, od := range old.hours {
			cd := cur.hours[h]
			if cd == nil {
				cur.hours[h] = od
				continue
			}
			cd.calls += od.calls
			cd.rejected += od.rejected
			for k, v := range od.agents {
				cd.agents[k] += v
			}
			for k, v := range od.paths {
				cd.paths[k] += v
			}
		}
		if old.last.At.After(cur.last.At) {
			cur.last = old.last
		}
	}
}

// mergeDelta adds d to r (both for one instance) and drops buckets before
// oldest.
func mergeDelta(r *imds.UsageRecord, d *delta, oldest int64) *imds.UsageRecord {
	if r.Since.IsZero() {
		r.Since = d.last.At
		for h := range d.hours {
			if ht := hourTime(h); ht.Before(r.Since) {
				r.Since = ht
			}
		}
	}
	byHour := make(map[int64]imds.UsageHour, len(r.Hours)+len(d.hours))
	for _, h := range r.Hours {
		byHour[h.Hour] = h
	}
	for h, hd := range d.hours {
		u := byHour[h]
		u.Hour = h
		u.Calls += hd.calls
		u.Rejected += hd.rejected
		u.Agents = top(u.Agents, hd.agents)
		u.Paths = top(u.Paths, hd.paths)
		byHour[h] = u
	}
	r.Hours = r.Hours[:0]
	for h, u := range byHour {
		if h >= oldest {
			r.Hours = append(r.Hours, u)
		}
	}
	slices.SortFunc(r.Hours, func(a, b imds.UsageHour) int { return cmp.Compare(a.Hour, b.Hour) })
	if !d.last.At.IsZero() && !d.last.At.Before(r.Last.At) {
		r.Last = d.last
	}
	return r
}

// top merges counts into a top list and keeps the MaxUsageTop largest.
func top(have []imds.UsageCount, add map[string]int64) []imds.UsageCount {
	m := make(map[string]int64, len(have)+len(add))
	for _, c := range have {
		m[c.Value] += c.N
	}
	for k, v := range add {
		m[k] += v
	}
	return topOf(m, imds.MaxUsageTop)
}

func topOf(m map[string]int64, n int) []imds.UsageCount {
	out := make([]imds.UsageCount, 0, len(m))
	for k, v := range m {
		out = append(out, imds.UsageCount{Value: k, N: v})
	}
	slices.SortFunc(out, func(a, b imds.UsageCount) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Prune drops buckets older than the retention from every record (of
// every node: a node that left the fleet is pruned by the others), removes
// records left empty or whose instance is terminated or gone, and forgets
// observation records of nodes silent for longer than the retention.
func (t *Tracker) Prune(ctx context.Context) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	now := t.opts.Now()
	oldest := floorHour(now.Add(-t.opts.Retention))
	type fix struct {
		id, node string
		keep     *imds.UsageRecord // nil: delete
	}
	var fixes []fix
	err := t.store.View(ctx, func(tx imds.Tx) error {
		var records []*imds.UsageRecord
		if err := imds.ScanUsage(tx, "", func(r *imds.UsageRecord) error {
			records = append(records, r)
			return nil
		}); err != nil {
			return err
		}
		// Only the instances with usage are read, by id: in a large fleet
		// that is far fewer keys than every instance.
		live := map[string]bool{}
		for _, r := range records {
			if _, ok := live[r.InstanceID]; ok {
				continue
			}
			in, err := imds.GetInstance(tx, r.InstanceID)
			switch {
			case errors.Is(err, imds.ErrNotFound):
				live[r.InstanceID] = false
			case err != nil:
				return err
			default:
				live[r.InstanceID] = in.Live()
			}
		}
		for _, r := range records {
			if !live[r.InstanceID] {
				fixes = append(fixes, fix{id: r.InstanceID, node: r.Node})
				continue
			}
			if len(r.Hours) > 0 && r.Hours[0].Hour >= oldest {
				continue
			}
			kept := r.Hours[:0]
			for _, h := range r.Hours {
				if h.Hour >= oldest {
					kept = append(kept, h)
				}
			}
			if len(kept) == 0 {
				fixes = append(fixes, fix{id: r.InstanceID, node: r.Node})
				continue
			}
			r.Hours = kept
			r.Since = hourTime(oldest)
			fixes = append(fixes, fix{id: r.InstanceID, node: r.Node, keep: r})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune usage: %w", err)
	}
	for chunk := range slices.Chunk(fixes, t.opts.FlushChunk) {
		err := t.store.Update(ctx, func(tx imds.Tx) error {
			for _, f := range chunk {
				if f.keep == nil {
					if err := imds.DeleteNodeUsage(tx, f.id, f.node); err != nil {
						return err
					}
					continue
				}
				if err := imds.PutUsage(tx, f.keep); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("prune usage: %w", err)
		}
		for _, f := range chunk {
			if f.node == t.opts.Node {
				if f.keep == nil {
					delete(t.own, f.id)
				} else {
					t.own[f.id] = f.keep
				}
			}
		}
	}
	return t.store.Update(ctx, func(tx imds.Tx) error {
		var stale []string
		if err := imds.ListUsageNodes(tx, func(n imds.UsageNode) error {
			if n.Seen.Before(now.Add(-t.opts.Retention)) {
				stale = append(stale, n.Node)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, n := range stale {
			if err := imds.DeleteUsageNode(tx, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// Forget drops what this node holds about an instance (pending calls and
// the cached record), for an instance deleted from the store.
func (t *Tracker) Forget(id string) {
	t.mu.Lock()
	delete(t.pending, id)
	t.mu.Unlock()
	t.flushMu.Lock()
	delete(t.own, id)
	t.flushMu.Unlock()
}

// DeleteInstance removes every node's usage of an instance inside tx: the
// hook for whatever deletes instances from the store (the purge of
// terminated instances), so usage goes with its instance in the same
// transaction. A node still holding pending calls of the instance may
// write them once more; Prune removes such orphans.
func DeleteInstance(tx imds.Tx, instanceID string) error {
	return imds.DeleteUsage(tx, instanceID)
}

func clip(s string) string {
	if len(s) <= imds.MaxUsageText {
		return s
	}
	s = s[:imds.MaxUsageText]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}

func floorHour(t time.Time) int64 {
	s := t.Unix()
	h := s / 3600
	if s%3600 < 0 {
		h--
	}
	return h
}

func hourTime(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }
