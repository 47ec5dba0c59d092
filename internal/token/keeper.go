package token

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// SecretName is the store secret (imds.GetSecret) that holds the key ring.
// The data plane watches imds.SecretKey(SecretName) and hands changes to
// Keeper.Apply.
const SecretName = "token-keyring"

// KeeperOptions tunes a Keeper; the zero value is the production setting.
type KeeperOptions struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives rotation events; never key material (default: discard).
	Logger *slog.Logger
	// RotateEvery is how long a key mints before a new one replaces it
	// (default 24h).
	RotateEvery time.Duration
	// Retain is how long a replaced key keeps verifying after its successor
	// starts minting (default 7h). Values below MaxTTL are raised to MaxTTL:
	// a shorter retention would break tokens still inside their TTL.
	Retain time.Duration
	// Propagation is the delay between publishing a rotated key and minting
	// with it (default 1m), so that every replica has loaded the key through
	// its store watch before any replica hands out tokens that need it.
	Propagation time.Duration
	// CheckEvery is how often Run looks whether rotation is due (default 1m).
	CheckEvery time.Duration
}

// Keeper owns the key ring: it creates the first key, rotates keys once per
// fleet, and publishes the current Ring for lock-free use by the data plane.
type Keeper struct {
	store imds.Store
	opts  KeeperOptions
	ring  atomic.Pointer[Ring]
}

// NewKeeper returns a Keeper over store. Its Ring is empty (every Mint and
// Verify fails) until Load succeeds.
func NewKeeper(store imds.Store, opts KeeperOptions) *Keeper {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RotateEvery <= 0 {
		opts.RotateEvery = 24 * time.Hour
	}
	if opts.Retain <= 0 {
		opts.Retain = MaxTTL + time.Hour
	}
	if opts.Retain < MaxTTL {
		opts.Retain = MaxTTL
	}
	if opts.Propagation <= 0 {
		opts.Propagation = time.Minute
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = time.Minute
	}
	k := &Keeper{store: store, opts: opts}
	k.ring.Store(&Ring{})
	return k
}

// Ring returns the current ring. It is lock-free and never nil.
func (k *Keeper) Ring() *Ring { return k.ring.Load() }

// Load reads the ring from the store, creating the first key if there is
// none. Creation happens inside one Update that re-reads the secret, so when
// two nodes start at once on an empty store both end up with the same key.
func (k *Keeper) Load(ctx context.Context) error {
	var value []byte
	err := k.store.View(ctx, func(tx imds.Tx) error {
		v, err := imds.GetSecret(tx, SecretName)
		value = v
		return err
	})
	if err == nil {
		return k.Apply(value)
	}
	if !errors.Is(err, imds.ErrNotFound) {
		return fmt.Errorf("load token keys: %w", err)
	}
	value, _, err = k.update(ctx, func(sr *storedRing, now time.Time) bool {
		return len(sr.Keys) == 0
	})
	if err != nil {
		return fmt.Errorf("create token key: %w", err)
	}
	return k.Apply(value)
}

// Rotate adds a new key that starts minting after the propagation delay,
// and drops keys whose retention has ended. Tokens minted under any key
// still in the ring keep verifying.
func (k *Keeper) Rotate(ctx context.Context) error {
	value, _, err := k.update(ctx, func(*storedRing, time.Time) bool { return true })
	if err != nil {
		return fmt.Errorf("rotate token keys: %w", err)
	}
	return k.Apply(value)
}

// Apply installs a ring value read from the store (the data plane's watch
// calls it when imds.SecretKey(SecretName) changes). On error the current
// ring stays in place.
func (k *Keeper) Apply(value []byte) error {
	r, err := decodeRing(value)
	if err != nil {
		return err
	}
	if r.Len() == 0 {
		return fmt.Errorf("token key ring: %w", ErrNoKey)
	}
	k.ring.Store(r)
	return nil
}

