// Package bolt is frontdesk's embedded imds.Store: one bbolt file on the
// host (the daemon uses FileName in its data directory). Every commit is fsynced
// before Update returns, so an acknowledged write survives a crash or power
// loss. It is the only package that imports bbolt.
//
// bbolt allows one process per file; a second daemon pointed at the same
// file fails to open after Options.Timeout instead of hanging.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Bucket and key names inside the file.
var (
	kvBucket    = []byte("kv")
	metaBucket  = []byte("meta")
	revisionKey = []byte("revision")
)

// FileName is the store's file in the daemon's data directory.
const FileName = "frontdesk.db"

// fileMode keeps the file private: it holds signing keys and credentials.
const fileMode = 0o600

// Options tune a Store. The zero value works.
type Options struct {
	// Timeout bounds the wait for the file lock that another process may
	// hold. Zero means one second.
	Timeout time.Duration
	// History is how many recent transactions Watch can replay; a watcher
	// asking for an older revision gets ErrCompacted and reloads. Zero means
	// 1024. History starts empty when the file is opened.
	History int
	// Logger receives the open notice. Nil discards.
	Logger *slog.Logger
}

// Store is an imds.Store on one bbolt file.
type Store struct {
	db   *bbolt.DB
	feed *imds.Feed

	// gate admits View, Update and Watch until Close, which waits for
	// them.
	gate imds.Gate
	// wmu serialises Updates from commit to Publish: bbolt releases its
	// writer lock before commit handlers run, so without it two batches
	// could reach the feed out of order.
	wmu sync.Mutex
}

var _ imds.Store = (*Store)(nil)

// Open opens (creating if needed) the store at path. The parent directory is
// created with mode 0700 if missing; the file gets mode 0600.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.History <= 0 {
		opts.History = 1024
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create data directory: %w", err)
	}
	// NoSync stays false: every commit is fsynced.
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: %w: the file is locked, is another frontdesk using it? (waited %s: %w)", path, imds.ErrUnavailable, opts.Timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	var rev int64
	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(kvBucket); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		rev, err = readRevision(meta)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	log.Info("bolt store opened", "path", path, "revision", rev)
	return &Store{db: db, feed: imds.NewFeed(rev, opts.History)}, nil
}

func readRevision(meta *bbolt.Bucket) (int64, error) {
	v := meta.Get(revisionKey)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt revision record (%d bytes)", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// View implements imds.Store.
func (s *Store) View(ctx context.Context, fn func(imds.Tx) error) error {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	var fnErr error
	err = s.db.View(func(btx *bbolt.Tx) error {
		t, err := newTx(btx)
		if err != nil {
			return err
		}
		fnErr = fn(t)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("bolt: view: %w", err)
	}
	return nil
}

// Update implements imds.Store. It returns once the commit is on disk.
func (s *Store) Update(ctx context.Context, fn func(imds.Tx) error) error {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var (
		fnErr error
		batch imds.Batch
	)
	err = s.db.Update(func(btx *bbolt.Tx) error {
		t, err := newTx(btx)
		if err != nil {
			return err
		}
		t.changes = map[string]imds.Change{}
		t.existed = map[string]bool{}
		if fnErr = fn(t); fnErr != nil {
			return fnErr
		}
		if len(t.changes) == 0 {
			return nil
		}
		batch = imds.Batch{Revision: t.rev + 1, Changes: make([]imds.Change, 0, len(t.changes))}
		for _, c := range t.changes {
			batch.Changes = append(batch.Changes, c)
		}
		sort.Slice(batch.Changes, func(i, j int) bool { return batch.Changes[i].Key < batch.Changes[j].Key })
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(batch.Revision))
		return btx.Bucket(metaBucket).Put(revisionKey, buf[:])
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("bolt: commit: %w", err)
	}
	if batch.Revision != 0 {
		s.feed.Publish(batch)
	}
	return nil
}

// Watch implements imds.Store.
func (s *Store) Watch(ctx context.Context, rev int64) (<-chan imds.Batch, error) {
	leave, err := s.gate.Enter(context.Background())
	if err != nil {
		return nil, err
	}
	defer leave()
	return s.feed.Watch(ctx, rev)
}

// WatchPrefixes implements imds.Store.
func (s *Store) WatchPrefixes(ctx context.Context, rev int64, prefixes []string) (<-chan imds.Batch, error) {
	leave, err := s.gate.Enter(context.Background())
	if err != nil {
		return nil, err
	}
	defer leave()
	return s.feed.WatchPrefixes(ctx, rev, prefixes)
}

// Close ends every watch and closes the file, waiting for running
// transactions. Later calls return ErrClosed.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.feed.Close()
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("bolt: close: %w", err)
		}
		return nil
	})
}

