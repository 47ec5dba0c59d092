package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
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

	config *config.Live   // --config; its start-up values are read once
	region regionSettings // --region, --account-id, else the config's
	pool   netip.Prefix   // public IPv4 pool of Elastic IPs, --public-ipv4-pool else the config's

	store  imds.Store
	keeper *token.Keeper
	signer *identity.Signer
	admin  controlplane.AdminCredentials

	metrics  *metrics.Metrics
	audit    *audit.Log
	usage    *usageWiring
	observer dataplane.Observer

	refresher *credentials.Refresher
	identity  *credentials.Identity

	follower *dataplane.Follower
	probe    *dataplane.Probe
	waits    *dataplane.Pending // callers whose instance a source is about to write
	release  *releaser
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

// loadConfig reads --config (credential providers, reloaded on SIGHUP;
// region, public pool, Docker policy and retention, read once) and settles
// the region, the account and the public IPv4 pool.
func (n *node) loadConfig(ctx context.Context) error {
	var err error
	if n.config, err = config.OpenLive(ctx, n.cfg.configFile, config.ResolverOptions{Now: n.now, Logger: n.log}); err != nil {
		return err
	}
	if n.region, err = resolveRegion(n.cfg.region, n.cfg.accountID, n.config.Config()); err != nil {
		return err
	}
	n.pool, err = publicPool(n.cfg.publicPool, n.config.Config())
	return err
}

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
	return n.seedDemo(ctx)
}

