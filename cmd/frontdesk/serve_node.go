package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
	"github.com/frontdesk-imds/frontdesk/internal/audit"
	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/credentials"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/etcd"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
	"github.com/frontdesk-imds/frontdesk/internal/token"
)

// node is one running frontdesk, built step by step by serve.
type node struct {
	cfg serveConfig
	log *slog.Logger
	now func() time.Time

	store  imds.Store
	keeper *token.Keeper
	signer *identity.Signer
	admin  controlplane.AdminCredentials

	metrics  *metrics.Metrics
	audit    *audit.Log
	observer dataplane.Observer

	refresher *credentials.Refresher
	identity  *credentials.Identity

	follower *dataplane.Follower
	probe    *dataplane.Probe
	dp, dp6  *dataplane.Handler
	cp       *controlplane.Server

	servers []listening
	hup     chan os.Signal
	// tasks run in the background from the first served request to the
	// end of the drain.
	tasks []func(context.Context) error
	// closers run at the end, last first.
	closers []func()
}

// listening is a server and the listener it serves.
type listening struct {
	srv *http.Server
	l   net.Listener
}

func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
}

func (n *node) addCloser(c io.Closer) { n.closers = append(n.closers, func() { _ = c.Close() }) }

// openStore opens the configured store and, with --demo, seeds it.
func (n *node) openStore(ctx context.Context) error {
	var err error
	switch c := n.cfg; c.store {
	case "bolt":
		if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		n.store, err = bolt.Open(filepath.Join(c.dataDir, bolt.FileName), bolt.Options{Logger: n.log})
	case "etcd":
		if c.etcdEndpoints == "" {
			return errors.New("--store etcd needs --etcd-endpoints")
		}
		n.store, err = etcd.Open(ctx, etcd.Config{
			Endpoints: strings.Split(c.etcdEndpoints, ","),
			Prefix:    c.etcdPrefix,
			TLS:       c.etcdTLS,
			Logger:    n.log,
		})
	case "memory":
		n.store = memstore.New()
	default:
		return fmt.Errorf("--store must be bolt, etcd or memory, not %q", c.store)
	}
	if err != nil {
		return err
	}
	n.addCloser(n.store)
	if n.cfg.demo {
		return seedDemo(ctx, n.store, n.now(), n.cfg.demoTokens)
	}
	return nil
}

// loadKeys loads (or creates, on first start) the token key ring, the
// identity signing keys and the admin credentials, and writes the admin
// credentials file beside the store.
func (n *node) loadKeys(ctx context.Context) error {
	n.keeper = token.NewKeeper(n.store, token.KeeperOptions{Now: n.now, Logger: n.log})
	if err := n.keeper.Load(ctx); err != nil {
		return fmt.Errorf("token key ring: %w", err)
	}
	var err error
	if n.signer, err = identity.LoadOrCreate(ctx, n.store, n.now); err != nil {
		return fmt.Errorf("identity keys: %w", err)
	}
	if n.admin, err = controlplane.LoadOrCreateAdmin(ctx, n.store); err != nil {
		return fmt.Errorf("admin credentials: %w", err)
	}
	n.tasks = append(n.tasks, n.keeper.Run)
	if n.cfg.store == "memory" {
		return nil
	}
	if err := os.MkdirAll(n.cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return controlplane.WriteSharedCredentialsFile(n.adminFile(), n.admin)
}

func (n *node) adminFile() string {
	return filepath.Join(n.cfg.dataDir, apiclient.AdminCredentialsFile)
}

// openObservers sets up the metrics and, with --audit-log, the audit stream.
func (n *node) openObservers(context.Context) error {
	n.metrics = metrics.New(metrics.Options{MaxInstanceSeries: n.cfg.maxSeries, Now: n.now, ControlPlaneActions: controlplane.Actions()})
	n.observer = n.metrics
	if n.cfg.auditLog == "" {
		return nil
	}
	w, err := audit.Open(n.cfg.auditLog)
	if err != nil {
		return fmt.Errorf("--audit-log: %w", err)
	}
	n.addCloser(w)
	n.audit = audit.New(w, audit.Options{Now: n.now, Logger: n.log})
	n.addCloser(n.audit)
	n.observer = metrics.Observers(n.metrics, n.audit)
	return nil
}

// startCredentials builds the credential providers of --config and the
// refresher that keeps every served role's credentials fresh.
func (n *node) startCredentials(ctx context.Context) error {
	live, err := config.OpenLive(ctx, n.cfg.configFile, config.ResolverOptions{Now: n.now, Logger: n.log})
	if err != nil {
		return err
	}
	n.tasks = append(n.tasks, func(ctx context.Context) error { return reloadOnHangup(ctx, n.hup, live, n.log) })
	mx := n.metrics
	n.refresher = credentials.NewRefresher(live.Resolve, credentials.RefresherOptions{
		Now: n.now, Logger: n.log,
		OnRefresh: func(t credentials.Target, ok bool, exp time.Time) {
			outcome := "failure"
			if ok {
				outcome = "success"
			}
			mx.CredentialRefresh(t.Role, outcome)
			if !exp.IsZero() {
				mx.CredentialExpiry(t.Role, exp.Sub(n.now()).Seconds())
			}
		}})
	n.identity = credentials.NewIdentity(n.now)
	n.tasks = append(n.tasks, n.refresher.Run)
	return nil
}

// startDataPlane loads the store into the first snapshot and builds the
// IPv4 and IPv6 handlers, which share the tree cache and the rate budgets.
func (n *node) startDataPlane(ctx context.Context) error {
	mx := n.metrics
	tracker := credentials.NewTracker(n.refresher, credentials.TrackerOptions{Forget: mx.ForgetInstance, Keep: mx.KeepInstances})
	n.follower = dataplane.NewFollower(n.store, dataplane.FollowerOptions{
		Now:          n.now,
		Logger:       n.log,
		OnSecret:     n.applySecret,
		Include:      placement(n.cfg.hostID, n.cfg.serveAll),
		OnStoreError: func(op string, _ error) { mx.StoreError(op) },
		OnReload:     mx.StoreReload,
		OnSnapshot: func(s *dataplane.Snapshot) {
			mx.SnapshotApplied(s.Revision, s.Len(), s.ApplyLatency)
			tracker.Add(s, s.Changed)
		},
	})
	if _, err := n.follower.Load(ctx); err != nil {
		return fmt.Errorf("load the store: %w", err)
	}
	n.probe = dataplane.NewProbe(n.store, n.follower, dataplane.ProbeOptions{
		OnLag: mx.WatchLag, OnError: func(error) { mx.StoreError("probe") }})

	opts := dataplane.Options{Now: n.now, Logger: n.log, Observer: n.observer,
		RateLimiter: dataplane.NewRateLimiter(n.cfg.limits), Trees: dataplane.NewTreeCache(n.cfg.maxTrees)}
	tokens, signer, creds := ringTokens{n.keeper}, signerAdapter{n.signer}, credsAdapter{n.refresher, n.identity}
	n.dp = dataplane.New(n.follower.Snapshot, tokens, signer, creds, opts)
	opts.IPv6Endpoint = true
	n.dp6 = dataplane.New(n.follower.Snapshot, tokens, signer, creds, opts)
	n.tasks = append(n.tasks, n.follower.Run, tracker.Run, n.probe.Run, n.forgetIdle)
	return nil
}

// applySecret takes another node's change of a stored secret.
func (n *node) applySecret(name string, v []byte) {
	if name != token.SecretName {
		return
	}
	if err := n.keeper.Apply(v); err != nil {
		n.log.Error("applying the stored token key ring failed", "err", err)
	}
}

// forgetIdle drops, now and then rather than on every snapshot swap, the
// rate-limit buckets of instances no longer served.
func (n *node) forgetIdle(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			n.dp.Forget(n.follower.Snapshot()) // the buckets are shared with dp6
		}
	}
}

