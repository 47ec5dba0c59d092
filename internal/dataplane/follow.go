package dataplane

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// FollowerOptions are the optional knobs of a Follower.
type FollowerOptions struct {
	Now    func() time.Time
	Logger *slog.Logger
	// OnSecret is called with every stored secret at load and whenever one
	// changes (the token key ring, signing keys) so that other nodes' writes
	// take effect here.
	OnSecret func(name string, value []byte)
	// OnSnapshot is called after each new snapshot is published.
	OnSnapshot func(s *Snapshot)
	// Include decides whether this node serves an instance (fleet placement);
	// nil serves every instance.
	Include func(*imds.Instance) bool
	// OnStoreError is told about every failed load or watch ("load",
	// "watch"), for metrics.
	OnStoreError func(op string, err error)
	// OnReload is called after every full load of the store.
	OnReload func()
	// Prefixes are the key ranges this node loads and watches; nil means
	// imds.NodePrefixes("") (every instance and the shared secrets). A node
	// for one host gives imds.NodePrefixes(host), so that its cost follows
	// its own instances.
	Prefixes []string
	// OnKeysLoaded is told how many keys each full load read, and
	// OnWatchEvents how many changes each watched batch carried (metrics).
	OnKeysLoaded  func(n int)
	OnWatchEvents func(n int)
}

// Follower keeps the data plane's snapshot in step with the store: it loads
// everything once, then applies each watched batch by copying the snapshot
// with the changed instances rebuilt. If the store goes away it keeps the
// last snapshot (fail-static) and retries.
type Follower struct {
	store imds.Store
	opts  FollowerOptions
	cur   atomic.Pointer[Snapshot]

	loadedOnce sync.Once
	loaded     chan struct{}
	lastErr    atomic.Pointer[error]
	// progress is the store revision the watch has passed with nothing in
	// this node's ranges since the snapshot (see Store.WatchPrefixes).
	progress atomic.Int64
}

// NewFollower returns a follower serving an empty snapshot until Run loads.
func NewFollower(store imds.Store, opts FollowerOptions) *Follower {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Prefixes == nil {
		opts.Prefixes = imds.NodePrefixes("")
	}
	f := &Follower{store: store, opts: opts, loaded: make(chan struct{})}
	f.cur.Store(emptySnapshot())
	return f
}

// Snapshot returns the current snapshot. It never blocks.
func (f *Follower) Snapshot() *Snapshot { return f.cur.Load() }

// Applied is the store revision the served snapshot reflects: its own, or
// later when the store has moved on with nothing in this node's ranges.
func (f *Follower) Applied() int64 { return max(f.cur.Load().Revision, f.progress.Load()) }

// Loaded is closed once the first full snapshot is served.
func (f *Follower) Loaded() <-chan struct{} { return f.loaded }

// Ready is nil once the first full snapshot is served: guests are answered
// from then on, whatever the store's state (fail-static).
func (f *Follower) Ready() error {
	select {
	case <-f.loaded:
		return nil
	default:
		return errors.New("snapshot not loaded")
	}
}

// AppliedOptions returns the OptionsRevision of an instance as the served
// snapshot holds it, and whether the snapshot serves the instance at all.
func (f *Follower) AppliedOptions(id string) (int64, bool) {
	g := f.Snapshot().GuestByID(id)
	if g == nil {
		return 0, false
	}
	return g.Instance.OptionsRevision, true
}

