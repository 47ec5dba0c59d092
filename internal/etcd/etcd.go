// Package etcd is frontdesk's imds.Store for a fleet: every host runs
// against one etcd cluster, control-plane writes are etcd transactions, and
// every node follows them with an etcd watch. It is the only package that
// imports the etcd client.
//
// Transactions are optimistic. Update runs fn against a snapshot (all reads
// at one etcd revision), remembers what it read, and commits its writes in
// one etcd Txn guarded by compares that fail if anything read has changed
// since; on a conflict it runs fn again. This makes Updates serialisable
// without locks, so two hosts incrementing the same counter lose nothing.
package etcd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Defaults for Config's zero values.
const (
	DefaultPrefix         = "/frontdesk"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 2 * time.Second
	// DefaultMaxAttempts bounds how often Update runs fn when other
	// writers keep winning the race.
	DefaultMaxAttempts = 100
)

// Config says where the cluster is and how to reach it. Only Endpoints is
// required.
type Config struct {
	// Endpoints are client URLs, e.g. https://10.0.0.1:2379.
	Endpoints []string
	// Prefix puts every key under Prefix + "/", so several deployments can
	// share a cluster. Empty means DefaultPrefix.
	Prefix string
	// DialTimeout bounds Open's first contact. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// RequestTimeout bounds each round trip when the caller's context
	// allows longer, so that an unreachable cluster fails requests quickly
	// with ErrUnavailable instead of hanging them. Zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxAttempts bounds Update's retries on conflict. Zero means
	// DefaultMaxAttempts.
	MaxAttempts int
	// TLS enables TLS (with client certificates) when any file is set.
	TLS TLSFiles
	// Logger receives watch reconnects and conflicts. Nil discards.
	Logger *slog.Logger
}

// TLSFiles are PEM files for a TLS connection to etcd.
type TLSFiles struct {
	// CAFile verifies the servers; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate, if etcd wants one.
	CertFile, KeyFile string
}

func (f TLSFiles) config() (*tls.Config, error) {
	if f.CAFile == "" && f.CertFile == "" && f.KeyFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", f.CAFile)
		}
	}
	if f.CertFile != "" || f.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Store is an imds.Store on an etcd cluster.
type Store struct {
	cli         *clientv3.Client
	prefix      string // cfg.Prefix + "/": every user key lies under it
	deletions   string // bumped by every Update that deletes; see commit
	reqTimeout  time.Duration
	maxAttempts int
	log         *slog.Logger

	// gate admits operations until Close, which waits for them.
	gate imds.Gate
	// stop ends every watch on Close.
	stop    context.CancelFunc
	stopCtx context.Context
	watches sync.WaitGroup
}

var _ imds.Store = (*Store)(nil)

// Open connects to the cluster and checks that it answers, so that a
// misconfigured daemon fails at start. Errors: ErrUnavailable when no
// endpoint answers within DialTimeout.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints configured")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsConf, err := cfg.TLS.config()
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		TLS:                  tlsConf,
		// gRPC's default reconnect backoff grows to two minutes: a store
		// would stay "unavailable" long after etcd is back. Retry often.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: cfg.DialTimeout,
		})},
		// The client's own logging goes nowhere; the Store logs what
		// matters through slog.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connect to %v: %w: %w", cfg.Endpoints, imds.ErrUnavailable, err)
	}
	stopCtx, stop := context.WithCancel(context.Background())
	s := &Store{
		cli:         cli,
		prefix:      cfg.Prefix + "/",
		deletions:   cfg.Prefix + "\x00deletions",
		reqTimeout:  cfg.RequestTimeout,
		maxAttempts: cfg.MaxAttempts,
		log:         log,
		stop:        stop,
		stopCtx:     stopCtx,
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	resp, err := cli.Get(pctx, s.prefix)
	if err != nil {
		stop()
		_ = cli.Close()
		return nil, fmt.Errorf("etcd: connect to %v: %w", cfg.Endpoints, s.unavailable(ctx, err))
	}
	log.Info("etcd store opened", "endpoints", cfg.Endpoints, "prefix", cfg.Prefix, "revision", resp.Header.Revision)
	return s, nil
}

