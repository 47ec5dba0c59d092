// Package retention purges terminated instances from the store once they
// have been visible for a retention window, as EC2 shows a terminated
// instance for about an hour and then forgets it. Without it every
// instance ever launched would stay in the store, and in every node's
// memory while loading it, for ever.
//
// In a fleet every node runs a Purger, but only the one holding the
// purge lease works: the lease is a record in the store, taken and
// renewed in a transaction, so it works the same on every backend (bolt,
// etcd, memory), and each purge transaction checks it again, so two nodes
// never purge at once. Instances are deleted in small transactions
// (Options.BatchSize) so that a large backlog never makes one big write.
package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// DefaultRetention is how long a terminated instance stays visible, as on
// EC2.
const DefaultRetention = time.Hour

// DefaultBatchSize is how many instances one purge transaction deletes.
const DefaultBatchSize = 64

// leaseName names the purge lease (imds.LeaseKey).
const leaseName = "retention"

// ErrNotHolder is returned by a purge transaction when another node holds
// the lease.
var ErrNotHolder = errors.New("purge lease held by another node")

// Options are the optional knobs of a Purger; the zero value works.
type Options struct {
	// Retention is how long after termination an instance is purged
	// (default DefaultRetention).
	Retention time.Duration
	// Interval is how often the purger looks (default: a quarter of
	// Retention, between one second and one minute).
	Interval time.Duration
	// BatchSize bounds the instances deleted per transaction (default
	// DefaultBatchSize).
	BatchSize int
	// Node names this node in the lease (default: a random name).
	Node string
	// LeaseTTL is how long the lease lasts unless renewed (default: three
	// Intervals), so a node that dies hands over after it.
	LeaseTTL time.Duration
	// AlsoDelete, when set, runs in each purge transaction for every
	// purged instance, to delete the instance's other records (kept under
	// other key prefixes) with it: all or nothing.
	AlsoDelete func(tx imds.Tx, instanceID string) error
	// OnPurged is told how many instances each transaction purged (for
	// frontdesk_instances_purged_total).
	OnPurged func(n int)
	Now      func() time.Time
	Logger   *slog.Logger
}

// Purger deletes terminated instances whose retention window has passed.
type Purger struct {
	store imds.Store
	o     Options
}

// New returns a purger over store.
func New(store imds.Store, o Options) *Purger {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Interval <= 0 {
		o.Interval = min(max(o.Retention/4, time.Second), time.Minute)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 3 * o.Interval
	}
	if o.Node == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Node = "node-" + hex.EncodeToString(b[:])
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Purger{store: store, o: o}
}

// Run purges every Interval until ctx ends.
func (p *Purger) Run(ctx context.Context) error {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		if _, err := p.PurgeOnce(ctx); err != nil && ctx.Err() == nil {
			p.o.Logger.Warn("purging terminated instances failed; trying again later", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// lease is the stored purge lease.
type lease struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// PurgeOnce takes (or renews) the lease and, if this node holds it, purges
// every instance due. It returns how many were purged; 0 and nil when
// another node holds the lease.
func (p *Purger) PurgeOnce(ctx context.Context) (int, error) {
	now := p.o.Now()
	held := false
	err := p.store.Update(ctx, func(tx imds.Tx) error {
		l, err := readLease(tx)
		if err != nil {
			return err
		}
		held = false
		if l.Holder != p.o.Node && now.Before(l.Expires) {
			return nil
		}
		held = true
		return writeLease(tx, lease{Holder: p.o.Node, Expires: now.Add(p.o.LeaseTTL)})
	})
	if err != nil || !held {
		return 0, err
	}
	due, unstamped, err := p.scan(ctx, now)
	if err != nil {
		return 0, err
	}
	if err := p.stamp(ctx, unstamped, now); err != nil {
		return 0, err
	}
	purged := 0
	for len(due) > 0 {
		batch := due[:min(len(due), p.o.BatchSize)]
		due = due[len(batch):]
		n, err := p.purge(ctx, batch, now)
		purged += n
		if n > 0 && p.o.OnPurged != nil {
			p.o.OnPurged(n)
		}
		if err != nil {
			return purged, err
		}
	}
	if purged > 0 {
		p.o.Logger.Info("purged terminated instances", "count", purged, "retention", p.o.Retention)
	}
	return purged, nil
}

// scan lists the terminated instances whose window has passed, and those
// terminated without a recorded time (before TerminatedAt existed).
func (p *Purger) scan(ctx context.Context, now time.Time) (due, unstamped []string, err error) {
	err = p.store.View(ctx, func(tx imds.Tx) error {
		due, unstamped = due[:0], unstamped[:0]
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			switch {
			case in.State != imds.StateTerminated:
			case in.TerminatedAt.IsZero():
				unstamped = append(unstamped, in.InstanceID)
			case p.isDue(in, now):
				due = append(due, in.InstanceID)
			}
			return nil
		})
	})
	return due, unstamped, err
}

func (p *Purger) isDue(in *imds.Instance, now time.Time) bool {
	return in.State == imds.StateTerminated && !in.TerminatedAt.IsZero() && !now.Before(in.TerminatedAt.Add(p.o.Retention))
}

// stamp records now as the termination time of instances terminated
// before the time was recorded, so that they get a full window from now.
func (p *Purger) stamp(ctx context.Context, ids []string, now time.Time) error {
	for len(ids) > 0 {
		batch := ids[:min(len(ids), p.o.BatchSize)]
		ids = ids[len(batch):]
		err := p.store.Update(ctx, func(tx imds.Tx) error {
			if err := p.checkLease(tx); err != nil {
				return err
			}
			for _, id := range batch {
				in, err := imds.GetInstance(tx, id)
				if errors.Is(err, imds.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if in.State != imds.StateTerminated || !in.TerminatedAt.IsZero() {
					continue
				}
				in.TerminatedAt = now.UTC()
				if err := imds.PutInstance(tx, in); err != nil {
					return fmt.Errorf("stamp %s: %w", id, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// purge deletes one batch in one transaction, re-reading each instance
// (it may have been purged or changed meanwhile) and checking the lease.
func (p *Purger) purge(ctx context.Context, ids []string, now time.Time) (int, error) {
	n := 0
	err := p.store.Update(ctx, func(tx imds.Tx) error {
		n = 0
		if err := p.checkLease(tx); err != nil {
			return err
		}
		for _, id := range ids {
			in, err := imds.GetInstance(tx, id)
			if errors.Is(err, imds.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !p.isDue(in, now) {
				continue
			}
			if err := imds.DeleteInstance(tx, id); err != nil {
				return fmt.Errorf("purge %s: %w", id, err)
			}
			if p.o.AlsoDelete != nil {
				if err := p.o.AlsoDelete(tx, id); err != nil {
					return fmt.Errorf("purge %s: %w", id, err)
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (p *Purger) checkLease(tx imds.Tx) error {
	l, err := readLease(tx)
	if err != nil {
		return err
	}
	if l.Holder != p.o.Node {
		return ErrNotHolder
	}
	return nil
}

func readLease(tx imds.Tx) (lease, error) {
	b, err := tx.Get(imds.LeaseKey(leaseName))
	if errors.Is(err, imds.ErrNotFound) {
		return lease{}, nil
	}
	if err != nil {
		return lease{}, err
	}
	var l lease
	if err := json.Unmarshal(b, &l); err != nil {
		return lease{}, fmt.Errorf("decode purge lease: %w", err)
	}
	return l, nil
}

func writeLease(tx imds.Tx, l lease) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return tx.Put(imds.LeaseKey(leaseName), b)
}