// tx adapts a bbolt transaction. In an Update it also records the net
// change of every key, which becomes the Batch.
type tx struct {
	kv  *bbolt.Bucket
	rev int64
	// changes and existed are nil in a View. existed says whether a key
	// was present when the transaction began, so that writing and then
	// deleting a new key is no change at all.
	changes map[string]imds.Change
	existed map[string]bool
}

var errReadOnly = errors.New("bolt: write in a read-only transaction")

func newTx(btx *bbolt.Tx) (*tx, error) {
	kv, meta := btx.Bucket(kvBucket), btx.Bucket(metaBucket)
	if kv == nil || meta == nil {
		return nil, errors.New("bolt: buckets missing")
	}
	rev, err := readRevision(meta)
	if err != nil {
		return nil, err
	}
	return &tx{kv: kv, rev: rev}, nil
}

// lookup tells a present empty value from a missing key, which bbolt's Get
// does not promise to.
func (t *tx) lookup(key string) ([]byte, bool) {
	k, v := t.kv.Cursor().Seek([]byte(key))
	if k == nil || string(k) != key {
		return nil, false
	}
	if v == nil {
		v = []byte{}
	}
	return v, true
}

func (t *tx) Get(key string) ([]byte, error) {
	v, ok := t.lookup(key)
	if !ok {
		return nil, imds.ErrNotFound
	}
	return v, nil
}

func (t *tx) touch(key string) error {
	if t.changes == nil {
		return errReadOnly
	}
	if key == "" {
		return fmt.Errorf("bolt: %w: empty key", imds.ErrInvalid)
	}
	if _, ok := t.existed[key]; !ok {
		_, t.existed[key] = t.lookup(key)
	}
	return nil
}

func (t *tx) Put(key string, value []byte) error {
	if err := t.touch(key); err != nil {
		return err
	}
	// bbolt keeps the slice until commit; the caller may reuse its own.
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	if err := t.kv.Put([]byte(key), v); err != nil {
		return fmt.Errorf("bolt: put %q: %w", key, err)
	}
	t.changes[key] = imds.Change{Key: key, Value: v}
	return nil
}

func (t *tx) Delete(key string) error {
	if err := t.touch(key); err != nil {
		return err
	}
	if err := t.kv.Delete([]byte(key)); err != nil {
		return fmt.Errorf("bolt: delete %q: %w", key, err)
	}
	if t.existed[key] {
		t.changes[key] = imds.Change{Key: key, Deleted: true}
	} else {
		delete(t.changes, key)
	}
	return nil
}

func (t *tx) Scan(prefix string, fn func(string, []byte) error) error {
	p := []byte(prefix)
	c := t.kv.Cursor()
	if t.changes == nil {
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if err := fn(string(k), nonNil(v)); err != nil {
				return err
			}
		}
		return nil
	}
	// fn may write, and bbolt cursors do not survive writes to their
	// bucket: collect first.
	type kv struct {
		k string
		v []byte
	}
	var all []kv
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		all = append(all, kv{string(k), nonNil(v)})
	}
	for _, e := range all {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Revision() int64 { return t.rev }

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
