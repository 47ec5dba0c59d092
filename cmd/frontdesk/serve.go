package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unique"

	"github.com/frontdesk-imds/frontdesk/internal/audit"
	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/credentials"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/etcd"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/mdtree"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
	"github.com/frontdesk-imds/frontdesk/internal/region"
	"github.com/frontdesk-imds/frontdesk/internal/token"
)

// serveConfig is everything `frontdesk serve` is told on its command line.
type serveConfig struct {
	listen     string
	listenIPv6 string
	apiListen  string
	dataDir    string
	store      string
	configFile string
	demo       bool
	demoTokens string
	logFormat  string
	logLevel   string
	auditLog   string
	limits     dataplane.Limits
	maxSeries  int
	maxTrees   int
	bounds     boundsConfig

	etcdEndpoints string
	etcdPrefix    string
	etcdTLS       etcd.TLSFiles
	hostID        string
	serveAll      bool

	region, accountID string // empty: the config file's, else the defaults (serve_region.go)
	docker            dockerFlags
	demoCallers       string                  // --demo-callers, parsed by demoCallerRanges into callers
	callers           []dataplane.CallerRange // served the demo instance (tests only)
	usage             usageConfig
	publicPool        string
}

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var c serveConfig
	fs.StringVar(&c.listen, "listen", "127.0.0.1:1338", "data plane (IMDS) listen address, e.g. 169.254.169.254:80")
	fs.StringVar(&c.listenIPv6, "listen-ipv6", "", "IPv6 data plane listen address, e.g. [fd00:ec2::254]:80 (served to instances with HttpProtocolIpv6=enabled)")
	fs.StringVar(&c.apiListen, "api-listen", "127.0.0.1:1339", "control plane (EC2 API, /metrics, /healthz, /readyz) listen address")
	fs.StringVar(&c.dataDir, "data-dir", "./frontdesk-data", "directory for the bolt store and admin.credentials")
	fs.StringVar(&c.store, "store", "bolt", "store backend: bolt (one host), etcd (a fleet) or memory (tests)")
	fs.StringVar(&c.etcdEndpoints, "etcd-endpoints", "", "etcd client URLs, comma-separated (with --store etcd)")
	fs.StringVar(&c.etcdPrefix, "etcd-prefix", etcd.DefaultPrefix, "key prefix of this frontdesk fleet in etcd")
	fs.StringVar(&c.etcdTLS.CAFile, "etcd-cacert", "", "CA bundle that signs the etcd server certificates")
	fs.StringVar(&c.etcdTLS.CertFile, "etcd-cert", "", "client certificate for etcd")
	fs.StringVar(&c.etcdTLS.KeyFile, "etcd-key", "", "client key for etcd")
	fs.StringVar(&c.hostID, "host-id", "", "name of this node: it serves the instances whose Placement.HostId is this name (empty: every instance)")
	fs.StringVar(&c.region, "region", "", "region frontdesk stands in for (default: the config's region, else us-east-1)")
	fs.StringVar(&c.accountID, "account-id", "", "account that owns every instance (default: the config's account_id, else 123456789012)")
	fs.BoolVar(&c.serveAll, "serve-all", false, "serve every instance whatever its Placement.HostId")
	fs.StringVar(&c.configFile, "config", "", "YAML configuration file (credential providers)")
	fs.StringVar(&c.publicPool, "public-ipv4-pool", "", "IPv4 CIDR that Elastic IPs and public addresses at launch come from (overrides public_ipv4_pool in --config)")
	fs.BoolVar(&c.demo, "demo", false, "register a demo instance bound to 127.0.0.1 and ::1 if the store has none")
	fs.StringVar(&c.demoTokens, "demo-http-tokens", imds.Required, "HttpTokens of the demo instance: required or optional")
	fs.StringVar(&c.demoCallers, "demo-callers", "", "for tests only: also serve the demo instance to callers from these CIDR ranges (comma-separated, e.g. 0.0.0.0/0,::/0 in a container); an instance holding the exact address still wins")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.auditLog, "audit-log", "", "audit stream of IMDSv1 calls, credential deliveries and control-plane changes (JSON lines): a file path, or - for stdout; empty: off")
	fs.Float64Var(&c.limits.Rate, "rate-limit", 1024, "requests per second one instance may make (0: unlimited); over it the answer is 429 with Retry-After")
	fs.IntVar(&c.limits.Burst, "rate-burst", 0, "requests one instance may make at once above the rate (default: one second's worth)")
	addBoundsFlags(fs, &c)
	fs.IntVar(&c.maxTrees, "max-trees", dataplane.DefaultMaxTrees, "rendered metadata trees kept in memory (about 27 KB each); quiet instances' trees are rebuilt on demand")
	c.docker.register(fs)
	fs.IntVar(&c.maxSeries, "metrics-max-instances", metrics.DefaultMaxInstanceSeries, "instances that get their own no-token metric series; the rest share instance_id=\"_other\"")
	addUsageFlags(fs, &c.usage)
	if err := parseFlags(e, fs, serveUsage(fs), args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	settleBounds(fs, &c)
	if c.demoTokens != imds.Required && c.demoTokens != imds.Optional {
		return fmt.Errorf("serve: --demo-http-tokens must be required or optional, not %q", c.demoTokens)
	}
	log, err := newLogger(e, c.logFormat, c.logLevel)
	if err != nil {
		return err
	}
	if c.callers, err = demoCallerRanges(c.demo, c.demoCallers); err != nil {
		return err
	}
	return serve(ctx, e, c, log)
}

