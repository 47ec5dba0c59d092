package token

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t *testing.T) *memstore.Store {
	t.Helper()
	s := memstore.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func loadedKeeper(t *testing.T, s imds.Store, c *clock) *Keeper {
	t.Helper()
	k := NewKeeper(s, KeeperOptions{Now: c.Now})
	if err := k.Load(context.Background()); err != nil {
		t.Fatalf("load: %v", err)
	}
	return k
}

func storedKeys(t *testing.T, s imds.Store) []storedKey {
	t.Helper()
	var sr storedRing
	err := s.View(context.Background(), func(tx imds.Tx) error {
		b, err := imds.GetSecret(tx, SecretName)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &sr)
	})
	if err != nil {
		t.Fatal(err)
	}
	return sr.Keys
}

func TestKeeperBeforeLoadRejectsEverything(t *testing.T) {
	k := NewKeeper(newStore(t), KeeperOptions{})
	if k.Ring() == nil || k.Ring().Len() != 0 {
		t.Fatal("ring before Load should be empty and non-nil")
	}
	if _, _, err := k.Ring().Mint(testID, testGen, time.Minute, epoch); !errors.Is(err, ErrNoKey) {
		t.Fatalf("mint before load: %v", err)
	}
}

func TestLoadCreatesFirstKeyOnceAndRestartVerifiesOldTokens(t *testing.T) {
	s := newStore(t)
	c := &clock{t: epoch}
	k1 := loadedKeeper(t, s, c)
	if got := len(storedKeys(t, s)); got != 1 {
		t.Fatalf("stored keys after first load: %d, want 1", got)
	}
	tok := mint(t, k1.Ring(), testID, testGen, time.Hour, c.Now())

	c.Add(10 * time.Minute)
	k2 := loadedKeeper(t, s, c) // a restart, or a second replica
	if got := len(storedKeys(t, s)); got != 1 {
		t.Fatalf("second load created a key: %d stored", got)
	}
	if left, err := k2.Ring().Verify(tok, testID, testGen, c.Now()); err != nil || left != 50*time.Minute {
		t.Fatalf("restarted keeper: %v, %v; want 50m, nil", left, err)
	}
}

