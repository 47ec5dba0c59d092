//go:build integration

// Package fleetsim simulates a fleet against a real etcd: many instances on
// many hosts, a set of lightweight nodes (data-plane followers for different
// hosts, each with its own etcd connection, all in this process) and a
// steady stream of changes spread over the fleet. It reports what each node
// pays (start-up, keys read, heap, watch events, change-to-enforcement
// latency) and what etcd holds (db size, watch streams and watchers).
//
//	go test -tags integration -run '^$' -bench FleetSimulation -benchtime 1x ./bench/fleetsim
//
// Scale with FLEETSIM_INSTANCES (default 100000), FLEETSIM_HOSTS (1000),
// FLEETSIM_NODES (50), FLEETSIM_RATE (changes per second, 1000) and
// FLEETSIM_SECONDS (20).
package fleetsim

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/etcd"
	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// node is one simulated frontdesk node.
type node struct {
	host    string
	store   *etcd.Store
	f       *dataplane.Follower
	startup time.Duration
	keys    atomic.Int64
	events  atomic.Int64
	mu      sync.Mutex
	lat     []time.Duration
}

func BenchmarkFleetSimulation(b *testing.B) {
	instances := envInt("FLEETSIM_INSTANCES", 100_000)
	hosts := envInt("FLEETSIM_HOSTS", 1000)
	nodes := envInt("FLEETSIM_NODES", 50)
	rate := envInt("FLEETSIM_RATE", 1000)
	seconds := envInt("FLEETSIM_SECONDS", 20)
	if nodes > hosts {
		nodes = hosts
	}
	cluster := etcdtest.Start(b, etcdtest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *etcd.Store {
		st, err := etcd.Open(ctx, etcd.Config{Endpoints: cluster.Endpoints(), Prefix: "/fleetsim", RequestTimeout: 30 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	}
	writer := open()
	hostOf := func(n int) string { return fmt.Sprintf("host-%05d", n%hosts) }
	base := netip.MustParseAddr("198.18.0.0").As4()
	addrOf := func(n int) string {
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		v += uint32(n) + 1
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
	}
	newInstance := func(n int) *imds.Instance {
		in := storetest.NewInstance(b, n+1, addrOf(n))
		in.Placement.HostID = hostOf(n)
		return in
	}

	// Seed the fleet, 40 instances per transaction, 8 writers.
	seedStart := time.Now()
	var wg sync.WaitGroup
	const perTx, writers = 40, 8
	var seedErr atomic.Value
	for w := range writers {
		wg.Go(func() {
			for first := w * perTx; first < instances; first += writers * perTx {
				err := writer.Update(ctx, func(tx imds.Tx) error {
					for n := first; n < min(first+perTx, instances); n++ {
						if err := imds.PutInstance(tx, newInstance(n)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					seedErr.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := seedErr.Load().(error); err != nil {
		b.Fatalf("seed: %v", err)
	}
	seeded := time.Since(seedStart)

	// Start the nodes, one host each, spread over the host ids.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	pending := sync.Map{} // instance id -> time its change was sent
	all := make([]*node, nodes)
	for k := range nodes {
		nd := &node{host: hostOf(k * (hosts / nodes)), store: open()}
		nd.f = dataplane.NewFollower(nd.store, dataplane.FollowerOptions{
			Prefixes:      imds.NodePrefixes(nd.host),
			Include:       func(in *imds.Instance) bool { return in.Placement.HostID == nd.host },
			OnKeysLoaded:  func(n int) { nd.keys.Store(int64(n)) },
			OnWatchEvents: func(n int) { nd.events.Add(int64(n)) },
			OnSnapshot: func(s *dataplane.Snapshot) {
				now := time.Now()
				for _, id := range s.Changed {
					if t0, ok := pending.Load(id); ok {
						nd.mu.Lock()
						nd.lat = append(nd.lat, now.Sub(t0.(time.Time)))
						nd.mu.Unlock()
					}
				}
			},
		})
		start := time.Now()
		if _, err := nd.f.Load(ctx); err != nil {
			b.Fatalf("node %s: load: %v", nd.host, err)
		}
		nd.startup = time.Since(start)
		go func() { _ = nd.f.Run(ctx) }()
		all[k] = nd
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heapPerNode := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(nodes)

	// Changes spread over the fleet: every 10 ms one transaction changing
	// rate/100 random instances (a tag), so rate changes a second.
	for _, nd := range all {
		nd.events.Store(0)
	}
	perTick := max(rate/100, 1)
	tick := time.NewTicker(10 * time.Millisecond)
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	changes, late := 0, 0
	var changeWG sync.WaitGroup
	sem := make(chan struct{}, 8)
	var changed atomic.Int64
	for now := range tick.C {
		if now.After(end) {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			late++ // the writers are behind: the rate is not reached
			continue
		}
		picks := make([]int, perTick)
		for i := range picks {
			picks[i] = rand.N(instances)
		}
		changes += perTick
		changeWG.Go(func() {
			defer func() { <-sem }()
			sent := time.Now()
			err := writer.Update(ctx, func(tx imds.Tx) error {
				for _, n := range picks {
					in, err := imds.GetInstance(tx, fmt.Sprintf("i-%017x", n+1))
					if err != nil {
						return err
					}
					in.Tags = []imds.Tag{{Key: "change", Value: strconv.FormatInt(sent.UnixNano(), 10)}}
					pending.Store(in.InstanceID, sent)
					if err := imds.PutInstance(tx, in); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				changed.Add(int64(len(picks)))
			}
		})
	}
	tick.Stop()
	changeWG.Wait()
	elapsed := time.Duration(seconds) * time.Second
	time.Sleep(2 * time.Second) // let the last changes arrive

	// Per-node figures.
	var startups, lats []time.Duration
	var keys, events []int64
	for _, nd := range all {
		startups = append(startups, nd.startup)
		keys = append(keys, nd.keys.Load())
		events = append(events, nd.events.Load())
		nd.mu.Lock()
		lats = append(lats, nd.lat...)
		nd.mu.Unlock()
	}
	slices.Sort(startups)
	slices.Sort(lats)
	slices.Sort(keys)
	slices.Sort(events)
	pct := func(d []time.Duration, q float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(q*float64(len(d))))]
	}
	etcdStats := scrapeEtcd(b, cluster.Endpoint(0))
	b.Logf("fleet: %d instances on %d hosts, seeded in %s; %d nodes (one host each)", instances, hosts, seeded.Round(time.Millisecond), nodes)
	b.Logf("changes: %d committed of %d sent in %s (%.0f/s, target %d/s; %d ticks skipped with every writer busy)",
		changed.Load(), changes, elapsed, float64(changed.Load())/elapsed.Seconds(), rate, late)
	b.Logf("per node: start-up p50 %s max %s; keys read %d..%d; heap %.1f MiB; watch events %d..%d (changes on its host); change-to-enforcement p50 %s p99 %s over %d changes",
		pct(startups, 0.5), startups[len(startups)-1], keys[0], keys[len(keys)-1], heapPerNode/(1<<20), events[0], events[len(events)-1],
		pct(lats, 0.5).Round(time.Microsecond), pct(lats, 0.99).Round(time.Microsecond), len(lats))
	b.Logf("etcd: db %.1f MiB (in use %.1f MiB), %s watch streams, %s watchers",
		etcdStats["etcd_mvcc_db_total_size_in_bytes"]/(1<<20), etcdStats["etcd_mvcc_db_total_size_in_use_in_bytes"]/(1<<20),
		strconv.FormatFloat(etcdStats["etcd_debugging_mvcc_watch_stream_total"], 'f', 0, 64),
		strconv.FormatFloat(etcdStats["etcd_debugging_mvcc_watcher_total"], 'f', 0, 64))
	b.ReportMetric(float64(pct(startups, 0.5))/1e6, "startup-p50-ms")
	b.ReportMetric(float64(keys[len(keys)-1]), "max-keys-read")
	b.ReportMetric(heapPerNode/(1<<20), "heap-MiB/node")
	b.ReportMetric(float64(pct(lats, 0.99))/1e6, "enforce-p99-ms")
	b.ReportMetric(float64(changed.Load())/elapsed.Seconds(), "changes/s")
	b.ReportMetric(etcdStats["etcd_mvcc_db_total_size_in_bytes"]/(1<<20), "etcd-db-MiB")
	if len(lats) == 0 {
		b.Fatal("no change reached a node: nothing measured")
	}
}

// scrapeEtcd reads a few gauges from an etcd member's /metrics.
func scrapeEtcd(b *testing.B, endpoint string) map[string]float64 {
	b.Helper()
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}
