package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// identityStoreOpener opens the store that holds the identity keys. It is a
// parameter so tests run the command against a memstore.
type identityStoreOpener func(ctx context.Context, dataDir string) (imds.Store, error)

// cmdIdentity is `frontdesk identity certificates [--data-dir DIR]`: it prints
// the certificates that verify the identity document's signature, pkcs7 and
// rsa2048 forms, for the operator to hand to clients.
func cmdIdentity(ctx context.Context, e *env, args []string) error {
	return runIdentity(ctx, e, args, openIdentityStore)
}

func runIdentity(ctx context.Context, e *env, args []string, open identityStoreOpener) error {
	if len(args) == 0 || args[0] != "certificates" {
		fmt.Fprintln(e.stderr, "usage: frontdesk identity certificates [--data-dir DIR]")
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("identity: missing subcommand")}
		}
		return &exitError{code: 2, err: fmt.Errorf("identity: unknown subcommand %q", args[0])}
	}
	fs := flag.NewFlagSet("identity certificates", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dataDir := fs.String("data-dir", "./frontdesk-data", "directory of the bolt store (as given to frontdesk serve)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("identity certificates: unexpected argument %q", fs.Arg(0))}
	}
	store, err := open(ctx, *dataDir)
	if err != nil {
		return fmt.Errorf("identity certificates: %w", err)
	}
	defer store.Close()
	// Load, not LoadOrCreate: printing certificates for keys that a typo in
	// --data-dir just invented would send clients the wrong certificates.
	signer, err := identity.Load(ctx, store)
	if errors.Is(err, imds.ErrNotFound) {
		return fmt.Errorf("identity certificates: no identity keys in %s yet; frontdesk serve creates them on its first start: %w", *dataDir, err)
	}
	if err != nil {
		return fmt.Errorf("identity certificates: %w", err)
	}
	_, err = e.stdout.Write(signer.CertificatesPEM())
	return err
}

// openIdentityStore opens the bolt store frontdesk serve uses. A missing file
// is an error rather than a new empty store. bbolt locks the file, so this
// fails (after bolt's timeout) while a frontdesk serve holds it.
func openIdentityStore(_ context.Context, dataDir string) (imds.Store, error) {
	path := filepath.Join(dataDir, bolt.FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return bolt.Open(path, bolt.Options{})
}
