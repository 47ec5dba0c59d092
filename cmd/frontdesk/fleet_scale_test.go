//go:build integration

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
	"github.com/frontdesk-imds/frontdesk/internal/etcd"
	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Fleet at scale (issue 14): concurrent control planes launch without
// conflicting and without losing or duplicating an address; an inventory
// of 20,000 instances on 200 hosts is imported through two control planes
// at once; and a node for one host then loads, holds and watches only what
// it serves. Figures are printed (t.Log with -v); correctness is asserted.
func TestFleetScale(t *testing.T) {
	cluster := etcdtest.Start(t, etcdtest.Options{})
	prefix := fleetPrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cps := []*fleetNode{
		startFleetNode(t, "cp-1", cluster.Endpoints(), prefix, "--log-level", "warn"),
		startFleetNode(t, "cp-2", cluster.Endpoints(), prefix, "--log-level", "warn"),
		startFleetNode(t, "cp-3", cluster.Endpoints(), prefix, "--log-level", "warn"),
	}
	st, err := etcd.Open(ctx, etcd.Config{Endpoints: cluster.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	t.Run("concurrent_control_planes_launch_without_losing_or_duplicating", func(t *testing.T) {
		const perWriter = 40
		rates := map[int]float64{}
		for n := 1; n <= 3; n++ {
			// Different hosts and addresses per writer: no conflicts.
			var wg sync.WaitGroup
			start := time.Now()
			errs := make(chan error, n)
			for w := range n {
				wg.Go(func() {
					for i := range perWriter {
						addr := fmt.Sprintf("198.19.%d.%d", 10*n+w, i+10)
						if _, err := runOne(ctx, cps[w].ec2, addr, fmt.Sprintf("launch-%d-%d", n, w)); err != nil {
							errs <- fmt.Errorf("writer %d: %s: %w", w, addr, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			rates[n] = float64(n*perWriter) / time.Since(start).Seconds()
		}
		t.Logf("launches/s, distinct hosts and addresses: 1 control plane %.0f (baseline), 2 at once %.0f (%.2fx), 3 at once %.0f (%.2fx)",
			rates[1], rates[2], rates[2]/rates[1], rates[3], rates[3]/rates[1])

		// Every writer races for the same addresses: each must be won
		// exactly once, and every reported launch must be stored.
		const pool = 30
		won := make([]map[string]string, 3) // per writer: address -> id
		var wg sync.WaitGroup
		var unexpected atomic.Value
		for w := range 3 {
			won[w] = map[string]string{}
			wg.Go(func() {
				for i := range pool {
					addr := fmt.Sprintf("198.19.200.%d", i+10)
					id, err := runOne(ctx, cps[w].ec2, addr, fmt.Sprintf("race-%d", w))
					if err == nil {
						won[w][addr] = id
					} else if !strings.Contains(err.Error(), "InvalidIPAddress.InUse") {
						unexpected.Store(err)
					}
				}
			})
		}
		wg.Wait()
		if err, _ := unexpected.Load().(error); err != nil {
			t.Fatalf("racing launch failed other than InvalidIPAddress.InUse: %v", err)
		}
		owner := map[string]string{}
		for w := range 3 {
			for addr, id := range won[w] {
				if prev, dup := owner[addr]; dup {
					t.Errorf("%s launched twice: %s and %s", addr, prev, id)
				}
				owner[addr] = id
			}
		}
		if len(owner) != pool {
			t.Errorf("%d of %d raced addresses were won, want each exactly once", len(owner), pool)
		}
		stored := map[string][]string{}
		mustView(t, st, func(tx imds.Tx) error {
			return imds.ListInstances(tx, func(in *imds.Instance) error {
				if in.Live() {
					for _, a := range in.Addresses() {
						stored[a] = append(stored[a], in.InstanceID)
					}
				}
				return nil
			})
		})
		lost, dup := 0, 0
		for addr, id := range owner {
			if ids := stored[addr]; len(ids) != 1 || ids[0] != id {
				lost++
				t.Errorf("%s: store holds %v, want the launch %s", addr, ids, id)
			}
		}
		for addr, ids := range stored {
			if len(ids) > 1 {
				dup++
				t.Errorf("%s is held by %v", addr, ids)
			}
		}
		t.Logf("racing 3 control planes for %d addresses: %d won, %d lost, %d duplicated", pool, len(owner), lost, dup)
	})

	const hosts, perHost = 200, 100
	const total = hosts * perHost
	host := func(h int) string { return fmt.Sprintf("h-%03d", h) }
	addrOf := func(h, i int) string { return fmt.Sprintf("198.18.%d.%d", h, i+10) }

	t.Run("import_20000_instances_through_two_control_planes", func(t *testing.T) {
		var halves [2][]apiclient.ImportLine
		for h := range hosts {
			for i := range perHost {
				n := h*perHost + i
				line := fmt.Sprintf(`{"ImageId":"ami-0123456789abcdef0","InstanceType":"t3.micro","PrivateIpAddress":%q,"Placement":{"HostId":%q},"TagSpecifications":[{"ResourceType":"instance","Tags":[{"Key":"Name","Value":"guest-%d"}]}]}`,
					addrOf(h, i), host(h), n)
				halves[n%2] = append(halves[n%2], apiclient.ImportLine{Line: n/2 + 1, JSON: line})
			}
		}
		start := time.Now()
		var wg sync.WaitGroup
		reps := make([]importReport, 2)
		for w := range 2 {
			cl := apiClientFor(ctx, t, cps[w])
			wg.Go(func() { reps[w] = importInventory(ctx, cl, halves[w], defaultImportBatch, 4, nil) })
		}
		wg.Wait()
		elapsed := time.Since(start)
		for w, r := range reps {
			if r.Err != nil {
				t.Fatalf("import through cp-%d: %v (lines %d-%d)", w+1, r.Err, r.FailedFrom, r.FailedTo)
			}
		}
		if got := reps[0].Imported + reps[1].Imported; got != total {
			t.Fatalf("imported %d, want %d", got, total)
		}
		var placed int
		mustView(t, st, func(tx imds.Tx) error {
			return imds.ListInstances(tx, func(in *imds.Instance) error {
				if strings.HasPrefix(in.Placement.HostID, "h-") {
					placed++
				}
				return nil
			})
		})
		if placed != total {
			t.Fatalf("store holds %d imported instances, want %d", placed, total)
		}
		t.Logf("imported %d instances on %d hosts through 2 control planes at once in %s (%.0f instances/s; target under 60s)",
			total, hosts, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	})

	t.Run("a_node_for_one_host_reads_holds_and_watches_only_its_instances", func(t *testing.T) {
		const mine = 42
		bin := buildFrontdesk(t)
		start := time.Now()
		p := startProc(t, bin, procOptions{}, "--store", "etcd", "--etcd-endpoints", strings.Join(cluster.Endpoints(), ","),
			"--etcd-prefix", prefix, "--host-id", host(mine), "--rate-limit", "0", "--log-level", "warn")
		ready := time.Since(start)
		mfs := scrapeURL(t, p.apiURL)
		keys := familyValue(mfs, "frontdesk_store_keys_loaded")
		served := familyValue(mfs, "frontdesk_instances")
		rss, hwm := procMemory(t, p.cmd.Process.Pid)
		t.Logf("node for %s: ready in %s (target under 2s), %.0f keys read (at most 1000), serves %.0f instances, RSS %.1f MiB (peak %.1f MiB; target under 64 MiB)",
			host(mine), ready.Round(time.Millisecond), keys, served, rss, hwm)
		if keys > 1000 || keys < perHost {
			t.Errorf("node read %.0f keys at load, want its %d instances and a few shared keys (at most 1000)", keys, perHost)
		}
		if served != perHost {
			t.Errorf("node serves %.0f instances, want %d", served, perHost)
		}
		if hwm >= 64 {
			t.Errorf("node's peak RSS %.1f MiB, want under 64 MiB", hwm)
		}

		// 100 instances on other hosts change; then one of ours, as a
		// marker: once the node has applied it, it has passed the others.
		before := familyValue(mfs, "frontdesk_store_watch_events_total")
		ids := idsByHost(t, st)
		var others []string
		for h := range hosts {
			if h != mine {
				others = append(others, ids[host(h)][0])
			}
			if len(others) == 100 {
				break
			}
		}
		for i, id := range others {
			if _, err := cps[i%3].ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("changed"), Value: aws.String("yes")}}}); err != nil {
				t.Fatal(err)
			}
		}
		// The store's revision before the marker: the node builds a
		// snapshot past it only for a change in its own ranges, the
		// marker. (Reading the revision after the marker would not do:
		// other keys, such as the audit trail's change records, are
		// written after it and never reach this node's snapshot.)
		var rev int64
		mustView(t, st, func(tx imds.Tx) error { rev = tx.Revision(); return nil })
		if _, err := cps[0].ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ids[host(mine)][0]}, Tags: []types.Tag{{Key: aws.String("marker"), Value: aws.String("yes")}}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			mfs = scrapeURL(t, p.apiURL)
			if int64(familyValue(mfs, "frontdesk_snapshot_revision")) > rev {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node did not apply the marker change (after revision %d) within 30s", rev)
			}
			time.Sleep(50 * time.Millisecond)
		}
		events := familyValue(mfs, "frontdesk_store_watch_events_total") - before
		t.Logf("while 100 instances on other hosts changed, the node received %.0f watch events (the marker on its own host included)", events)
		if events < 1 || events > 5 {
			t.Errorf("node received %.0f watch events, want the marker's 1 and at most a handful", events)
		}
	})
}

// runOne launches one instance at addr on host and returns its id.
func runOne(ctx context.Context, c *ec2.Client, addr, host string) (string, error) {
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		PrivateIpAddress: aws.String(addr), Placement: &types.Placement{HostId: aws.String(host)},
	})
	if err != nil {
		return "", err
	}
	if len(out.Instances) != 1 {
		return "", errors.New("RunInstances answered " + strconv.Itoa(len(out.Instances)) + " instances")
	}
	return aws.ToString(out.Instances[0].InstanceId), nil
}

func apiClientFor(ctx context.Context, t *testing.T, n *fleetNode) *apiclient.Client {
	t.Helper()
	creds, _, err := apiclient.LoadCredentials(ctx, n.dataDir, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return apiclient.New(n.apiURL, creds, apiclient.Options{})
}

func mustView(t *testing.T, st imds.Store, fn func(imds.Tx) error) {
	t.Helper()
	if err := st.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// idsByHost lists the live instance ids of every host.
func idsByHost(t *testing.T, st imds.Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	mustView(t, st, func(tx imds.Tx) error {
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			if in.Live() {
				out[in.Placement.HostID] = append(out[in.Placement.HostID], in.InstanceID)
			}
			return nil
		})
	})
	return out
}

func scrapeURL(t *testing.T, apiURL string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// familyValue is the value of a family's first unlabelled gauge or counter
// (0 when absent).
func familyValue(mfs map[string]*dto.MetricFamily, name string) float64 {
	mf := mfs[name]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return 0
	}
	m := mf.GetMetric()[0]
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

// procMemory reads a process's resident set and its peak, in MiB.
func procMemory(t *testing.T, pid int) (rss, peak float64) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}