// seedDemo registers, with --demo, the demo instance if the store has none.
func (n *node) seedDemo(ctx context.Context) error {
	if !n.cfg.demo {
		return nil
	}
	if err := seedDemo(ctx, n.store, n.now(), n.cfg.demoTokens, n.region); err != nil {
		return err
	}
	n.log.Info("demo instance registered for 127.0.0.1 and ::1", "instance_id", demoInstanceID)
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
	// Every store writes the admin credentials, memory too: without them
	// its control plane could not be used.
	if err := os.MkdirAll(n.cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return controlplane.WriteSharedCredentialsFile(n.adminFile(), n.admin)
}

func (n *node) adminFile() string {
	return filepath.Join(n.cfg.dataDir, apiclient.AdminCredentialsFile)
}

// openObservers sets up the metrics, the durable IMDSv1 usage and, with
// --audit-log, the audit stream (reopened on SIGHUP and SIGUSR1).
func (n *node) openObservers(context.Context) error {
	mx := metrics.New(metrics.Options{MaxInstanceSeries: n.cfg.maxSeries, Now: n.now, ControlPlaneActions: controlplane.Actions()})
	mx.SetBuild(buildInfo())
	mx.StoreOps("load", "watch", "probe")
	n.metrics = mx
	var err error
	if n.usage, err = newUsageWiring(n.store, n.cfg, n.config.Config(), n.admin, n.now, n.log, mx); err != nil {
		return err
	}
	n.observer = metrics.Observers(mx, n.usage.tracker)
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
	n.observer = metrics.Observers(mx, n.usage.tracker, n.audit)
	reopen, stop := reopenAuditOnSignal(w, n.log)
	n.closers = append(n.closers, stop)
	n.tasks = append(n.tasks, func(ctx context.Context) error { reopen(ctx); return nil })
	return nil
}

// startCredentials builds the credential providers of --config and the
// refresher that keeps every served role's credentials fresh.
func (n *node) startCredentials(context.Context) error {
	live := n.config
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

// startDataPlane loads the node's key ranges of the store (nodePrefixes)
// into the first snapshot and builds the IPv4 and IPv6 handlers, which
// share the tree cache, the rate budgets and the wait for instances a
// source is about to write. Each new snapshot is
// handed to a credentials.Tracker, whose goroutine keeps the credential
// targets in step and releases what removed instances held (releaser).
func (n *node) startDataPlane(ctx context.Context) error {
	mx := n.metrics
	n.waits = newPending(mx)
	scope := metrics.NewStoreScope(mx) // what this node reads of the store (serve_fleet.go)
	tracker := credentials.NewTracker(n.refresher, credentials.TrackerOptions{Forget: mx.ForgetInstance, Keep: mx.KeepInstances,
		OnApply: func(s credentials.Instances, changed map[string]struct{}) {
			n.release.afterSnapshot(s.(*dataplane.Snapshot), changed)
		}})
	n.follower = dataplane.NewFollower(n.store, dataplane.FollowerOptions{
		Now:          n.now,
		Logger:       n.log,
		OnSecret:     n.applySecret,
		Include:      placement(n.cfg.hostID, n.cfg.serveAll),
		Prefixes:     nodePrefixes(n.cfg.hostID, n.cfg.serveAll),
		OnKeysLoaded: scope.KeysLoaded, OnWatchEvents: scope.WatchEvents,
		OnStoreError: func(op string, _ error) { mx.StoreError(op) },
		OnReload:     mx.StoreReload,
		OnSnapshot: func(s *dataplane.Snapshot) {
			mx.SnapshotApplied(s.Revision, s.Len(), s.ApplyLatency)
			n.waits.Published(s)
			tracker.Add(s, s.Changed)
		},
	})
	if _, err := n.follower.Load(ctx); err != nil {
		return fmt.Errorf("load the store: %w", err)
	}
	n.probe = dataplane.NewProbe(n.store, n.follower, dataplane.ProbeOptions{
		OnLag: mx.WatchLag, OnError: func(error) { mx.StoreError("probe") }, Logger: n.log, Now: n.now})

	opts := dataplane.Options{Now: n.now, Logger: n.log, Observer: n.observer,
		RateLimiter: dataplane.NewRateLimiter(n.cfg.limits), Trees: dataplane.NewTreeCache(n.cfg.maxTrees),
		Pending: n.waits, Callers: n.cfg.callers}
	tokens, signer, creds := n.keeper, signerAdapter{n.signer}, credentials.Served{Roles: n.refresher, Identity: n.identity}
	n.dp = dataplane.New(n.follower.Snapshot, tokens, signer, creds, opts)
	opts.IPv6Endpoint = true
	n.dp6 = dataplane.New(n.follower.Snapshot, tokens, signer, creds, opts)
	n.release = newReleaser(n.dp, n.audit, mx)
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

// startControlPlane builds the EC2 API, /metrics, the identity
// certificates, the console and the health endpoints.
// Ready means guests are served: the data plane keeps serving its snapshot
// while the store is away (fail-static), so the store's health is reported
// beside it rather than folded into it.
func (n *node) startControlPlane(context.Context) error {
	mx := n.metrics
	n.cp = controlplane.New(n.store, n.admin, controlplane.Options{
		Now:       n.now,
		Logger:    n.log,
		Region:    n.region.Region,
		AccountID: n.region.AccountID,
		Zones:     n.region.Zones,
		// Elastic IPs and public addresses at launch (serve_network.go).
		PublicIPv4Pool: n.pool,
		DataPlane:      n.follower,
		Health:         n.probe,
		Observer:       apiObserver{metrics: mx, change: n.usage.onChange(n.auditChange())},
		ExtraRoutes: n.usage.routes(map[string]http.Handler{"GET /metrics": mx.Handler(),
			"GET " + identityCertificatesPath: identityCertificatesHandler(n.signer)}),
		V1Usage: n.usage.tracker.Report,
	})
	n.tasks = append(n.tasks, n.usage.start(n.cp)...)
	return nil
}

// auditChange is the audit stream's record of control-plane changes, nil
// without --audit-log.
func (n *node) auditChange() func(string, string, []string, map[string]string) {
	if n.audit == nil {
		return nil
	}
	return n.audit.Change
}

// startSources starts what writes instances beside the control plane:
// the Docker source (--docker) and the purge of terminated instances
// after their retention window.
func (n *node) startSources(context.Context) error {
	docker, err := startDocker(n.cfg.docker, n.config.Config(), n.cp, n.waits, n.cfg.hostID, n.log)
	if err != nil {
		return err
	}
	if docker != nil {
		n.tasks = append(n.tasks, docker)
	}
	cfg := n.config.Config()
	n.tasks = append(n.tasks, func(ctx context.Context) error {
		runRetention(ctx, n.store, n.cfg, cfg, n.metrics, n.log)
		return nil
	})
	return nil
}

// listen opens the data plane's listeners, one address family each, behind
// one connection budget (per instance and in all), and the control plane's,
// behind its connection cap.
func (n *node) listen(ctx context.Context) error {
	conns := dataplane.NewConns(dataplane.ConnsOptions{MaxPerInstance: n.cfg.limits.MaxConnsPerInstance, MaxTotal: n.cfg.limits.MaxConns})
	open := func(network, addr string, srv *http.Server, guard *dataplane.Handler) error {
		l, err := listenFamily(ctx, network, addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		n.addCloser(l)
		if guard != nil {
			l = dataplane.NewGuard(l, n.follower.Snapshot, dataplane.GuardOptions{Conns: conns, Handler: guard, OnReject: n.metrics.ConnRejected})
		} else {
			l = controlplane.LimitListener(l, n.cfg.bounds.apiMaxConns)
		}
		n.servers = append(n.servers, listening{srv, l})
		return nil
	}
	if err := open("tcp4", n.cfg.listen, dataplane.NewHTTPServer(n.dp), n.dp); err != nil {
		return err
	}
	if n.cfg.listenIPv6 != "" {
		if err := open("tcp6", n.cfg.listenIPv6, dataplane.NewHTTPServer(n.dp6), n.dp6); err != nil {
			return err
		}
	}
	return open("tcp", n.cfg.apiListen, newAPIServer(n.cp.Handler()), nil)
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
	fmt.Fprintf(w, "admin credentials: %s\n", n.adminFile())
	fmt.Fprintln(w, "ready")
	n.log.Info("frontdesk serving", "version", buildInfo().Version, "data_plane", n.servers[0].l.Addr().String(),
		"control_plane", n.servers[len(n.servers)-1].l.Addr().String(), "instances", n.follower.Snapshot().Len())
	if n.cfg.configFile == "" {
		n.log.Info("no --config: roles get locally minted credentials, which AWS does not accept; configure an sts or static provider for real ones")
	}
}
