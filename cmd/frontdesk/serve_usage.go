package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/console"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
	v1usage "github.com/frontdesk-imds/frontdesk/internal/usage"
)

// usageConfig is the command line of the durable IMDSv1 usage.
type usageConfig struct {
	retention time.Duration
	flush     time.Duration
}

func addUsageFlags(fs *flag.FlagSet, c *usageConfig) {
	fs.DurationVar(&c.retention, "usage-retention", v1usage.DefaultRetention, "how long hourly IMDSv1 usage is kept in the store (compliance and the console look back at most this far)")
	fs.DurationVar(&c.flush, "usage-flush-interval", v1usage.DefaultFlushInterval, "how often this node writes its IMDSv1 usage to the store (a crash loses at most this much)")
}

// usageWiring is the usage tracker and the console, joined to the planes.
type usageWiring struct {
	tracker *v1usage.Tracker
	mount   *lateHandler
	store   imds.Store
	creds   controlplane.AdminCredentials
	log     *slog.Logger
	now     func() time.Time
	mx      *metrics.Metrics
}

func newUsageWiring(store imds.Store, c serveConfig, cfg *config.Config, creds controlplane.AdminCredentials, now func() time.Time, log *slog.Logger, mx *metrics.Metrics) (*usageWiring, error) {
	retention := c.usage.retention
	if retention == v1usage.DefaultRetention && cfg.Usage.Retention > 0 {
		retention = cfg.Usage.Retention // the flag, when set to something else, wins
	}
	node, err := usageNode(c)
	if err != nil {
		return nil, err
	}
	tr := v1usage.New(store, v1usage.Options{Node: node, Retention: retention, FlushInterval: c.usage.flush, Now: now, Logger: log,
		OnFlush: func(_ int, calls int64, err error) { mx.UsageFlush(calls, err) }})
	return &usageWiring{tracker: tr, mount: &lateHandler{}, store: store, creds: creds, log: log, now: now, mx: mx}, nil
}

// usageNode names this node's usage records. Two nodes writing under one
// name would overwrite each other's counts, so: the --host-id when given
// (unique in a fleet); else a name made once and kept in the data
// directory (one daemon per directory: bolt locks it); else, for the
// memory store, a new name per run.
func usageNode(c serveConfig) (string, error) {
	if c.hostID != "" {
		return c.hostID, nil
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "frontdesk"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	fresh := host + "-" + hex.EncodeToString(b[:])
	if c.store == "memory" {
		return fresh, nil
	}
	path := filepath.Join(c.dataDir, "usage-node")
	if v, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(v))) > 0 {
		return strings.TrimSpace(string(v)), nil
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(fresh+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("usage node name: %w", err)
	}
	return fresh, nil
}

// routes adds the console to the control plane's extra routes.
func (u *usageWiring) routes(extra map[string]http.Handler) map[string]http.Handler {
	extra[console.Prefix] = u.mount
	return extra
}

// onChange keeps every change in the store's audit trail, then tells next.
func (u *usageWiring) onChange(next func(string, string, []string, map[string]string)) func(string, string, []string, map[string]string) {
	record := console.ChangeRecorder(u.store, u.now, u.log)
	return func(who, action string, ids []string, detail map[string]string) {
		record(who, action, ids, detail)
		if next != nil {
			next(who, action, ids, detail)
		}
	}
}

// start mounts the console over the control plane and returns the loops
// of the tracker and of the fleet usage gauges.
func (u *usageWiring) start(cp *controlplane.Server) []func(context.Context) error {
	u.mount.set(console.New(u.store, cp, u.tracker, u.creds, console.Options{Now: u.now, Logger: u.log}).Handler())
	return []func(context.Context) error{u.tracker.Run, u.fleetGauges}
}

// fleetGauges publishes, every minute until ctx ends, how many instances
// of the fleet made IMDSv1 calls in the last day, and how many calls.
func (u *usageWiring) fleetGauges(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if rep, err := u.tracker.Report(ctx, 24*time.Hour); err == nil {
			var n int
			var calls int64
			for _, s := range rep.Instances {
				if s.Calls+s.Rejected > 0 {
					n++
					calls += s.Calls + s.Rejected
				}
			}
			u.mx.FleetV1Usage(n, calls, rep.Now.Sub(rep.ObservedSince))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// lateHandler is a handler set after the mux that routes to it is built
// (the console needs the control plane, whose mux holds the console).
type lateHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (l *lateHandler) set(h http.Handler) {
	l.mu.Lock()
	l.h = h
	l.mu.Unlock()
}

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	h := l.h
	l.mu.RUnlock()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}