// startControlPlane builds the EC2 API, /metrics and the health endpoints.
// Ready means guests are served: the data plane keeps serving its snapshot
// while the store is away (fail-static), so the store's health is reported
// beside it rather than folded into it.
func (n *node) startControlPlane(context.Context) error {
	mx := n.metrics
	n.cp = controlplane.New(n.store, n.admin, controlplane.Options{
		Now:         n.now,
		Logger:      n.log,
		DataPlane:   n.follower,
		Health:      n.probe,
		Observer:    apiObserver{mx, n.audit},
		ExtraRoutes: map[string]http.Handler{"GET /metrics": mx.Handler()},
		V1Usage: func(w time.Duration) []controlplane.Usage {
			us := mx.V1Usage(w)
			out := make([]controlplane.Usage, len(us))
			for i, u := range us {
				out[i] = controlplane.Usage(u)
			}
			return out
		},
	})
	return nil
}

// listen opens the data plane's listeners (behind the per-instance
// connection caps) and the control plane's.
func (n *node) listen(context.Context) error {
	open := func(addr string, srv *http.Server, guard *dataplane.Handler) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		n.addCloser(l)
		if guard != nil {
			l = dataplane.NewGuard(l, n.follower.Snapshot, dataplane.GuardOptions{
				MaxConnsPerInstance: n.cfg.limits.MaxConnsPerInstance, Handler: guard, OnReject: n.metrics.ConnRejected})
		}
		n.servers = append(n.servers, listening{srv, l})
		return l, nil
	}
	if _, err := open(n.cfg.listen, dataplane.NewHTTPServer(n.dp), n.dp); err != nil {
		return err
	}
	if n.cfg.listenIPv6 != "" {
		if _, err := open(n.cfg.listenIPv6, dataplane.NewHTTPServer(n.dp6), n.dp6); err != nil {
			return err
		}
	}
	_, err := open(n.cfg.apiListen, newAPIServer(n.cp.Handler()), nil)
	return err
}

// catchSignals catches SIGHUP (configuration reload) before "ready" is
// announced, so that a reload sent right after start can never take the
// default action (terminate).
func (n *node) catchSignals(context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	n.closers = append(n.closers, func() { signal.Stop(hup) })
	n.hup = hup
	return nil
}

// announce prints the addresses and "ready".
func (n *node) announce(w io.Writer) {
	names := []string{"data plane", "data plane (IPv6)"}
	if n.cfg.listenIPv6 == "" {
		names = names[:1]
	}
	names = append(names, "control plane")
	for i, sv := range n.servers {
		fmt.Fprintf(w, "%s: http://%s\n", names[i], sv.l.Addr())
	}
	if n.cfg.store != "memory" {
		fmt.Fprintf(w, "admin credentials: %s\n", n.adminFile())
	}
	fmt.Fprintln(w, "ready")
	n.log.Info("frontdesk serving", "data_plane", n.servers[0].l.Addr().String(),
		"control_plane", n.servers[len(n.servers)-1].l.Addr().String(), "instances", n.follower.Snapshot().Len())
}
