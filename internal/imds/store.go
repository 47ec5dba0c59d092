package imds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors of the domain and of every Store. Backends wrap them with %w and
// context; callers test them with errors.Is.
var (
	// ErrNotFound: the key, instance or record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a value fails validation.
	ErrInvalid = errors.New("invalid value")
	// ErrAddressInUse: another live instance already holds the address.
	ErrAddressInUse = errors.New("address in use")
	// ErrTokensEnforced: the account enforces IMDSv2 and the change would not.
	ErrTokensEnforced = errors.New("imdsv2 enforced")
	// ErrCompacted: Watch cannot resume from the requested revision because
	// the history is gone; reload everything with View and watch again.
	ErrCompacted = errors.New("revision compacted")
	// ErrUnavailable: the store cannot be reached; nothing was written.
	ErrUnavailable = errors.New("store unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// Store is frontdesk's persistent state: an ordered key-value space with
// serialisable transactions and a change feed. Keys are slash-separated
// strings; values are opaque bytes. The key layout belongs to this package.
//
// Every store has a revision, a number that grows with each committed Update
// that changed something. Watch reports changes by revision so that a
// reader can load a consistent view (View reports its revision) and then
// follow every later change exactly once.
type Store interface {
	// View runs fn in a read-only transaction over a consistent view.
	// Errors: ErrUnavailable, ErrClosed, or whatever fn returns.
	View(ctx context.Context, fn func(Tx) error) error

	// Update runs fn in a read-write transaction and commits it atomically
	// if fn returns nil; nothing is written if fn returns an error. A
	// backend with optimistic concurrency (etcd) may run fn more than once,
	// so fn must depend only on what it reads through tx.
	// Errors: ErrUnavailable (nothing written), ErrClosed, or fn's error.
	Update(ctx context.Context, fn func(Tx) error) error

	// Watch reports every change committed after revision rev, in order,
	// one Batch per transaction, until ctx ends (the channel is then
	// closed). If rev is older than the history the store keeps, the first
	// and only Batch has Err set to ErrCompacted. A backend whose
	// connection breaks resumes by itself; it reports ErrCompacted when it
	// cannot resume without a gap.
	Watch(ctx context.Context, rev int64) (<-chan Batch, error)

	// WatchPrefixes is Watch limited to the keys under any of prefixes (a
	// node follows only its own key ranges; see Scope). Each Batch carries
	// only the changes under them, and a transaction that changed none of
	// them sends no Batch; otherwise the guarantees are Watch's: batches in
	// revision order, every matching change exactly once, Err batches when
	// the watch cannot go on. Now and then a Batch may come with no
	// Changes: progress, meaning nothing under the prefixes changed up to
	// its Revision (so a node that serves one host still knows how far it
	// has followed the store). The prefix "" covers every key. An empty
	// list is an error (ErrInvalid).
	WatchPrefixes(ctx context.Context, rev int64, prefixes []string) (<-chan Batch, error)

	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

// Tx is a transaction. It is valid only inside the function it is given to.
type Tx interface {
	// Get returns the value of key, or ErrNotFound. The slice must not be
	// modified or kept after the transaction.
	Get(key string) ([]byte, error)
	// Put sets key to value. It fails in a read-only transaction.
	Put(key string, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(key string) error
	// Scan calls fn for every key with the prefix, in key order, stopping
	// at fn's first error (which Scan returns).
	Scan(prefix string, fn func(key string, value []byte) error) error
	// Revision is the store revision this transaction reads at.
	Revision() int64
}

// UnguardedScanner is a Tx that can scan a range without making its commit
// depend on the whole range (etcd's transactions otherwise fail when any key
// under a scanned prefix changed meanwhile). See ScanUnguarded.
type UnguardedScanner interface {
	ScanUnguarded(prefix string, fn func(key string, value []byte) error) error
}

// ScanUnguarded is Scan for housekeeping that must not make a transaction
// conflict with every concurrent writer of the range (sweeping expired
// client tokens inside a launch): the commit does not depend on the range,
// so the caller must Get each key it acts on, which the commit does depend
// on. Stores without optimistic concurrency just Scan.
func ScanUnguarded(tx Tx, prefix string, fn func(key string, value []byte) error) error {
	if u, ok := tx.(UnguardedScanner); ok {
		return u.ScanUnguarded(prefix, fn)
	}
	return tx.Scan(prefix, fn)
}

// Batch is the set of changes one committed transaction made.
type Batch struct {
	Revision int64
	Changes  []Change
	// Err is set (to ErrCompacted or ErrUnavailable) when the watch cannot
	// go on; the reader reloads with View and watches again.
	Err error
}

// Change is one key's new value, or its deletion.
type Change struct {
	Key     string
	Value   []byte
	Deleted bool
}

// UnderAny reports whether key lies under one of prefixes.
func UnderAny(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// Only returns b with just the changes under prefixes, and whether any
// remain. A batch with Err set is kept whole. Nil prefixes keep everything.
// When none remain, the returned Batch is b's progress: its Revision alone.
func (b Batch) Only(prefixes []string) (Batch, bool) {
	if prefixes == nil || b.Err != nil {
		return b, true
	}
	var kept []Change
	for _, c := range b.Changes {
		if UnderAny(c.Key, prefixes) {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		return Batch{Revision: b.Revision}, false
	}
	b.Changes = kept
	return b, true
}

// CheckPrefixes validates the prefixes given to WatchPrefixes.
func CheckPrefixes(prefixes []string) error {
	if len(prefixes) == 0 {
		return fmt.Errorf("%w: watch of no key prefix", ErrInvalid)
	}
	return nil
}

// ScanInOrder calls fn for every entry of vals in key order, stopping at
// fn's first error. Backends that gather a scan in a map (a transaction's
// reads merged with its pending writes) answer Tx.Scan with it.
func ScanInOrder(vals map[string][]byte, fn func(key string, value []byte) error) error {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn(k, vals[k]); err != nil {
			return err
		}
	}
	return nil
}