// unavailable classifies a failed etcd call: when the cluster did not
// answer (down, no leader, timed out) the error wraps imds.ErrUnavailable;
// when the caller canceled, its context's error.
func (s *Store) unavailable(ctx context.Context, err error) error {
	if cerr := ctx.Err(); errors.Is(cerr, context.Canceled) {
		return cerr
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		code == codes.Unavailable, code == codes.DeadlineExceeded, code == codes.Canceled,
		// A member whose own deadline ran out while the cluster elected a
		// leader answers with this status (seen when the leader is killed
		// under load).
		code == codes.Unknown && status.Convert(err).Message() == context.DeadlineExceeded.Error():
		return fmt.Errorf("%w: %w", imds.ErrUnavailable, err)
	}
	return err
}

// call runs one round trip bounded by the request timeout.
func (s *Store) call(ctx context.Context, fn func(ctx context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	if err := fn(rctx); err != nil {
		return s.unavailable(ctx, err)
	}
	return nil
}

func (s *Store) key(k string) string { return s.prefix + k }

// View implements imds.Store. Every read of fn is made at the revision of
// its first read.
func (s *Store) View(ctx context.Context, fn func(imds.Tx) error) error {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	for attempt := 1; ; attempt++ {
		t := &tx{s: s, ctx: ctx, readOnly: true}
		err := fn(t)
		if t.err != nil {
			// The snapshot was compacted under a long View: take a
			// newer one.
			if errors.Is(t.err, rpctypes.ErrCompacted) && attempt < s.maxAttempts {
				continue
			}
			return fmt.Errorf("etcd: view: %w", t.err)
		}
		return err
	}
}

// Update implements imds.Store. fn may run several times; the writes of
// the last run are committed atomically, or none are.
//
// Errors: ErrUnavailable when etcd does not answer. A commit whose answer
// is lost (the cluster failed mid-request) also reports ErrUnavailable;
// the transaction is then either wholly applied or not at all, and a reader
// learns which from View.
func (s *Store) Update(ctx context.Context, fn func(imds.Tx) error) error {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	backoff := 2 * time.Millisecond
	for attempt := 1; ; attempt++ {
		done, err := s.try(ctx, fn)
		if done {
			return err
		}
		if attempt >= s.maxAttempts {
			return fmt.Errorf("etcd: update: %d attempts lost to concurrent writers: %w", attempt, err)
		}
		// Jittered exponential backoff, so that writers that collided
		// do not collide again in step.
		d := backoff/2 + rand.N(backoff)
		backoff = min(backoff*2, 200*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

var errConflict = errors.New("conflict")

// try runs fn once and commits. done is false when the attempt lost a race
// (or its snapshot was compacted) and fn should run again.
func (s *Store) try(ctx context.Context, fn func(imds.Tx) error) (done bool, err error) {
	t := &tx{s: s, ctx: ctx, reads: map[string]read{}, writes: map[string]*write{}}
	fnErr := fn(t)
	if t.err != nil {
		// A read failed: whatever fn made of it, nothing is committed.
		if errors.Is(t.err, rpctypes.ErrCompacted) {
			return false, t.err
		}
		return true, fmt.Errorf("etcd: update: %w", t.err)
	}
	if fnErr != nil {
		return true, fnErr
	}
	if len(t.writes) == 0 {
		return true, nil
	}
	ok, err := s.commit(ctx, t)
	if err != nil {
		return true, fmt.Errorf("etcd: commit: %w", err)
	}
	if !ok {
		return false, errConflict
	}
	return true, nil
}

// commit writes t's changes in one Txn that succeeds only if nothing t read
// has changed since its snapshot:
//   - a key read with Get (or deleted, which reads it) must still have the
//     mod revision it had, 0 meaning still absent;
//   - a scanned prefix must hold no key modified after the snapshot (which
//     also catches keys created since), and no key may have been deleted
//     since: a deletion leaves nothing in the range to compare, so every
//     deleting Update also bumps one "deletions" key, compared here.
//
// The deletions key lies outside the watched prefix, so watchers never see
// it; a scanning Update may now and then retry for a deletion elsewhere,
// which is cheap.
func (s *Store) commit(ctx context.Context, t *tx) (bool, error) {
	var cmps []clientv3.Cmp
	for k, r := range t.reads {
		if r.exists {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key(k)), "=", r.modRev))
		} else {
			// Still absent: an index key (an address, a client token, an
			// instance id) nobody created meanwhile. Each is compared on
			// its own, so launches that claim different keys never
			// conflict.
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.key(k)), "=", 0))
		}
	}
	for p := range t.scans {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key(p)).WithPrefix(), "<", t.rev+1))
	}
	if len(t.scans) > 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.deletions), "<", t.rev+1))
	}
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ops := make([]clientv3.Op, 0, len(keys)+1)
	deletes := false
	for _, k := range keys {
		w := t.writes[k]
		if w.deleted {
			ops = append(ops, clientv3.OpDelete(s.key(k)))
			deletes = true
		} else {
			ops = append(ops, clientv3.OpPut(s.key(k), string(w.value)))
		}
	}
	if deletes {
		ops = append(ops, clientv3.OpPut(s.deletions, ""))
	}
	var resp *clientv3.TxnResponse
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		return err
	})
	if err != nil {
		return false, err
	}
	if !resp.Succeeded {
		s.log.Debug("etcd update conflict, retrying", "snapshot", t.rev, "revision", resp.Header.Revision)
	}
	return resp.Succeeded, nil
}