// Run rotates keys when due until ctx ends, then returns nil. Each replica
// may run it: whether rotation is due is decided inside the store Update from
// the stored creation time, so the fleet rotates once. Store errors are
// logged and retried at the next check.
func (k *Keeper) Run(ctx context.Context) error {
	t := time.NewTicker(k.opts.CheckEvery)
	defer t.Stop()
	for {
		if err := k.rotateIfDue(ctx); err != nil && ctx.Err() == nil {
			k.opts.Logger.Warn("token key rotation failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// rotateIfDue rotates when the newest key is RotateEvery old. The local ring
// is checked first so that an idle check costs no store write.
func (k *Keeper) rotateIfDue(ctx context.Context) error {
	if r := k.Ring(); r.Len() > 0 && !k.due(newestCreated(r.keys), k.opts.Now()) {
		return nil
	}
	value, rotated, err := k.update(ctx, func(sr *storedRing, now time.Time) bool {
		return len(sr.Keys) == 0 || k.due(sr.newest().Created, now)
	})
	if err != nil {
		return err
	}
	if rotated {
		k.opts.Logger.Info("token key rotated")
	}
	return k.Apply(value)
}

func (k *Keeper) due(created, now time.Time) bool {
	return !now.Before(created.Add(k.opts.RotateEvery))
}

// update runs one store Update that reads the ring, asks add whether to add a
// key, and if so prunes, adds and writes. It returns the ring value now in
// the store and whether it wrote. Everything is derived from what the
// transaction reads, as Store.Update requires (etcd may run fn twice).
func (k *Keeper) update(ctx context.Context, add func(sr *storedRing, now time.Time) bool) (value []byte, wrote bool, err error) {
	err = k.store.Update(ctx, func(tx imds.Tx) error {
		value, wrote = nil, false
		var sr storedRing
		cur, err := imds.GetSecret(tx, SecretName)
		switch {
		case err == nil:
			if err := json.Unmarshal(cur, &sr); err != nil {
				return fmt.Errorf("decode token key ring: %w", err)
			}
		case !errors.Is(err, imds.ErrNotFound):
			return err
		}
		now := k.opts.Now()
		if !add(&sr, now) {
			value = cur
			return nil
		}
		sr.prune(now, k.opts.Retain)
		active := now
		if len(sr.Keys) > 0 {
			active = now.Add(k.opts.Propagation)
		}
		secret := make([]byte, secretLen)
		if _, err := rand.Read(secret); err != nil {
			return fmt.Errorf("token key: %w", err)
		}
		sr.Keys = append(sr.Keys, storedKey{ID: sr.nextID(), Secret: secret, Created: now.UTC(), Active: active.UTC()})
		b, err := json.Marshal(&sr)
		if err != nil {
			return err
		}
		if err := imds.PutSecret(tx, SecretName, b); err != nil {
			return err
		}
		value, wrote = b, true
		return nil
	})
	return value, wrote, err
}

// storedRing is the JSON form of the ring in the store. Secrets are base64
// (encoding/json's []byte form); the value is a secret in its entirety.
type storedRing struct {
	Keys []storedKey `json:"keys"`
}

type storedKey struct {
	ID      uint16    `json:"id"`
	Secret  []byte    `json:"secret"`
	Created time.Time `json:"created"`
	Active  time.Time `json:"active"`
}

func (sr *storedRing) newest() storedKey {
	var n storedKey
	for i, k := range sr.Keys {
		if i == 0 || k.Created.After(n.Created) {
			n = k
		}
	}
	return n
}

// prune drops every key whose successor has been minting for at least
// retain: no token signed with it can still be inside its TTL. Measuring from
// the successor's activation, not the key's age, keeps a key that minted
// late (the fleet was down when rotation was due) for its full retention.
func (sr *storedRing) prune(now time.Time, retain time.Duration) {
	keep := make([]storedKey, 0, len(sr.Keys))
	for _, k := range sr.Keys {
		var successor time.Time // earliest activation after k's
		for _, o := range sr.Keys {
			if o.Active.After(k.Active) && (successor.IsZero() || o.Active.Before(successor)) {
				successor = o.Active
			}
		}
		if successor.IsZero() || now.Before(successor.Add(retain)) {
			keep = append(keep, k)
		}
	}
	sr.Keys = keep
}

// nextID picks the id after the newest key's, skipping ids in use.
func (sr *storedRing) nextID() uint16 {
	used := make(map[uint16]bool, len(sr.Keys))
	for _, k := range sr.Keys {
		used[k.ID] = true
	}
	id := sr.newest().ID
	for {
		id++
		if !used[id] {
			return id
		}
	}
}

func decodeRing(value []byte) (*Ring, error) {
	var sr storedRing
	if err := json.Unmarshal(value, &sr); err != nil {
		return nil, fmt.Errorf("decode token key ring: %w", err)
	}
	keys := make([]key, 0, len(sr.Keys))
	for _, s := range sr.Keys {
		k, err := newKey(s.ID, s.Secret, s.Created, s.Active)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return newRing(keys)
}

func newestCreated(keys []key) time.Time {
	var t time.Time
	for _, k := range keys {
		if k.created.After(t) {
			t = k.created
		}
	}
	return t
}

// Mint mints with the current ring, so a rotation takes effect at once. With
// Verify it makes a Keeper the data plane's token source.
func (k *Keeper) Mint(instanceID string, generation uint64, ttl time.Duration, now time.Time) (string, time.Time, error) {
	return k.Ring().Mint(instanceID, generation, ttl, now)
}

// Verify verifies with the current ring.
func (k *Keeper) Verify(token, instanceID string, generation uint64, now time.Time) (time.Duration, error) {
	return k.Ring().Verify(token, instanceID, generation, now)
}