// StoreErr is the last error talking to the store, nil while healthy.
func (f *Follower) StoreErr() error {
	if p := f.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Load reads this node's key ranges (Prefixes) once and publishes the snapshot. Run calls it;
// the daemon may call it first to be ready before serving.
func (f *Follower) Load(ctx context.Context) (int64, error) {
	var (
		rev     int64
		raw     [][]byte
		secrets = map[string][]byte{}
	)
	// Copy the values inside the transaction and decode them after it, on
	// every core: with 100,000 instances decoding dominates start-up.
	keys := 0
	err := f.store.View(ctx, func(tx imds.Tx) error {
		rev = tx.Revision()
		raw = raw[:0]
		clear(secrets)
		keys = 0
		for _, p := range f.opts.Prefixes {
			err := tx.Scan(p, func(k string, v []byte) error {
				keys++
				if _, ok := imds.IsInstanceKey(k); ok {
					raw = append(raw, append([]byte(nil), v...))
				} else if name, ok := imds.IsSecretKey(k); ok {
					secrets[name] = append([]byte(nil), v...)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if f.opts.OnKeysLoaded != nil {
		f.opts.OnKeysLoaded(keys)
	}
	instances, err := f.decodeAll(raw)
	if err != nil {
		return 0, err
	}
	if f.opts.OnSecret != nil {
		for name, v := range secrets {
			f.opts.OnSecret(name, v)
		}
	}
	f.publish(buildSnapshot(rev, instances, f.opts.Now()))
	if f.opts.OnReload != nil {
		f.opts.OnReload()
	}
	return rev, nil
}

// decodeAll decodes stored instances in parallel and keeps those this node
// serves, in store order.
func (f *Follower) decodeAll(raw [][]byte) ([]*imds.Instance, error) {
	out := make([]*imds.Instance, len(raw))
	workers := min(runtime.GOMAXPROCS(0), max(len(raw)/1024, 1))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(raw); i += workers {
				in, err := imds.DecodeInstance(raw[i])
				if err != nil {
					errs[w] = err
					return
				}
				if served(in) && f.include(in) {
					out[i] = in
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	kept := out[:0]
	for _, in := range out {
		if in != nil {
			kept = append(kept, in)
		}
	}
	return kept, nil
}

func (f *Follower) include(in *imds.Instance) bool {
	return f.opts.Include == nil || f.opts.Include(in)
}

func (f *Follower) publish(s *Snapshot) {
	f.cur.Store(s)
	f.loadedOnce.Do(func() { close(f.loaded) })
	if f.opts.OnSnapshot != nil {
		f.opts.OnSnapshot(s)
	}
}

// Run follows the store until ctx ends. If Load already ran, Run watches
// from its revision instead of reading the whole store again.
func (f *Follower) Run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	needLoad := true
	var rev int64
	select {
	case <-f.loaded:
		needLoad, rev = false, f.cur.Load().Revision
	default:
	}
	for ctx.Err() == nil {
		if needLoad {
			r, err := f.Load(ctx)
			if err != nil {
				f.setErr(err)
				f.storeError("load", err)
				f.opts.Logger.Warn("loading the store failed; serving the last snapshot", "err", err)
				if !sleep(ctx, backoff) {
					break
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			rev = r
			needLoad = false
		}
		r, err := f.follow(ctx, rev)
		rev = r
		if ctx.Err() != nil {
			break
		}
		f.setErr(err)
		f.storeError("watch", err)
		if errors.Is(err, imds.ErrCompacted) {
			f.opts.Logger.Info("watch history compacted; reloading the store")
			needLoad = true
			continue
		}
		f.opts.Logger.Warn("watching the store failed; serving the last snapshot", "err", err)
		if !sleep(ctx, backoff) {
			break
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (f *Follower) storeError(op string, err error) {
	if f.opts.OnStoreError != nil {
		f.opts.OnStoreError(op, err)
	}
}

func (f *Follower) setErr(err error) {
	if err == nil {
		f.lastErr.Store(nil)
		return
	}
	f.lastErr.Store(&err)
}

// follow applies batches after rev until the watch ends; it returns the last
// applied revision and why it stopped.
func (f *Follower) follow(ctx context.Context, rev int64) (int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := f.store.WatchPrefixes(wctx, rev, f.opts.Prefixes)
	if err != nil {
		return rev, err
	}
	f.setErr(nil)
	for {
		var b imds.Batch
		var ok bool
		select {
		case b, ok = <-ch:
		case <-ctx.Done():
			return rev, ctx.Err()
		}
		if !ok {
			return rev, errors.New("watch closed")
		}
		if b.Err != nil {
			return rev, b.Err
		}
		// Coalesce whatever else is already queued into one new snapshot.
		batches := []imds.Batch{b}
	drain:
		for len(batches) < 256 {
			select {
			case nb, ok := <-ch:
				if !ok || nb.Err != nil {
					f.apply(batches)
					if !ok {
						return batches[len(batches)-1].Revision, errors.New("watch closed")
					}
					return batches[len(batches)-1].Revision, nb.Err
				}
				batches = append(batches, nb)
			default:
				break drain
			}
		}
		f.apply(batches)
		rev = batches[len(batches)-1].Revision
	}
}

func (f *Follower) apply(batches []imds.Batch) {
	last := batches[len(batches)-1].Revision
	if !slices.ContainsFunc(batches, func(b imds.Batch) bool { return len(b.Changes) > 0 }) {
		// Progress only: nothing to rebuild.
		f.progress.Store(last)
		return
	}
	start := time.Now()
	changed := map[string]*imds.Instance{}
	for _, b := range batches {
		if f.opts.OnWatchEvents != nil {
			f.opts.OnWatchEvents(len(b.Changes))
		}
		// A move deletes the record in one host's range and writes it in
		// another's in the same batch: the write wins, whatever the order.
		written := map[string]bool{}
		for _, c := range b.Changes {
			if id, ok := imds.IsInstanceKey(c.Key); ok && !c.Deleted {
				written[id] = true
			}
		}
		for _, c := range b.Changes {
			if id, ok := imds.IsInstanceKey(c.Key); ok {
				if c.Deleted {
					if !written[id] {
						changed[id] = nil
					}
					continue
				}
				in, err := imds.DecodeInstance(c.Value)
				if err != nil {
					f.opts.Logger.Error("skipping an undecodable instance", "instance", id, "err", err)
					continue
				}
				if !f.include(in) {
					in = nil
				}
				changed[id] = in
				continue
			}
			if name, ok := imds.IsSecretKey(c.Key); ok && !c.Deleted && f.opts.OnSecret != nil {
				f.opts.OnSecret(name, c.Value)
			}
		}
	}
	s := f.cur.Load().with(last, changed, f.opts.Now())
	s.ApplyLatency = time.Since(start)
	f.publish(s)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