// Watch implements imds.Store with an etcd watch on the prefix. The etcd
// client resumes a broken stream from the last revision it delivered; when
// that revision has been compacted meanwhile the watch ends with
// ErrCompacted.
func (s *Store) Watch(ctx context.Context, rev int64) (<-chan imds.Batch, error) {
	return s.watch(ctx, rev, []string{""}, false)
}

// WatchPrefixes implements imds.Store. One prefix is one etcd watch; several
// are several watches on one stream, merged by revision (see followMerged).
func (s *Store) WatchPrefixes(ctx context.Context, rev int64, prefixes []string) (<-chan imds.Batch, error) {
	if err := imds.CheckPrefixes(prefixes); err != nil {
		return nil, err
	}
	return s.watch(ctx, rev, minimalPrefixes(prefixes), true)
}

// minimalPrefixes drops duplicates and prefixes covered by shorter ones, so
// that no change is watched twice.
func minimalPrefixes(ps []string) []string {
	sorted := slices.Clone(ps)
	slices.Sort(sorted)
	var out []string
	for _, p := range sorted {
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// watch follows prefixes from rev; with progress it also sends progress
// batches (WatchPrefixes' contract; Watch's has none).
func (s *Store) watch(ctx context.Context, rev int64, prefixes []string, progress bool) (<-chan imds.Batch, error) {
	leave, err := s.gate.Enter(context.Background())
	if err != nil {
		return nil, err
	}
	defer leave()
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopCtx, cancel)
	out := make(chan imds.Batch, 64)
	s.watches.Add(1)
	go func() {
		defer s.watches.Done()
		defer close(out)
		defer stop()
		defer cancel()
		if len(prefixes) == 1 {
			s.follow(wctx, rev, prefixes[0], progress, out)
		} else {
			s.followMerged(wctx, rev, prefixes, out)
		}
	}()
	return out, nil
}

// follow delivers the batches after rev until ctx ends or the history is
// gone. With progress, a watch quiet for progressIdle asks etcd where it
// stands and sends the answer as a progress batch.
func (s *Store) follow(ctx context.Context, rev int64, prefix string, progress bool, out chan<- imds.Batch) {
	send := func(b imds.Batch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	last := rev         // revision delivered (events or progress)
	lastEvent := rev    // revision of the last event delivered
	prevProgress := rev // the latest progress notification's revision
	var tick <-chan time.Time
	if progress {
		t := time.NewTicker(progressIdle)
		defer t.Stop()
		tick = t.C
	}
	for ctx.Err() == nil {
		// RequireLeader ends the stream of a member cut off from its
		// cluster, so we reconnect (possibly elsewhere) instead of
		// waiting on a member that will see no new commits.
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := s.cli.Watch(wctx, s.key(prefix), clientv3.WithPrefix(), clientv3.WithRev(last+1))
		trustFrom := time.Now().Add(progressTrust)
		quiet := true
		for {
			var resp clientv3.WatchResponse
			var ok bool
			select {
			case <-tick:
				if quiet {
					_ = s.cli.RequestProgress(wctx)
				}
				quiet = true
				continue
			case resp, ok = <-wch:
			}
			if !ok {
				break
			}
			quiet = false
			if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
				cancel()
				send(imds.Batch{Revision: resp.CompactRevision, Err: fmt.Errorf("etcd: watch from revision %d: %w", last, imds.ErrCompacted)})
				return
			}
			if err := resp.Err(); err != nil {
				s.log.Warn("etcd watch interrupted, resuming", "revision", last, "err", err)
				break
			}
			if resp.IsProgressNotify() && time.Now().Before(trustFrom) {
				continue // see progressTrust
			}
			if resp.IsProgressNotify() {
				// Passed on one notification late, as in merge: an
				// older etcd could send one ahead of queued events.
				if progress && prevProgress > last {
					if !send(imds.Batch{Revision: prevProgress}) {
						cancel()
						return
					}
					last = prevProgress
				}
				prevProgress = max(prevProgress, resp.Header.Revision)
				continue
			}
			for _, b := range s.batches(resp.Events) {
				if b.Revision <= last {
					if b.Revision > lastEvent {
						// A progress notification overtook this event:
						// the reader must reload rather than miss it.
						cancel()
						send(imds.Batch{Revision: last, Err: fmt.Errorf("etcd: watch event %d after progress to %d: %w", b.Revision, last, imds.ErrCompacted)})
						return
					}
					continue // already delivered before a reconnect
				}
				if !send(b) {
					cancel()
					return
				}
				last, lastEvent = b.Revision, b.Revision
			}
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// batches groups events by revision: etcd never splits one revision (one
// Txn) across watch responses.
func (s *Store) batches(evs []*clientv3.Event) []imds.Batch {
	var out []imds.Batch
	for _, ev := range evs {
		rev := ev.Kv.ModRevision
		if len(out) == 0 || out[len(out)-1].Revision != rev {
			out = append(out, imds.Batch{Revision: rev})
		}
		b := &out[len(out)-1]
		c := imds.Change{Key: strings.TrimPrefix(string(ev.Kv.Key), s.prefix)}
		if ev.Type == mvccpb.DELETE {
			c.Deleted = true
		} else {
			c.Value = bytes.Clone(ev.Kv.Value)
			if c.Value == nil {
				c.Value = []byte{}
			}
		}
		b.Changes = append(b.Changes, c)
	}
	return out
}

// Close ends every watch and disconnects. Later calls return ErrClosed.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.stop()
		s.watches.Wait()
		if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("etcd: close: %w", err)
		}
		return nil
	})
}

