// Package memstore is an in-memory imds.Store for tests and for embedding
// frontdesk as a library. It passes the same suite (storetest) as the
// durable backends, so it is a trustworthy fake.
package memstore

import (
	"context"
	"sort"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Store keeps everything in a map guarded by a RWMutex. Update copies
// nothing: it records writes in a pending set and applies them on commit.
type Store struct {
	gate imds.Gate // also guards data and rev: Update enters alone
	data map[string][]byte
	rev  int64
	feed *imds.Feed
}

// New returns an empty store at revision 0.
func New() *Store {
	return &Store{data: map[string][]byte{}, feed: imds.NewFeed(0, 1024)}
}

// View implements imds.Store.
func (s *Store) View(ctx context.Context, fn func(imds.Tx) error) error {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	return fn(&tx{s: s, readOnly: true})
}

// Update implements imds.Store.
func (s *Store) Update(ctx context.Context, fn func(imds.Tx) error) error {
	leave, err := s.gate.EnterAlone(ctx)
	if err != nil {
		return err
	}
	defer leave()
	t := &tx{s: s, pending: map[string]*[]byte{}}
	if err := fn(t); err != nil {
		return err
	}
	if len(t.pending) == 0 {
		return nil
	}
	s.rev++
	b := imds.Batch{Revision: s.rev}
	keys := make([]string, 0, len(t.pending))
	for k := range t.pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := t.pending[k]
		if v == nil {
			delete(s.data, k)
			b.Changes = append(b.Changes, imds.Change{Key: k, Deleted: true})
			continue
		}
		s.data[k] = *v
		b.Changes = append(b.Changes, imds.Change{Key: k, Value: *v})
	}
	s.feed.Publish(b)
	return nil
}

// Watch implements imds.Store.
func (s *Store) Watch(ctx context.Context, rev int64) (<-chan imds.Batch, error) {
	return s.feed.Watch(ctx, rev)
}

// WatchPrefixes implements imds.Store.
func (s *Store) WatchPrefixes(ctx context.Context, rev int64, prefixes []string) (<-chan imds.Batch, error) {
	return s.feed.WatchPrefixes(ctx, rev, prefixes)
}

// Close implements imds.Store.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.feed.Close()
		return nil
	})
}

type tx struct {
	s        *Store
	readOnly bool
	pending  map[string]*[]byte // nil value: deleted
}

func (t *tx) Get(key string) ([]byte, error) {
	if v, ok := t.pending[key]; ok {
		if v == nil {
			return nil, imds.ErrNotFound
		}
		return *v, nil
	}
	v, ok := t.s.data[key]
	if !ok {
		return nil, imds.ErrNotFound
	}
	return v, nil
}

func (t *tx) Put(key string, value []byte) error {
	if t.readOnly {
		return errReadOnly
	}
	v := append([]byte(nil), value...)
	t.pending[key] = &v
	return nil
}

func (t *tx) Delete(key string) error {
	if t.readOnly {
		return errReadOnly
	}
	if _, ok := t.s.data[key]; !ok {
		// Never committed: forget any pending write instead of recording a
		// deletion of something that did not exist.
		delete(t.pending, key)
		return nil
	}
	t.pending[key] = nil
	return nil
}

func (t *tx) Scan(prefix string, fn func(string, []byte) error) error {
	seen := map[string][]byte{}
	for k, v := range t.s.data {
		if strings.HasPrefix(k, prefix) {
			seen[k] = v
		}
	}
	for k, v := range t.pending {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if v == nil {
			delete(seen, k)
		} else {
			seen[k] = *v
		}
	}
	return imds.ScanInOrder(seen, fn)
}

func (t *tx) Revision() int64 { return t.s.rev }

type readOnlyError struct{}

func (readOnlyError) Error() string { return "memstore: write in a read-only transaction" }

var errReadOnly error = readOnlyError{}
