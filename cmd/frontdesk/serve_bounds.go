package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/audit"
	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
	"github.com/frontdesk-imds/frontdesk/internal/retention"
	v1usage "github.com/frontdesk-imds/frontdesk/internal/usage"
)

// boundsConfig holds the serve flags that bound what the daemon holds.
type boundsConfig struct {
	apiMaxConns int
	retention   time.Duration // 0: the config file's, else retention.DefaultRetention
}

// addBoundsFlags defines the connection bounds and the retention window.
// The connection defaults come from this process's open-file limit (see
// dataplane.ConnBudget).
func addBoundsFlags(fs *flag.FlagSet, c *serveConfig) {
	total, per := dataplane.ConnBudget(openFileLimit())
	fs.IntVar(&c.limits.MaxConnsPerInstance, "max-conns-per-instance", per,
		"data-plane connections one instance may have in service (0: unlimited); over it a request is answered 429 (default: an eighth of --max-conns)")
	fs.IntVar(&c.limits.MaxConns, "max-conns", total,
		"data-plane connections the process may hold in all (0: unlimited); over it connections are closed (default: three quarters of the open-file limit)")
	fs.IntVar(&c.bounds.apiMaxConns, "api-max-conns", controlplane.DefaultMaxConns,
		"concurrent control-plane connections; more wait in the kernel's queue")
	fs.DurationVar(&c.bounds.retention, "terminated-retention", 0,
		"how long terminated instances stay visible before they are purged from the store (default: instances.terminated_retention in --config, else 1h)")
}

// settleBounds derives the per-instance share from --max-conns when only
// that was given, so that the share follows the budget it is a share of.
func settleBounds(fs *flag.FlagSet, c *serveConfig) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["max-conns"] && !set["max-conns-per-instance"] && c.limits.MaxConns > 0 {
		c.limits.MaxConnsPerInstance = min(max(c.limits.MaxConns/8, 64), c.limits.MaxConns)
	}
}

// openFileLimit is RLIMIT_NOFILE (the Go runtime has raised the soft limit
// to the hard one); 1024 if it cannot be read.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 {
		return 1024
	}
	return r.Cur
}

// listenFamily opens a listener: "tcp4" and "tcp6" are data-plane
// listeners of one address family each (see dataplane.Listen), "tcp" the
// control plane's.
func listenFamily(ctx context.Context, network, addr string) (net.Listener, error) {
	if network == "tcp" {
		return net.Listen(network, addr)
	}
	l, err := dataplane.Listen(ctx, network, addr)
	if err != nil && network == "tcp4" {
		return nil, fmt.Errorf("%w (--listen takes an IPv4 address; IPv6 callers are served on --listen-ipv6)", err)
	}
	return l, err
}

// releaser lets go, when an instance leaves the snapshot (terminated,
// stopped, moved to another host), of what the daemon keeps for it beyond
// the snapshot: its tree and rate bucket, its audit state, and the
// metric series of a role that no served instance uses any more. (Its
// credential targets and instance series go in the snapshot loop itself.)
type releaser struct {
	dp     *dataplane.Handler
	audit  *audit.Log // nil without --audit-log
	mx     *metrics.Metrics
	roleOf map[string]string // served instance id -> its role
	users  map[string]int    // role -> served instances using it
}

func newReleaser(dp *dataplane.Handler, a *audit.Log, mx *metrics.Metrics) *releaser {
	return &releaser{dp: dp, audit: a, mx: mx, roleOf: map[string]string{}, users: map[string]int{}}
}

func roleOf(g *dataplane.Guest) string {
	if g == nil || g.Instance.IAMInstanceProfile == nil {
		return ""
	}
	return g.Instance.IAMInstanceProfile.Role
}

// afterSnapshot releases what s no longer serves among changed (all, when
// nil: a full load).
func (r *releaser) afterSnapshot(s *dataplane.Snapshot, changed map[string]struct{}) {
	r.dp.Release(s, changed)
	if changed == nil {
		before := r.users
		r.roleOf, r.users = map[string]string{}, map[string]int{}
		s.Each(func(g *dataplane.Guest) {
			if role := roleOf(g); role != "" {
				r.roleOf[g.Instance.InstanceID] = role
				r.users[role]++
			}
		})
		for role := range before {
			if r.users[role] == 0 {
				r.mx.ForgetRole(role)
			}
		}
		return
	}
	for id := range changed {
		g := s.GuestByID(id)
		if g == nil && r.audit != nil {
			r.audit.Forget(id)
		}
		role, old := roleOf(g), r.roleOf[id]
		if role == old {
			continue
		}
		if old != "" {
			delete(r.roleOf, id)
			if r.users[old]--; r.users[old] <= 0 {
				delete(r.users, old)
				r.mx.ForgetRole(old)
			}
		}
		if role != "" {
			r.roleOf[id] = role
			r.users[role]++
		}
	}
}

// retentionOf picks the retention window: the flag, else the config file,
// else the default.
func retentionOf(c serveConfig, cfg *config.Config) time.Duration {
	switch {
	case c.bounds.retention > 0:
		return c.bounds.retention
	case cfg != nil && cfg.Instances.TerminatedRetention > 0:
		return cfg.Instances.TerminatedRetention
	}
	return retention.DefaultRetention
}

// alsoPurge deletes an instance's records kept beside it (under other key
// prefixes) in the transaction that purges it: its IMDSv1 usage.
func alsoPurge(tx imds.Tx, id string) error { return v1usage.DeleteInstance(tx, id) }

// runRetention purges terminated instances after their window until ctx
// ends; in a fleet only the node holding the purge lease does.
func runRetention(ctx context.Context, store imds.Store, c serveConfig, cfg *config.Config, mx *metrics.Metrics, log *slog.Logger) {
	node := c.hostID
	if node == "" {
		h, _ := os.Hostname()
		node = fmt.Sprintf("%s/%d", h, os.Getpid())
	}
	p := retention.New(store, retention.Options{
		Retention:  retentionOf(c, cfg),
		Node:       node,
		AlsoDelete: alsoPurge,
		OnPurged:   mx.PurgedCounter(),
		Logger:     log,
	})
	_ = p.Run(ctx)
}

// reopenAuditOnSignal reopens the audit file on SIGHUP (with the
// configuration reload) and on SIGUSR1 (reopen only), so logrotate can
// move it away: `postrotate kill -USR1 $(pidof frontdesk)`. It starts
// listening at once (before "ready"); run the returned function on a
// goroutine, and call stop when serve returns.
func reopenAuditOnSignal(f *audit.File, log *slog.Logger) (run func(ctx context.Context), stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGUSR1)
	run = func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
			}
			if err := f.Reopen(); err != nil {
				log.Error("reopening the audit log failed; writing to the old file", "err", err)
				continue
			}
			log.Info("audit log reopened")
		}
	}
	return run, func() { signal.Stop(sig) }
}
