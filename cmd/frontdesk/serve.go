package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/etcd"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
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
	publicPool        string // --public-ipv4-pool, else the config file's (serve_network.go)
}

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var c serveConfig
	serveFlags(fs, &c)
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

// serveFlags defines serve's flags on fs, to fill c.
func serveFlags(fs *flag.FlagSet, c *serveConfig) {
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
	addBoundsFlags(fs, c)
	fs.IntVar(&c.maxTrees, "max-trees", dataplane.DefaultMaxTrees, "rendered metadata trees kept in memory (about 27 KB each); quiet instances' trees are rebuilt on demand")
	c.docker.register(fs)
	fs.IntVar(&c.maxSeries, "metrics-max-instances", metrics.DefaultMaxInstanceSeries, "instances that get their own no-token metric series; the rest share instance_id=\"_other\"")
	addUsageFlags(fs, &c.usage)
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

// serve runs both planes until ctx ends, then drains and closes the store.
func serve(ctx context.Context, e *env, c serveConfig, log *slog.Logger) error {
	n := &node{cfg: c, log: log, now: time.Now}
	defer n.close()
	if err := n.build(ctx, n.openStore); err != nil {
		return err
	}
	return n.run(ctx, e.stdout)
}

// build makes the node in named steps, each from the parts before it;
// open provides the store.
func (n *node) build(ctx context.Context, open func(context.Context) error) error {
	steps := []func(context.Context) error{
		n.loadConfig,
		open,
		n.migrateLayout, // serve_fleet.go
		n.loadKeys,
		n.openObservers,
		n.startCredentials,
		n.startDataPlane,
		n.startControlPlane,
		n.startSources,
		n.listen,
		n.catchSignals,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// run serves until ctx ends or a server fails, then drains: stop
// accepting, finish in-flight requests, then stop the background work.
func (n *node) run(ctx context.Context, stdout io.Writer) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(n.servers))
	for _, task := range n.tasks {
		wg.Go(func() { _ = task(runCtx) })
	}
	for _, sv := range n.servers {
		wg.Go(func() {
			if err := sv.srv.Serve(sv.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	n.announce(stdout)
	stopping := systemdReady(runCtx, n.probe.Ready, n.log)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	stopping()
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer shutCancel()
	for _, sv := range n.servers {
		_ = sv.srv.Shutdown(shutCtx)
	}
	cancel()
	wg.Wait()
	n.log.Info("frontdesk stopped")
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