func TestConcurrentFirstStartsAgreeOnOneKey(t *testing.T) {
	s := newStore(t)
	c := &clock{t: epoch}
	keepers := make([]*Keeper, 8)
	var wg sync.WaitGroup
	for i := range keepers {
		keepers[i] = NewKeeper(s, KeeperOptions{Now: c.Now})
		wg.Go(func() {
			if err := keepers[i].Load(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := len(storedKeys(t, s)); got != 1 {
		t.Fatalf("stored keys: %d, want 1", got)
	}
	tok := mint(t, keepers[0].Ring(), testID, testGen, time.Hour, epoch)
	for i, k := range keepers {
		if _, err := k.Ring().Verify(tok, testID, testGen, epoch); err != nil {
			t.Errorf("keeper %d rejects keeper 0's token: %v", i, err)
		}
	}
}

func TestRotationKeepsOldTokensUntilRetentionEnds(t *testing.T) {
	s := newStore(t)
	c := &clock{t: epoch}
	k := loadedKeeper(t, s, c)
	old := mint(t, k.Ring(), testID, testGen, MaxTTL, c.Now())

	if err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(storedKeys(t, s)); got != 2 {
		t.Fatalf("after rotate: %d keys, want 2", got)
	}
	// Until propagation ends the old key still mints; then the new one does.
	if id := keyID(t, mint(t, k.Ring(), testID, testGen, time.Minute, c.Now())); id != 1 {
		t.Fatalf("minted with key %d during propagation, want 1", id)
	}
	c.Add(time.Minute)
	fresh := mint(t, k.Ring(), testID, testGen, MaxTTL, c.Now())
	if id := keyID(t, fresh); id != 2 {
		t.Fatalf("minted with key %d after propagation, want 2", id)
	}
	if _, err := k.Ring().Verify(old, testID, testGen, c.Now()); err != nil {
		t.Fatalf("old token after rotation: %v", err)
	}

	// A rotation 6h59m after key 2 became active keeps key 1 (retention 7h).
	c.Add(7*time.Hour - time.Minute)
	if err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ids := storedIDs(t, s); len(ids) != 3 {
		t.Fatalf("stored ids %v, want key 1 still retained", ids)
	}
	// One minute later retention of key 1 has ended: the next rotation drops it.
	c.Add(time.Minute)
	if err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := storedIDs(t, s)
	if len(ids) != 3 || ids[0] != 2 {
		t.Fatalf("stored ids %v, want [2 3 4]", ids)
	}
	if _, err := k.Ring().Verify(old, testID, testGen, c.Now()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of dropped key: %v, want ErrInvalid", err)
	}
	if _, err := k.Ring().Verify(fresh, testID, testGen, epoch.Add(time.Hour)); err != nil {
		t.Fatalf("token of retained key 2: %v", err)
	}
}

func TestPruneMeasuresRetentionFromSuccessorNotAge(t *testing.T) {
	// Key 1 is ten days old because the fleet was down; its successor has
	// just become active. Key 1 must survive for the retention period.
	sr := storedRing{Keys: []storedKey{
		{ID: 1, Created: epoch, Active: epoch},
		{ID: 2, Created: epoch.Add(240 * time.Hour), Active: epoch.Add(240*time.Hour + time.Minute)},
	}}
	sr.prune(epoch.Add(241*time.Hour), 7*time.Hour)
	if len(sr.Keys) != 2 {
		t.Fatalf("pruned to %v, want both kept", sr.Keys)
	}
	sr.prune(epoch.Add(247*time.Hour+time.Minute), 7*time.Hour)
	if len(sr.Keys) != 1 || sr.Keys[0].ID != 2 {
		t.Fatalf("pruned to %v, want only key 2", sr.Keys)
	}
}

func TestApply(t *testing.T) {
	s := newStore(t)
	c := &clock{t: epoch}
	writer := loadedKeeper(t, s, c)
	reader := loadedKeeper(t, s, c)
	if err := writer.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	tok := mint(t, writer.Ring(), testID, testGen, time.Hour, c.Now())
	if _, err := reader.Ring().Verify(tok, testID, testGen, c.Now()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reader knew the new key before Apply: %v", err)
	}

	t.Run("stored_value_installs_new_ring", func(t *testing.T) {
		var value []byte
		_ = s.View(context.Background(), func(tx imds.Tx) error {
			var err error
			value, err = imds.GetSecret(tx, SecretName)
			return err
		})
		if err := reader.Apply(value); err != nil {
			t.Fatal(err)
		}
		if _, err := reader.Ring().Verify(tok, testID, testGen, c.Now()); err != nil {
			t.Fatalf("after Apply: %v", err)
		}
	})
	for name, bad := range map[string]string{
		"garbage_keeps_current_ring":    "{not json",
		"empty_ring_keeps_current_ring": `{"keys":[]}`,
		"short_secret_keeps_current":    `{"keys":[{"id":1,"secret":"AAAA"}]}`,
		"duplicate_ids_keep_current":    `{"keys":[{"id":1,"secret":"` + b64zero32 + `"},{"id":1,"secret":"` + b64zero32 + `"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := reader.Apply([]byte(bad)); err == nil {
				t.Fatal("Apply accepted a bad value")
			}
			if _, err := reader.Ring().Verify(tok, testID, testGen, c.Now()); err != nil {
				t.Fatalf("ring replaced by bad value: %v", err)
			}
		})
	}
}

const b64zero32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func TestRotateIfDueRotatesOncePerFleet(t *testing.T) {
	s := newStore(t)
	c := &clock{t: epoch}
	a, b := loadedKeeper(t, s, c), loadedKeeper(t, s, c)
	ctx := context.Background()

	for _, k := range []*Keeper{a, b} {
		if err := k.rotateIfDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(storedKeys(t, s)); got != 1 {
		t.Fatalf("rotated before due: %d keys", got)
	}
	c.Add(24 * time.Hour)
	// b's local ring still says due after a rotated; the decision inside the
	// Update sees a's new key and does not rotate again.
	for _, k := range []*Keeper{a, b} {
		if err := k.rotateIfDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(storedKeys(t, s)); got != 2 {
		t.Fatalf("after both replicas checked: %d keys, want 2", got)
	}
	if a.Ring().Len() != 2 || b.Ring().Len() != 2 {
		t.Fatalf("rings not refreshed: a=%d b=%d", a.Ring().Len(), b.Ring().Len())
	}
}

// countingStore counts Updates so tests can see an idle check write nothing.
type countingStore struct {
	imds.Store
	updates atomic.Int64
}

func (s *countingStore) Update(ctx context.Context, fn func(imds.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

func TestRunRotatesWhenDueAndStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &countingStore{Store: newStore(t)}
		c := &clock{t: epoch}
		k := NewKeeper(s, KeeperOptions{Now: c.Now, CheckEvery: time.Millisecond})
		if err := k.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- k.Run(ctx) }()

		// In the bubble the sleep is twenty idle checks, all of them done
		// when it returns.
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if n := s.updates.Load(); n != 1 {
			t.Fatalf("idle checks wrote to the store: %d updates, want only Load's", n)
		}
		c.Add(24 * time.Hour)
		deadline := time.Now().Add(5 * time.Second)
		for k.Ring().Len() != 2 {
			if time.Now().After(deadline) {
				t.Fatal("Run did not rotate a due key")
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not stop")
		}
	})
}

func TestLoadReportsStoreErrors(t *testing.T) {
	s := newStore(t)
	_ = s.Close()
	if err := NewKeeper(s, KeeperOptions{}).Load(context.Background()); !errors.Is(err, imds.ErrClosed) {
		t.Fatalf("Load on closed store: %v", err)
	}
}

func keyID(t *testing.T, tok string) uint16 {
	t.Helper()
	var raw [rawLen + 2]byte
	var enc [EncodedLen]byte
	copy(enc[:], tok)
	if _, err := encoding.Decode(raw[:], enc[:]); err != nil {
		t.Fatal(err)
	}
	return uint16(raw[2])<<8 | uint16(raw[3])
}

func storedIDs(t *testing.T, s imds.Store) []uint16 {
	t.Helper()
	var ids []uint16
	for _, k := range storedKeys(t, s) {
		ids = append(ids, k.ID)
	}
	return ids
}
