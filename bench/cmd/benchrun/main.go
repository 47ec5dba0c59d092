// Command benchrun is frontdesk's benchmark harness. In one run it builds
// the daemon and a baseline net/http server from the repository, drives both
// with the same load generator (bench/loadgen) for each IMDS workload, then
// measures the daemon at several fleet sizes (memory, start-up, GET latency,
// and how fast a ModifyInstanceMetadataOptions change is enforced), runs the
// Go micro-benchmarks of the hot paths, prints every table and rewrites the
// generated part of BENCHMARKS.md.
//
//	go run ./bench/cmd/benchrun                  full run, writes BENCHMARKS.md
//	go run ./bench/cmd/benchrun -smoke           a few seconds, writes nothing
//	go run ./bench/cmd/benchrun -seed DIR -scales 100000
//	                                             only seed a store to profile a daemon on
//
// Baseline ratios are only meaningful within one run: both servers share the
// machine with the load generator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

// options are benchrun's flags after the -smoke defaults are applied.
type options struct {
	out      string
	duration time.Duration
	warmup   time.Duration
	concs    []int
	scales   []int
	changes  int
	goBench  bool
	keep     bool
	smoke    bool
	// noThroughput skips the baseline comparison (scale runs only).
	noThroughput bool
	// seedDir, when set, only seeds the first -scales size there and exits.
	seedDir string
	args    []string
	// The hostile-guest and churn measurements (bounds.go): flood clients
	// making floodEach requests each, churn instances per cycle for
	// churnCycles cycles; 0 skips. boundsOnly runs only these.
	flood, floodEach, churn, churnCycles int
	boundsOnly                           bool
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o                  options
		concs, scales, out string
		duration, warmup   time.Duration
		changes            int
		goBench, noGoBench bool
	)
	fs.BoolVar(&o.smoke, "smoke", false, "a quick correctness run for CI: short cells, concurrency 1 and 4, scales 1 and 1000, no Go benchmarks, no file written")
	fs.StringVar(&out, "out", "BENCHMARKS.md", "file to rewrite (relative to the repository root); empty: write nothing (default with -smoke)")
	fs.DurationVar(&duration, "duration", 5*time.Second, "measured time per cell")
	fs.DurationVar(&warmup, "warmup", time.Second, "unmeasured warm-up per cell")
	fs.StringVar(&concs, "concurrency", "1,64", "closed-loop concurrencies, comma separated; the last one is the saturation point")
	fs.StringVar(&scales, "scales", "1,10000,100000", "fleet sizes for the scale measurements, comma separated; empty skips them")
	fs.IntVar(&changes, "changes", 100, "ModifyInstanceMetadataOptions changes per fleet size")
	fs.BoolVar(&goBench, "gobench", false, "run the Go micro-benchmarks even with -smoke")
	fs.BoolVar(&noGoBench, "no-gobench", false, "skip the Go micro-benchmarks")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, data, daemon logs)")
	fs.BoolVar(&o.noThroughput, "no-throughput", false, "skip the comparison with the baseline (measure only the fleet sizes and Go benchmarks)")
	fs.IntVar(&o.flood, "flood", 1024, "concurrent clients of one instance for the hostile-guest row (0: skip)")
	fs.IntVar(&o.floodEach, "flood-each", 8, "requests per flood client")
	fs.IntVar(&o.churn, "churn", 200, "instances per churn cycle (0: skip)")
	fs.IntVar(&o.churnCycles, "churn-cycles", 10, "churn cycles")
	fs.BoolVar(&o.boundsOnly, "bounds-only", false, "run only the hostile-guest and churn measurements and rewrite only their section")
	fs.StringVar(&o.seedDir, "seed", "", "only seed the first -scales size of instances into this directory, for `frontdesk serve --data-dir` (profiling), and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.args = args
	o.out, o.duration, o.warmup, o.changes = out, duration, warmup, changes
	o.goBench = !noGoBench
	if o.smoke {
		if !set["out"] {
			o.out = ""
		}
		if !set["duration"] {
			o.duration = 300 * time.Millisecond
		}
		if !set["warmup"] {
			o.warmup = 100 * time.Millisecond
		}
		if !set["concurrency"] {
			concs = "1,4"
		}
		if !set["scales"] {
			scales = "1,1000"
		}
		if !set["changes"] {
			o.changes = 10
		}
		if !set["flood"] {
			o.flood = 16
		}
		if !set["flood-each"] {
			o.floodEach = 4
		}
		if !set["churn"] {
			o.churn = 5
		}
		if !set["churn-cycles"] {
			o.churnCycles = 1
		}
		o.goBench = goBench
	}
	var err error
	if o.concs, err = intList(concs); err != nil || len(o.concs) == 0 {
		return o, fmt.Errorf("-concurrency %q: want positive integers", concs)
	}
	if o.scales, err = intList(scales); err != nil {
		return o, fmt.Errorf("-scales %q: want positive integers", scales)
	}
	if o.duration <= 0 || o.warmup < 0 || o.changes < 1 {
		return o, errors.New("-duration must be positive, -warmup not negative, -changes at least 1")
	}
	return o, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// run is the whole harness; main only wires signals and the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if o.seedDir != "" {
		if len(o.scales) == 0 {
			return errors.New("-seed needs a fleet size in -scales")
		}
		t0 := time.Now()
		if err := seed(ctx, o.seedDir, o.scales[0]); err != nil {
			return err
		}
		logf("seeded %d instances into %s in %s", o.scales[0], o.seedDir, time.Since(t0).Round(time.Millisecond))
		return nil
	}

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "frontdesk-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	logf("building frontdesk and the baseline")
	fdBin, err := build(ctx, root, tmp, "./cmd/frontdesk", "frontdesk")
	if err != nil {
		return err
	}
	blBin, err := build(ctx, root, tmp, "./bench/cmd/baseline", "baseline")
	if err != nil {
		return err
	}

	rep := &report{Started: time.Now(), Machine: describeMachine(), Command: command(o), Opts: o, LoadBefore: loadAverage()}
	var flood *floodResult
	var churn *churnResult
	if o.flood > 0 {
		logf("flood: %d clients of one instance", o.flood)
		f, err := runFlood(ctx, fdBin, tmp, o.flood, o.floodEach)
		if err != nil {
			return fmt.Errorf("flood: %w", err)
		}
		flood = &f
		logf("  200: %d, 429: %d, other: %d, transport errors: %d in %s", f.OK, f.Throttled, f.Other, f.Errors, f.Elapsed.Round(time.Millisecond))
	}
	if o.churn > 0 {
		logf("churn: %d cycles of %d instances", o.churnCycles, o.churn)
		c, err := runChurn(ctx, fdBin, tmp, o.churn, o.churnCycles, logf)
		if err != nil {
			return fmt.Errorf("churn: %w", err)
		}
		churn = &c
	}
	boundsMD := boundsMarkdown(rep.Started, rep.Machine, rep.Command, flood, churn)
	fmt.Fprintln(stdout, boundsMD)
	if flood != nil && (flood.Errors > 0 || flood.Other > 0) {
		return fmt.Errorf("flood: %d transport errors and %d other statuses (first: %s): %s not written", flood.Errors, flood.Other, flood.FirstError, orNone(o.out))
	}
	if o.boundsOnly {
		if o.out != "" {
			path := o.out
			if !filepath.IsAbs(path) {
				path = filepath.Join(root, path)
			}
			if err := writeBounds(path, boundsMD); err != nil {
				return err
			}
			logf("wrote the bounds section of %s", path)
		}
		return nil
	}
	if !o.noThroughput {
		if rep.Workloads, err = throughput(ctx, o, fdBin, blBin, tmp, logf); err != nil {
			return err
		}
	}
	for _, wr := range rep.Workloads {
		fmt.Fprintln(stdout, wr.markdown())
	}
	for _, n := range o.scales {
		logf("scale: %d instances", n)
		r, err := runScale(ctx, o, fdBin, tmp, n, logf)
		if err != nil {
			return fmt.Errorf("scale %d: %w", n, err)
		}
		rep.Scales = append(rep.Scales, r)
	}
	rep.LoadAfter = loadAverage() // before the Go benchmarks compile
	if len(rep.Scales) > 0 {
		fmt.Fprintln(stdout, rep.scaleMarkdown())
	}
	if o.goBench {
		logf("Go micro-benchmarks")
		if rep.GoBench, err = goBenchmarks(ctx, root); err != nil {
			return err
		}
		fmt.Fprintln(stdout, rep.goBenchMarkdown())
	}
	fmt.Fprintln(stdout, rep.targetsMarkdown())

	failures := rep.failures()
	for _, f := range failures {
		fmt.Fprintln(stderr, "!!! ERRORS:", f)
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d cells had failed requests: the figures are not valid and %s was not written", len(failures), orNone(o.out))
	}
	if o.out != "" {
		path := o.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := writeReport(path, rep); err != nil {
			return err
		}
		if flood != nil || churn != nil {
			if err := writeBounds(path, boundsMD); err != nil {
				return err
			}
		}
		logf("wrote %s", path)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no file"
	}
	return s
}

// command is how to repeat this run.
func command(o options) string {
	return strings.TrimSpace("go run ./bench/cmd/benchrun " + strings.Join(o.args, " "))
}

// goBenchmarks runs the hot-path micro-benchmarks with allocation counts.
func goBenchmarks(ctx context.Context, root string) (string, error) {
	var b strings.Builder
	for _, pb := range [][3]string{
		{"./internal/dataplane", ".", "1s"},
		{"./internal/mdtree", "Lookup", "1s"},
		{"./internal/token", ".", "1s"},
		// Fleet mode: a 3-member etcd cluster and two nodes; one iteration
		// is 100 changes through node A timed until node B enforces them.
		{"./cmd/frontdesk", "FleetPropagation", "1x"},
	} {
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", pb[1], "-benchmem", "-benchtime", pb[2], pb[0])
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go test -bench %s: %w\n%s", pb[0], err, out)
		}
		for line := range strings.SplitSeq(string(out), "\n") {
			if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "pkg:") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String(), nil
}
