package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

// sharedIdentityKeys is one set of identity signing keys for every
// in-process daemon of the test binary: generating DSA parameters costs a
// second or more of CPU, and the daemon tests start many daemons.
var sharedIdentityKeys = sync.OnceValues(func() ([]byte, error) {
	ctx := context.Background()
	mem := memstore.New()
	defer mem.Close()
	if _, err := identity.LoadOrCreate(ctx, mem, time.Now); err != nil {
		return nil, err
	}
	var v []byte
	err := mem.View(ctx, func(tx imds.Tx) error {
		b, err := tx.Get(imds.SecretKey(identity.SecretName))
		v = append([]byte(nil), b...)
		return err
	})
	return v, err
})

// seedIdentityKeys puts the shared identity keys into a new bolt store in
// dataDir, so that the daemon about to start there finds keys instead of
// generating its own. An existing store, or a daemon on another store, is
// left alone.
func seedIdentityKeys(tb testing.TB, dataDir string, args []string) {
	tb.Helper()
	if i := slices.Index(args, "--store"); i >= 0 && i+1 < len(args) && args[i+1] != "bolt" {
		return
	}
	path := filepath.Join(dataDir, bolt.FileName)
	if _, err := os.Stat(path); err == nil {
		return
	}
	keys, err := sharedIdentityKeys()
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		tb.Fatal(err)
	}
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(context.Background(), func(tx imds.Tx) error {
		return tx.Put(imds.SecretKey(identity.SecretName), keys)
	}); err != nil {
		tb.Fatal(err)
	}
}
