package etcd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// progressEvery is how often followMerged asks etcd where the watches stand
// while it holds changes it cannot deliver yet.
const progressEvery = 25 * time.Millisecond

// progressIdle is how long a WatchPrefixes watch stays quiet before it asks
// etcd for progress, which it then sends as a progress batch: a node whose
// ranges rarely change still learns how far it has followed the store. One
// small request per node per interval.
const progressIdle = time.Second

// progressTrust is how long after (re)creating its watches a store ignores
// progress notifications. A watch created at an old revision starts
// "unsynced": etcd sends its backlog from a loop every 100 ms, and etcd
// before 3.4.25 and 3.5.8 answered progress requests with the current
// revision meanwhile, ahead of that backlog. Until then the high-water of
// a watch moves only with its own events.
const progressTrust = time.Second

// watchResp is one response of one of followMerged's watches; closed means
// that watch's channel ended.
type watchResp struct {
	i      int
	resp   clientv3.WatchResponse
	closed bool
}

// followMerged delivers the batches after rev under several prefixes. Each
// prefix is its own etcd watch (all on one gRPC stream), and each delivers
// its events in revision order, but not in step with the others: one
// transaction that touched two prefixes arrives as two responses, possibly
// far apart. So every watch has a high-water revision (the last revision
// it is known to have delivered in full: its latest event, or a progress
// notification's header), and a revision is delivered only once every
// watch has passed it. While changes wait, followMerged asks etcd for
// progress notifications, which move the high-water of quiet watches (one
// notification late: see merge).
//
// Should a watch still deliver an event at or below a revision already
// delivered (a server whose progress notification overtook queued events),
// the watch ends with ErrCompacted so that the reader reloads a consistent
// view instead of missing a change.
func (s *Store) followMerged(ctx context.Context, rev int64, prefixes []string, out chan<- imds.Batch) {
	send := func(b imds.Batch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	last := rev
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		in := make(chan watchResp)
		for i, p := range prefixes {
			wch := s.cli.Watch(wctx, s.key(p), clientv3.WithPrefix(), clientv3.WithRev(last+1))
			go func() {
				for r := range wch {
					select {
					case in <- watchResp{i: i, resp: r}:
					case <-wctx.Done():
						return
					}
				}
				select {
				case in <- watchResp{i: i, closed: true}:
				case <-wctx.Done():
				}
			}()
		}
		var err error
		last, err = s.merge(wctx, in, len(prefixes), last, send)
		cancel()
		if errors.Is(err, imds.ErrCompacted) {
			send(imds.Batch{Revision: last, Err: err})
			return
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("etcd watch interrupted, resuming", "revision", last, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// merge runs one set of watches until one breaks; it returns the last
// revision delivered.
func (s *Store) merge(ctx context.Context, in <-chan watchResp, n int, last int64, send func(imds.Batch) bool) (int64, error) {
	high := make([]int64, n)
	prog := make([]int64, n) // each watch's latest progress notification
	for i := range high {
		high[i], prog[i] = last, last
	}
	pending := map[int64][]imds.Change{}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	quietTicks := 0 // ticks without a response
	trustFrom := time.Now().Add(progressTrust)
	idleTicks := int(progressIdle / progressEvery)
	// deliver sends, in order, every pending revision all watches passed.
	deliver := func() bool {
		floor := slices.Min(high)
		var ready []int64
		for r := range pending {
			if r <= floor {
				ready = append(ready, r)
			}
		}
		slices.Sort(ready)
		for _, r := range ready {
			cs := pending[r]
			delete(pending, r)
			slices.SortFunc(cs, func(a, b imds.Change) int { return strings.Compare(a.Key, b.Key) })
			if !send(imds.Batch{Revision: r, Changes: cs}) {
				return false
			}
			last = r
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-tick.C:
			quietTicks++
			if len(pending) > 0 || quietTicks%idleTicks == 0 {
				_ = s.cli.RequestProgress(ctx)
			}
		case r := <-in:
			quietTicks = 0
			if r.closed {
				return last, errors.New("watch channel closed")
			}
			resp := r.resp
			if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
				return last, fmt.Errorf("etcd: watch from revision %d: %w", last, imds.ErrCompacted)
			}
			if err := resp.Err(); err != nil {
				return last, err
			}
			if resp.IsProgressNotify() && time.Now().Before(trustFrom) {
				continue
			}
			if resp.IsProgressNotify() {
				// Trust a notification one round late: etcd before 3.4.25
				// and 3.5.8 could send one ahead of events it had already
				// queued. The previous notification's revision was
				// generated a round trip earlier; its events have left.
				high[r.i] = max(high[r.i], prog[r.i])
				prog[r.i] = max(prog[r.i], resp.Header.Revision)
			}
			behind := false
			for _, b := range s.batches(resp.Events) {
				if b.Revision <= last {
					return last, fmt.Errorf("etcd: watches out of step at revision %d (delivered %d): %w", b.Revision, last, imds.ErrCompacted)
				}
				pending[b.Revision] = append(pending[b.Revision], b.Changes...)
				high[r.i] = max(high[r.i], b.Revision)
				behind = true
			}
			if !deliver() {
				return last, ctx.Err()
			}
			if floor := slices.Min(high); len(pending) == 0 && floor > last {
				// Every watch has passed floor with nothing more to
				// deliver: progress.
				if !send(imds.Batch{Revision: floor}) {
					return last, ctx.Err()
				}
				last = floor
			}
			if (behind || resp.IsProgressNotify()) && len(pending) > 0 {
				// Ask now rather than at the next tick: the other
				// watches are most likely already past.
				_ = s.cli.RequestProgress(ctx)
			}
		}
	}
}