// tx is one attempt of a View or Update. The first read fixes the
// revision every later read is made at.
type tx struct {
	s        *Store
	ctx      context.Context
	readOnly bool
	rev      int64 // 0 until the first read
	err      error // the first failed read; the attempt is void

	reads  map[string]read   // Update: every key read, for the compares
	scans  map[string]bool   // Update: every prefix scanned
	writes map[string]*write // Update: pending writes, applied at commit
}

type read struct {
	value  []byte
	exists bool
	modRev int64 // 0 when absent
}

type write struct {
	value   []byte
	deleted bool
}

var errReadOnly = errors.New("etcd: write in a read-only transaction")

// get reads keys (one key, or a prefix range) at the transaction's
// revision, fixing it on the first read.
func (t *tx) get(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if t.err != nil {
		return nil, t.err
	}
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
	}
	var resp *clientv3.GetResponse
	err := t.s.call(t.ctx, func(ctx context.Context) error {
		var err error
		resp, err = t.s.cli.Get(ctx, key, opts...)
		return err
	})
	if err != nil {
		t.err = err
		return nil, err
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	return resp, nil
}

// lookup reads one key from the store (not from pending writes), once.
func (t *tx) lookup(key string) (read, error) {
	if r, ok := t.reads[key]; ok {
		return r, nil
	}
	resp, err := t.get(t.s.key(key))
	if err != nil {
		return read{}, err
	}
	var r read
	if len(resp.Kvs) > 0 {
		kv := resp.Kvs[0]
		r = read{value: kv.Value, exists: true, modRev: kv.ModRevision}
		if r.value == nil {
			r.value = []byte{}
		}
	}
	if t.reads != nil {
		t.reads[key] = r
	}
	return r, nil
}

