package imds

import (
	"context"
	"slices"
	"sync"
)

// Feed is the change feed of a single-process Store (memory, bolt): it keeps
// the most recent batches so that a watcher can resume from a revision, and
// delivers later batches to every watcher in order. A watcher that falls so
// far behind that its buffer fills is ended with ErrCompacted rather than
// blocking the writers.
type Feed struct {
	mu       sync.Mutex
	history  []Batch // ascending revisions, at most keep
	keep     int
	last     int64 // revision of the last published batch
	watchers map[*feedWatcher]struct{}
	closed   bool
}

type feedWatcher struct {
	ch       chan Batch
	done     bool
	prefixes []string // nil: every key
}

// watcherBuffer bounds how far one watcher may lag before it must reload.
const watcherBuffer = 4096

// NewFeed returns a feed whose current revision is rev, keeping up to keep
// batches of history.
func NewFeed(rev int64, keep int) *Feed {
	if keep < 1 {
		keep = 1024
	}
	return &Feed{keep: keep, last: rev, watchers: map[*feedWatcher]struct{}{}}
}

// Publish delivers a committed batch. Revisions must grow. The caller must
// publish in commit order (publish while still holding its write lock).
func (f *Feed) Publish(b Batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = b.Revision
	f.history = append(f.history, b)
	if len(f.history) > f.keep {
		f.history = append(f.history[:0:0], f.history[len(f.history)-f.keep:]...)
	}
	for w := range f.watchers {
		f.send(w, b)
	}
}

// send delivers without blocking; a full buffer ends the watcher with
// ErrCompacted. Called with f.mu held.
func (f *Feed) send(w *feedWatcher, b Batch) {
	if w.done {
		return
	}
	// A batch with nothing under the watcher's prefixes is sent as
	// progress (its revision alone), which costs a channel send here.
	b, _ = b.Only(w.prefixes)
	select {
	case w.ch <- b:
	default:
		w.done = true
		// Make room for the terminal batch: the reader will reload anyway.
		for len(w.ch) > 0 {
			<-w.ch
		}
		w.ch <- Batch{Revision: b.Revision, Err: ErrCompacted}
		close(w.ch)
		delete(f.watchers, w)
	}
}

// Watch implements Store.Watch for the feed's store.
func (f *Feed) Watch(ctx context.Context, rev int64) (<-chan Batch, error) {
	return f.watch(ctx, rev, nil)
}

// WatchPrefixes implements Store.WatchPrefixes for the feed's store.
func (f *Feed) WatchPrefixes(ctx context.Context, rev int64, prefixes []string) (<-chan Batch, error) {
	if err := CheckPrefixes(prefixes); err != nil {
		return nil, err
	}
	return f.watch(ctx, rev, slices.Clone(prefixes))
}

func (f *Feed) watch(ctx context.Context, rev int64, prefixes []string) (<-chan Batch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	// The replayed history goes into the buffer while f.mu is held, so the
	// buffer must hold all of it (keep may exceed watcherBuffer) plus room
	// to lag.
	replay := 0
	for _, b := range f.history {
		if b.Revision > rev {
			replay++
		}
	}
	w := &feedWatcher{ch: make(chan Batch, watcherBuffer+replay), prefixes: prefixes}
	if rev < f.last {
		oldest := f.last + 1
		if len(f.history) > 0 {
			oldest = f.history[0].Revision
		}
		// Batches rev+1 .. last must all be in history.
		if rev+1 < oldest {
			w.ch <- Batch{Revision: f.last, Err: ErrCompacted}
			close(w.ch)
			return w.ch, nil
		}
		for _, b := range f.history {
			if b.Revision > rev {
				b, _ := b.Only(prefixes)
				w.ch <- b
			}
		}
	}
	f.watchers[w] = struct{}{}
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.watchers[w]; ok {
			delete(f.watchers, w)
			w.done = true
			close(w.ch)
		}
	}()
	return w.ch, nil
}

// Close ends every watcher.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for w := range f.watchers {
		w.done = true
		close(w.ch)
		delete(f.watchers, w)
	}
}