func newLogger(e *env, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, o)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

func openStore(ctx context.Context, c serveConfig, log *slog.Logger) (imds.Store, error) {
	switch c.store {
	case "bolt":
		if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		return bolt.Open(filepath.Join(c.dataDir, "frontdesk.db"), bolt.Options{Logger: log})
	case "etcd":
		if c.etcdEndpoints == "" {
			return nil, errors.New("--store etcd needs --etcd-endpoints")
		}
		return etcd.Open(ctx, etcd.Config{
			Endpoints: strings.Split(c.etcdEndpoints, ","),
			Prefix:    c.etcdPrefix,
			TLS:       c.etcdTLS,
			Logger:    log,
		})
	case "memory":
		return memstore.New(), nil
	}
	return nil, fmt.Errorf("--store must be bolt, etcd or memory, not %q", c.store)
}

// serve runs both planes until ctx ends, then drains and closes the store.
func serve(ctx context.Context, e *env, c serveConfig, log *slog.Logger) error {
	var cfg *config.Config
	if c.configFile != "" {
		var err error
		if cfg, err = config.Load(c.configFile); err != nil {
			return err
		}
	} else {
		cfg = &config.Config{}
	}
	rs, err := resolveRegion(c.region, c.accountID, cfg)
	if err != nil {
		return err
	}
	pool, err := publicPool(c.publicPool, cfg)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, c, log)
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now

	keeper := token.NewKeeper(store, token.KeeperOptions{Now: now, Logger: log})
	if err := keeper.Load(ctx); err != nil {
		return fmt.Errorf("token key ring: %w", err)
	}
	signer, err := identity.LoadOrCreate(ctx, store, now)
	if err != nil {
		return fmt.Errorf("identity keys: %w", err)
	}
	admin, err := controlplane.LoadOrCreateAdmin(ctx, store)
	if err != nil {
		return fmt.Errorf("admin credentials: %w", err)
	}
	// Every store writes the admin credentials, memory too: without them
	// its control plane could not be used.
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := controlplane.WriteSharedCredentialsFile(filepath.Join(c.dataDir, "admin.credentials"), admin); err != nil {
		return err
	}
	if c.demo {
		if err := seedDemo(ctx, store, now(), c.demoTokens, rs); err != nil {
			return err
		}
		log.Info("demo instance registered for 127.0.0.1 and ::1", "instance_id", demoInstanceID)
	}

	mx := metrics.New(metrics.Options{MaxInstanceSeries: c.maxSeries, Now: now, ControlPlaneActions: controlplane.Actions()})
	mx.SetBuild(buildInfo())
	mx.StoreOps("load", "watch", "probe")
	uw, err := newUsageWiring(store, c, cfg, admin, now, log, mx)
	if err != nil {
		return err
	}
	observers := []dataplane.Observer{mx, uw.tracker}
	var auditLog *audit.Log
	var auditReopen func(context.Context)
	if c.auditLog != "" {
		w, err := audit.Open(c.auditLog)
		if err != nil {
			return fmt.Errorf("--audit-log: %w", err)
		}
		defer w.Close()
		auditLog = audit.New(w, audit.Options{Now: now, Logger: log})
		defer auditLog.Close()
		observers = append(observers, auditLog)
		var stopReopen func()
		auditReopen, stopReopen = reopenAuditOnSignal(w, log)
		defer stopReopen()
	}

	resolve, err := cfg.Resolver(ctx, config.ResolverOptions{Now: now, Logger: log})
	if err != nil {
		return err
	}
	// The resolver sits behind an atomic pointer so that SIGHUP can swap
	// in a re-read configuration; each role picks up its new provider at
	// its next refresh.
	var current atomic.Pointer[credentials.Resolver]
	current.Store(&resolve)
	refresher := credentials.NewRefresher(func(role string) credentials.Provider { return (*current.Load())(role) },
		credentials.RefresherOptions{Now: now, Logger: log, OnRefresh: func(t credentials.Target, ok bool, exp time.Time) {
			outcome := "failure"
			if ok {
				outcome = "success"
			}
			mx.CredentialRefresh(t.Role, outcome)
			if !exp.IsZero() {
				mx.CredentialExpiry(t.Role, exp.Sub(now()).Seconds())
			}
		}})
	pending := newSnapshotQueue()
	waits := newPending(mx)
	follower := dataplane.NewFollower(store, dataplane.FollowerOptions{
		Now:    now,
		Logger: log,
		OnSecret: func(name string, v []byte) {
			if name == token.SecretName {
				if err := keeper.Apply(v); err != nil {
					log.Error("applying the stored token key ring failed", "err", err)
				}
			}
		},
		Include:      placement(c.hostID, c.serveAll),
		OnStoreError: func(op string, _ error) { mx.StoreError(op) },
		OnReload:     mx.StoreReload,
		OnSnapshot: func(s *dataplane.Snapshot) {
			mx.SnapshotApplied(s.Revision, s.Len(), s.ApplyLatency)
			waits.Published(s)
			// Credential bookkeeping runs on its own goroutine, so that the
			// follower applies the next change at once.
			pending.add(s)
		},
	})
	if _, err := follower.Load(ctx); err != nil {
		return fmt.Errorf("load the store: %w", err)
	}

	identityCreds := credentials.NewIdentity(now)
	// The IPv4 and IPv6 handlers share the tree cache and the rate budgets.
	dpOpts := dataplane.Options{Now: now, Logger: log, Observer: metrics.Observers(observers...),
		RateLimiter: dataplane.NewRateLimiter(c.limits), Trees: dataplane.NewTreeCache(c.maxTrees), Pending: waits, Callers: c.callers}
	dp := dataplane.New(follower.Snapshot, ringTokens{keeper}, signerAdapter{signer}, credsAdapter{refresher, identityCreds}, dpOpts)
	dpOpts.IPv6Endpoint = true
	dp6 := dataplane.New(follower.Snapshot, ringTokens{keeper}, signerAdapter{signer}, credsAdapter{refresher, identityCreds}, dpOpts)

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	listen := func(network, addr string) (net.Listener, error) {
		l, err := listenFamily(ctx, network, addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		listeners = append(listeners, l)
		return l, nil
	}
	dl, err := listen("tcp4", c.listen)
	if err != nil {
		return err
	}
	var dl6 net.Listener
	if c.listenIPv6 != "" {
		if dl6, err = listen("tcp6", c.listenIPv6); err != nil {
			return err
		}
	}
	conns := dataplane.NewConns(dataplane.ConnsOptions{MaxPerInstance: c.limits.MaxConnsPerInstance, MaxTotal: c.limits.MaxConns})
	dl = dataplane.NewGuard(dl, follower.Snapshot, dataplane.GuardOptions{Conns: conns, Handler: dp, OnReject: mx.ConnRejected})
	if dl6 != nil {
		dl6 = dataplane.NewGuard(dl6, follower.Snapshot, dataplane.GuardOptions{Conns: conns, Handler: dp6, OnReject: mx.ConnRejected})
	}
	al, err := listen("tcp", c.apiListen)
	if err != nil {
		return err
	}
	al = controlplane.LimitListener(al, c.bounds.apiMaxConns)

	var onChange func(accessKeyID, action string, instanceIDs []string, detail map[string]string)
	if auditLog != nil {
		onChange = auditLog.Change
	}
	var storeHealth atomic.Pointer[error]
	dataPlaneHealth := func() error {
		select {
		case <-follower.Loaded():
			return nil
		default:
			return errors.New("snapshot not loaded")
		}
	}
	cp := controlplane.New(store, controlplane.Options{
		// Elastic IPs and public addresses at launch (serve_network.go).
		PublicIPv4Pool: pool,

		Now:         now,
		Logger:      log,
		Credentials: admin,
		Region:      rs.Region,
		AccountID:   rs.AccountID,
		Zones:       rs.Zones,
		Applied:     follower.Applied,
		ExtraRoutes: uw.routes(map[string]http.Handler{"GET /metrics": mx.Handler(),
			"GET " + identityCertificatesPath: identityCertificatesHandler(signer)}),
		// Ready means guests are served: the data plane keeps serving its
		// snapshot while the store is away (fail-static), so the store's
		// health is reported beside it rather than folded into it.
		Ready: dataPlaneHealth,
		Health: func() map[string]error {
			var st error
			if p := storeHealth.Load(); p != nil {
				st = *p
			}
			return map[string]error{"data_plane": dataPlaneHealth(), "store": st}
		},
		AppliedOptions: func(id string) (int64, bool) {
			g := follower.Snapshot().GuestByID(id)
			if g == nil {
				return 0, false
			}
			return g.Instance.OptionsRevision, true
		},
		OnRequest: mx.ControlPlaneRequest,
		OnChange:  uw.onChange(onChange),
		V1Usage:   uw.tracker.Report,
	})

	servers := []*http.Server{dataplane.NewHTTPServer(dp), dataplane.NewHTTPServer(dp6), newAPIServer(cp.Handler())}
	serveOn := []net.Listener{dl, dl6, al}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	wg.Go(func() { _ = follower.Run(runCtx) })
	if err := startDocker(runCtx, &wg, c.docker, cfg, cp, waits, c.hostID, log); err != nil {
		return err
	}
	release := newReleaser(dp, auditLog, mx)
	wg.Go(func() { runRetention(runCtx, store, c, cfg, mx, log) })
	if auditReopen != nil {
		wg.Go(func() { auditReopen(runCtx) })
	}
	uw.start(runCtx, &wg, cp)
	wg.Go(func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-pending.ready:
			}
			s, changed := pending.take()
			if s == nil {
				continue // already taken with an earlier signal
			}
			release.afterSnapshot(s, changed)
			if changed == nil {
				refresher.SetTargets(credentialTargets(s))
				mx.KeepInstances(func(id string) bool { return s.GuestByID(id) != nil })
				continue
			}
			update := make(map[string][]credentials.Target, len(changed))
			for id := range changed {
				update[id] = nil
				if g := s.GuestByID(id); g != nil {
					update[id] = guestTargets(g.Instance, nil)
				} else {
					mx.ForgetInstance(id)
				}
			}
			refresher.UpdateTargets(update)
		}
	})
	wg.Go(func() { _ = refresher.Run(runCtx) })
	wg.Go(func() { _ = keeper.Run(runCtx) })
	wg.Go(func() { probeStore(runCtx, store, follower, &storeHealth, mx, log) })
	// Catch SIGHUP before announcing "ready", so a reload sent right after
	// start can never take the default action (terminate).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() { reloadOnHangup(runCtx, hup, c.configFile, &current, log) })
	wg.Go(func() {
		// Rate-limit buckets of instances no longer served are dropped now
		// and then rather than on every snapshot swap.
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				dp.Forget(follower.Snapshot()) // the buckets are shared with dp6
			}
		}
	})
	for i, srv := range servers {
		if serveOn[i] == nil {
			continue
		}
		wg.Go(func() {
			if err := srv.Serve(serveOn[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}

	fmt.Fprintf(e.stdout, "data plane: http://%s\n", dl.Addr())
	if dl6 != nil {
		fmt.Fprintf(e.stdout, "data plane (IPv6): http://%s\n", dl6.Addr())
	}
	fmt.Fprintf(e.stdout, "control plane: http://%s\n", al.Addr())
	fmt.Fprintf(e.stdout, "admin credentials: %s\n", filepath.Join(c.dataDir, "admin.credentials"))
	fmt.Fprintln(e.stdout, "ready")
	stopping := systemdReady(runCtx, dataPlaneHealth, log)
	log.Info("frontdesk serving", "version", buildInfo().Version, "data_plane", dl.Addr().String(), "control_plane", al.Addr().String(), "instances", follower.Snapshot().Len())
	if c.configFile == "" {
		log.Info("no --config: roles get locally minted credentials, which AWS does not accept; configure an sts or static provider for real ones")
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	stopping()
	// Drain: stop accepting, finish in-flight requests, then stop the
	// background work; the deferred Close releases the store last.
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer shutCancel()
	for i, srv := range servers {
		if serveOn[i] != nil {
			_ = srv.Shutdown(shutCtx)
		}
	}
	cancel()
	wg.Wait()
	log.Info("frontdesk stopped")
	return runErr
}

func newAPIServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// probeStore checks every few seconds that the store answers a read, for
// /readyz and the store-error metric, and records how far the snapshot
// trails the store (watch lag). The follower alone cannot tell: a
// watch on etcd waits quietly through an outage.
func probeStore(ctx context.Context, store imds.Store, f *dataplane.Follower, health *atomic.Pointer[error], mx *metrics.Metrics, log *slog.Logger) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var lostAt time.Time // when the store stopped answering; zero while it answers
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		var rev int64
		err := store.View(pctx, func(tx imds.Tx) error { rev = tx.Revision(); return nil })
		cancel()
		if err == nil {
			mx.WatchLag(rev - f.Applied())
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			mx.StoreError("probe")
			health.Store(&err)
			if lostAt.IsZero() {
				lostAt = time.Now()
				log.Error("store unavailable; serving the last snapshot until it is back", "err", err)
			}
		} else {
			health.Store(nil)
			if !lostAt.IsZero() {
				log.Info("store available again", "unavailable_for", time.Since(lostAt).Round(time.Millisecond).String())
				lostAt = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reloadOnHangup re-reads the configuration on SIGHUP. A file that fails to
// load or validate changes nothing: the running configuration stays and the
// reason is logged.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, path string, current *atomic.Pointer[credentials.Resolver], log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if path == "" {
			log.Info("SIGHUP ignored: no --config file to reload")
			continue
		}
		cfg, err := config.Load(path)
		if err != nil {
			log.Error("reloading the configuration failed; keeping the running one", "file", path, "err", err)
			continue
		}
		resolve, err := cfg.Resolver(ctx, config.ResolverOptions{Logger: log})
		if err != nil {
			log.Error("reloading the configuration failed; keeping the running one", "file", path, "err", err)
			continue
		}
		current.Store(&resolve)
		log.Info("configuration reloaded", "file", path)
	}
}

// placement decides which instances this node serves: with a host id, the
// instances placed on it; otherwise (or with --serve-all) every instance.
func placement(hostID string, all bool) func(*imds.Instance) bool {
	if hostID == "" || all {
		return nil
	}
	return func(in *imds.Instance) bool { return in.Placement.HostID == hostID }
}

// credentialTargets lists what the refresher must keep fresh: the role of
// every served instance's profile. (Instance-identity credentials are
// derived on request; see credentials.Identity.)
func credentialTargets(s *dataplane.Snapshot) []credentials.Target {
	ts := make([]credentials.Target, 0, 2*s.Len())
	s.Each(func(g *dataplane.Guest) { ts = guestTargets(g.Instance, ts) })
	return ts
}

// guestTargets appends one instance's targets to ts.
func guestTargets(in *imds.Instance, ts []credentials.Target) []credentials.Target {
	if p := in.IAMInstanceProfile; p != nil && p.Role != "" {
		// One copy of each role ARN for the whole fleet, not one per instance.
		arn := unique.Make(region.ARN(in.Placement.Region, "iam", "", in.AccountID, "role/"+p.Role)).Value()
		ts = append(ts, credentials.Target{InstanceID: in.InstanceID, AccountID: in.AccountID, Role: p.Role, RoleArn: arn})
	}
	return ts
}

// snapshotQueue hands snapshots from the follower to the credential
// bookkeeping without ever blocking the follower: it keeps the newest
// snapshot and the union of the instances changed since the last take (nil:
// a full load, everything may have changed).
type snapshotQueue struct {
	mu      sync.Mutex
	snap    *dataplane.Snapshot
	changed map[string]struct{}
	full    bool
	ready   chan struct{}
}

func newSnapshotQueue() *snapshotQueue { return &snapshotQueue{ready: make(chan struct{}, 1)} }

func (q *snapshotQueue) add(s *dataplane.Snapshot) {
	q.mu.Lock()
	q.snap = s
	if s.Changed == nil {
		q.full, q.changed = true, nil
	} else if !q.full {
		if q.changed == nil {
			q.changed = map[string]struct{}{}
		}
		for _, id := range s.Changed {
			q.changed[id] = struct{}{}
		}
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns the newest snapshot and what changed since the last take
// (nil for everything).
func (q *snapshotQueue) take() (*dataplane.Snapshot, map[string]struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s, changed := q.snap, q.changed
	if q.full || changed == nil {
		changed = nil
	}
	q.snap, q.changed, q.full = nil, nil, false
	return s, changed
}

// ringTokens adapts the key keeper: each call uses the current ring, so a
// rotation takes effect at once.
type ringTokens struct{ k *token.Keeper }

func (t ringTokens) Mint(id string, gen uint64, ttl time.Duration, now time.Time) (string, time.Time, error) {
	return t.k.Ring().Mint(id, gen, ttl, now)
}

func (t ringTokens) Verify(tok, id string, gen uint64, now time.Time) (time.Duration, error) {
	return t.k.Ring().Verify(tok, id, gen, now)
}

type signerAdapter struct{ s *identity.Signer }

func (a signerAdapter) Sign(doc []byte) ([]byte, []byte, []byte, error) {
	sigs, err := a.s.Sign(doc)
	return sigs.Signature, sigs.PKCS7, sigs.RSA2048, err
}

// credsAdapter serves role credentials from the refresher's cache and
// instance-identity credentials (role "") from the deriver.
type credsAdapter struct {
	r  *credentials.Refresher
	id *credentials.Identity
}

func (a credsAdapter) Credentials(instanceID, role string) (mdtree.Credentials, uint64, bool) {
	if role == "" {
		c, v := a.id.Get(instanceID)
		return mdtree.Credentials{Code: credentials.CodeSuccess, LastUpdated: c.LastUpdated, Expiration: c.Expiration,
			AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, Token: c.SessionToken}, v, true
	}
	e, ok := a.r.Get(instanceID, role)
	if !ok {
		return mdtree.Credentials{}, 0, false
	}
	c := e.Credentials
	updated := e.LastUpdated
	if updated.IsZero() {
		updated = c.LastUpdated
	}
	return mdtree.Credentials{
		Code:            e.Code,
		Message:         e.Message,
		LastUpdated:     updated,
		Expiration:      c.Expiration,
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		Token:           c.SessionToken,
	}, e.Version, true
}