func (t *tx) Get(key string) ([]byte, error) {
	if w, ok := t.writes[key]; ok {
		if w.deleted {
			return nil, imds.ErrNotFound
		}
		return w.value, nil
	}
	r, err := t.lookup(key)
	if err != nil {
		return nil, err
	}
	if !r.exists {
		return nil, imds.ErrNotFound
	}
	return r.value, nil
}

func (t *tx) checkWrite(key string) error {
	if t.readOnly {
		return errReadOnly
	}
	if key == "" {
		return fmt.Errorf("etcd: %w: empty key", imds.ErrInvalid)
	}
	return nil
}

func (t *tx) Put(key string, value []byte) error {
	if err := t.checkWrite(key); err != nil {
		return err
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	t.writes[key] = &write{value: v}
	return nil
}

// Delete reads the key first: deleting what never existed is no change,
// and a deleting Txn must bump the deletions key (see commit) only when it
// really deletes.
func (t *tx) Delete(key string) error {
	if err := t.checkWrite(key); err != nil {
		return err
	}
	r, err := t.lookup(key)
	if err != nil {
		return err
	}
	if r.exists {
		t.writes[key] = &write{deleted: true}
	} else {
		delete(t.writes, key)
	}
	return nil
}

func (t *tx) Scan(prefix string, fn func(string, []byte) error) error {
	return t.scan(prefix, true, fn)
}

// ScanUnguarded implements imds.UnguardedScanner: the range is read at the
// transaction's revision, but the commit does not compare it.
func (t *tx) ScanUnguarded(prefix string, fn func(string, []byte) error) error {
	return t.scan(prefix, false, fn)
}

func (t *tx) scan(prefix string, guard bool, fn func(string, []byte) error) error {
	resp, err := t.get(t.s.key(prefix), clientv3.WithPrefix())
	if err != nil {
		return err
	}
	vals := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		v := kv.Value
		if v == nil {
			v = []byte{}
		}
		vals[strings.TrimPrefix(string(kv.Key), t.s.prefix)] = v
	}
	if !t.readOnly {
		if guard {
			if t.scans == nil {
				t.scans = map[string]bool{}
			}
			t.scans[prefix] = true
		}
		for k, w := range t.writes {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			if w.deleted {
				delete(vals, k)
			} else {
				vals[k] = w.value
			}
		}
	}
	return imds.ScanInOrder(vals, fn)
}

func (t *tx) Revision() int64 {
	if t.rev == 0 {
		// Fix the snapshot now: a cheap read of a key that never exists.
		_, _ = t.get(t.s.prefix)
	}
	return t.rev
}
