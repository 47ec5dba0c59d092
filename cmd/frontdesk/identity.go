package main

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// identityStoreOpener opens the store that holds the identity keys. It is a
// parameter so tests run the command against a memstore.
type identityStoreOpener func(ctx context.Context, dataDir string) (imds.Store, error)

// cmdIdentity is `frontdesk identity certificates [--endpoint URL | --data-dir
// DIR]`: it prints the certificates that verify the identity document's
// signature, pkcs7 and rsa2048 forms, for the operator to hand to clients.
// With --endpoint it fetches them from a running control plane; with
// --data-dir (the default) it reads the store of a stopped daemon.
func cmdIdentity(ctx context.Context, e *env, args []string) error {
	return runIdentity(ctx, e, args, openIdentityStore)
}

func runIdentity(ctx context.Context, e *env, args []string, open identityStoreOpener) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(e.stdout, "usage: frontdesk identity certificates [flags]\n\nPrints the PEM certificates that verify the instance identity document's signatures\n(frontdesk identity certificates --help for the flags).")
		return nil
	}
	if len(args) == 0 || args[0] != "certificates" {
		fmt.Fprintln(e.stderr, "usage: frontdesk identity certificates [--endpoint URL | --data-dir DIR]")
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("identity: missing subcommand")}
		}
		return &exitError{code: 2, err: fmt.Errorf("identity: unknown subcommand %q", args[0])}
	}
	fs := flag.NewFlagSet("identity certificates", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./frontdesk-data", "directory of the bolt store of a stopped daemon (as given to frontdesk serve)")
	endpoint := fs.String("endpoint", "", "control plane URL of a running daemon, e.g. http://127.0.0.1:1339 (instead of --data-dir)")
	usage := func(w io.Writer) {
		printUsage(w, fs, "frontdesk identity certificates [--endpoint URL | --data-dir DIR]", "Prints the PEM certificates that verify the identity document's signatures.")
	}
	if err := parseFlags(e, fs, usage, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("identity certificates: unexpected argument %q", fs.Arg(0))}
	}
	if *endpoint != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["data-dir"] {
			return &exitError{code: 2, err: errors.New("identity certificates: give --endpoint or --data-dir, not both")}
		}
		pemBytes, err := fetchCertificates(ctx, *endpoint)
		if err != nil {
			return fmt.Errorf("identity certificates: %w", err)
		}
		_, err = e.stdout.Write(pemBytes)
		return err
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

// fetchCertificates reads GET /identity/certificates of a running control
// plane and checks that it is PEM, so that a wrong URL (a proxy's HTML page)
// is an error rather than garbage handed to clients.
func fetchCertificates(ctx context.Context, endpoint string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+identityCertificatesPath, nil)
	if err != nil {
		return nil, fmt.Errorf("--endpoint: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", req.URL, resp.Status)
	}
	if b, _ := pem.Decode(body); b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s did not answer PEM certificates", req.URL)
	}
	return body, nil
}
