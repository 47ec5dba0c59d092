package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/credentials"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// These benchmarks exist to profile the daemon's start-up and change path
// in process (the daemon serves no pprof endpoint), on the same seeded
// instances as the scale runs:
//
//	BENCH_FLEET=100000 go test ./bench/cmd/benchrun -run '^$' -bench FollowerLoad -benchtime 3x -cpuprofile cpu.out -memprofile mem.out
//	BENCH_FLEET=100000 go test ./bench/cmd/benchrun -run '^$' -bench FollowerChange -benchtime 50x -cpuprofile cpu.out
//
// BENCH_FLEET is the fleet size (default 10,000).

// benchFleet seeds the fleet once per benchmark into a bolt store and opens it.
func benchFleet(b *testing.B) (*bolt.Store, int) {
	b.Helper()
	n := 10000
	if v := os.Getenv("BENCH_FLEET"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("BENCH_FLEET=%q: want a positive integer", v)
		}
	}
	dir := b.TempDir()
	if err := seed(context.Background(), dir, n); err != nil {
		b.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(dir, "frontdesk.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, n
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkFollowerLoad is the daemon's start-up work on its data plane:
// read every instance from the store and build the snapshot, as serve does
// before it prints "ready". It reports the live heap the snapshot keeps.
func BenchmarkFollowerLoad(b *testing.B) {
	st, n := benchFleet(b)
	ctx := context.Background()
	before := liveHeap()
	var keep *dataplane.Follower
	for b.Loop() {
		keep = nil
		f := dataplane.NewFollower(st, dataplane.FollowerOptions{})
		if _, err := f.Load(ctx); err != nil {
			b.Fatal(err)
		}
		keep = f
	}
	b.StopTimer()
	if got := keep.Snapshot().Len(); got != n {
		b.Fatalf("snapshot holds %d instances, want %d", got, n)
	}
	b.ReportMetric(float64(liveHeap()-before)/float64(n), "live-B/instance")
	runtime.KeepAlive(keep)
}

// BenchmarkFollowerChange is one ModifyInstanceMetadataOptions as the
// daemon sees it: a store write flipping HttpTokens, until the follower
// publishes a snapshot with it. The credential bookkeeping runs as serve
// runs it (credential targets of the whole fleet on a goroutine that takes
// the newest snapshot), with the refresher fetching, so the GC and CPU it
// costs compete as they do in the daemon.
func BenchmarkFollowerChange(b *testing.B) {
	st, n := benchFleet(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	local := credentials.NewLocal(credentials.LocalOptions{})
	refresher := credentials.NewRefresher(func(string) credentials.Provider { return local },
		credentials.RefresherOptions{})
	newSnap := make(chan *dataplane.Snapshot, 1)
	f := dataplane.NewFollower(st, dataplane.FollowerOptions{OnSnapshot: func(s *dataplane.Snapshot) {
		select {
		case <-newSnap:
		default:
		}
		newSnap <- s
	}})
	if _, err := f.Load(ctx); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{}, 3)
	go func() { _ = f.Run(ctx); done <- struct{}{} }()
	go func() { _ = refresher.Run(ctx); done <- struct{}{} }()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-newSnap:
				refresher.SetTargets(benchCredentialTargets(s))
			}
		}
	}()
	defer func() {
		cancel()
		for range 3 {
			<-done
		}
	}()
	id := instanceID(n - 1)
	var lat []time.Duration
	i := 0
	for b.Loop() {
		want := imds.Required
		if i%2 == 1 {
			want = imds.Optional
		}
		i++
		t0 := time.Now()
		err := st.Update(ctx, func(tx imds.Tx) error {
			in, err := imds.GetInstance(tx, id)
			if err != nil {
				return err
			}
			in.MetadataOptions.HttpTokens = want
			in.OptionsRevision = tx.Revision() + 1
			return imds.PutInstance(tx, in)
		})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if g := f.Snapshot().GuestByID(id); g != nil && g.Instance.MetadataOptions.HttpTokens == want {
				break
			}
			if time.Since(t0) > 10*time.Second {
				b.Fatalf("change %d not applied after 10 s", i)
			}
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(pct(lat, 0.5))/1e6, "p50-ms")
	b.ReportMetric(float64(pct(lat, 0.99))/1e6, "p99-ms")
}

// benchCredentialTargets is what the daemon's credentials.Tracker sets after
// a full load: the role target of every instance.
func benchCredentialTargets(s *dataplane.Snapshot) []credentials.Target {
	ts := make([]credentials.Target, 0, s.Len())
	s.EachInstance(func(in *imds.Instance) { ts = credentials.TargetsOf(in, ts) })
	return ts
}
