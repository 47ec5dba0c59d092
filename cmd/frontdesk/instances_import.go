package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// `frontdesk instances import` and `export`: an inventory as JSON lines, one
// `aws ec2 run-instances --cli-input-json` object per line.

// defaultImportBatch keeps a batch within etcd's default bound on the
// operations of one transaction (128; each instance is a few).
const defaultImportBatch = 25

func cmdInstancesImport(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "instances import", "frontdesk instances import [--batch N] [--parallel N] FILE|-")
	batch := c.fs.Int("batch", defaultImportBatch, "instances per request; each request is one store transaction, all or nothing")
	parallel := c.fs.Int("parallel", 4, "requests in flight at once")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *batch < 1 || *parallel < 1 {
		return usageErr("--batch and --parallel must be at least 1")
	}
	in := e.stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	lines, err := readImportLines(in)
	if err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	rep := importInventory(ctx, cl, lines, *batch, *parallel, progressWriter(e.stderr))
	fmt.Fprintf(e.stdout, "imported %d instances from %d lines in %s (%.0f instances/s)\n",
		rep.Imported, len(lines), rep.Elapsed.Round(time.Millisecond), float64(rep.Imported)/max(rep.Elapsed.Seconds(), 1e-9))
	if rep.Err != nil {
		return fmt.Errorf("import stopped: %w (each batch is all or nothing: lines %d-%d were not imported; batches not yet sent were not sent)",
			rep.Err, rep.FailedFrom, rep.FailedTo)
	}
	return nil
}

// readImportLines reads the non-blank lines of r with their line numbers.
func readImportLines(r io.Reader) ([]apiclient.ImportLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var out []apiclient.ImportLine
	for n := 1; sc.Scan(); n++ {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		out = append(out, apiclient.ImportLine{Line: n, JSON: string(l)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the inventory: %w", err)
	}
	return out, nil
}

// importReport is the outcome of importInventory.
type importReport struct {
	Imported int
	Elapsed  time.Duration
	// Err is the first refused batch's error (it names the line), and
	// FailedFrom..FailedTo the lines of that batch.
	Err                  error
	FailedFrom, FailedTo int
}

// importInventory sends lines in batches, parallel at a time, stopping at
// the first refused batch; progress (may be nil) is told the running count.
func importInventory(ctx context.Context, cl *apiclient.Client, lines []apiclient.ImportLine, batch, parallel int, progress func(done, total int)) importReport {
	start := time.Now()
	var (
		mu   sync.Mutex
		rep  importReport
		next int
		wg   sync.WaitGroup
	)
	take := func() []apiclient.ImportLine {
		mu.Lock()
		defer mu.Unlock()
		if rep.Err != nil || next >= len(lines) {
			return nil
		}
		b := lines[next:min(next+batch, len(lines))]
		next += len(b)
		return b
	}
	for range parallel {
		wg.Go(func() {
			for b := take(); b != nil; b = take() {
				got, err := cl.ImportInstances(ctx, b)
				mu.Lock()
				if err != nil {
					if rep.Err == nil || b[0].Line < rep.FailedFrom {
						rep.Err, rep.FailedFrom, rep.FailedTo = err, b[0].Line, b[len(b)-1].Line
					}
				} else {
					rep.Imported += len(got)
				}
				done := rep.Imported
				mu.Unlock()
				if progress != nil {
					progress(done, len(lines))
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	if progress != nil {
		progress(-1, len(lines))
	}
	return rep
}

// progressWriter draws a progress line on w when w is a terminal, and
// nothing otherwise (a log or a pipe gets only the final report).
func progressWriter(w io.Writer) func(done, total int) {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	var mu sync.Mutex
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if done < 0 {
			fmt.Fprint(w, "\r\033[K")
			return
		}
		const width = 30
		filled := width * done / max(total, 1)
		fmt.Fprintf(w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
	}
}

func cmdInstancesExport(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "instances export", "frontdesk instances export")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(e.stdout)
	err = cl.ExportInstances(ctx, func(line string) error {
		_, err := fmt.Fprintln(w, line)
		return err
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("export instances: %w", err)
	}
	return nil
}
