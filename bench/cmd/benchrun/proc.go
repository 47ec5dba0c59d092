package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// moduleRoot is the directory of the repository's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the frontdesk module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// build compiles pkg (relative to the module root) into dir.
func build(ctx context.Context, root, dir, pkg, name string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// proc is a started server whose stdout announced its addresses.
type proc struct {
	cmd     *exec.Cmd
	started time.Time
	// ready is how long the process took from exec to printing "ready".
	ready time.Duration
	// urls maps the label before ": http://" on stdout to the URL.
	urls    map[string]string
	logPath string
	done    chan struct{}
	waitErr error
}

// start runs bin and waits for its "ready" line. Its stderr goes to logPath.
func start(ctx context.Context, bin string, args []string, logPath string, timeout time.Duration) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	// An os.Pipe rather than StdoutPipe: Wait must not close the reading end
	// while the scanner still uses it.
	out, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	cmd.Stdout = pw
	p := &proc{cmd: cmd, urls: map[string]string{}, logPath: logPath, done: make(chan struct{})}
	p.started = time.Now()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		out.Close()
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	readyc := make(chan time.Duration, 1)
	go func() {
		// The URLs come before "ready"; the channel send publishes them.
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				readyc <- time.Since(p.started)
				break
			}
			if label, u, ok := strings.Cut(line, ": http://"); ok {
				p.urls[label] = "http://" + u
			}
		}
		_, _ = io.Copy(io.Discard, out)
		out.Close()
	}()
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case d := <-readyc:
		p.ready = d
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before ready: %v\n%s", filepath.Base(bin), p.waitErr, tail(logPath))
	case <-t.C:
		p.stop()
		return nil, fmt.Errorf("%s not ready after %s\n%s", filepath.Base(bin), timeout, tail(logPath))
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// stop asks the process to drain (SIGTERM) and kills it if it does not.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// memory is the resident memory of a process, from /proc/PID/status.
type memory struct {
	RSS, Peak, Anon, File int64 // bytes
}

func (p *proc) memory() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return memory{}, fmt.Errorf("read process status: %w", err)
	}
	var m memory
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.Peak
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err == nil {
				*dst = n << 10
			}
		}
	}
	if m.RSS == 0 {
		return m, errors.New("no VmRSS in process status")
	}
	return m, nil
}

// cpuTime is the process's user+system CPU time so far.
func (p *proc) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read process stat: %w", err)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed process stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed process stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed process stat")
	}
	const clkTck = 100 // USER_HZ on every Linux platform Go supports
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// waitIdle waits until the process uses under 5% of one CPU over half a
// second (background work after "ready", such as fetching credentials,
// has finished), or until limit. It returns how long that took.
func (p *proc) waitIdle(ctx context.Context, limit time.Duration) (time.Duration, error) {
	begin := time.Now()
	const step = 500 * time.Millisecond
	prev, err := p.cpuTime()
	if err != nil {
		return 0, err
	}
	for time.Since(begin) < limit {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-p.done:
			return 0, errors.New("process exited")
		case <-time.After(step):
		}
		cur, err := p.cpuTime()
		if err != nil {
			return 0, err
		}
		if cur-prev < step/20 {
			return time.Since(begin), nil
		}
		prev = cur
	}
	return time.Since(begin), fmt.Errorf("%w after %s", errBusy, limit)
}

// errBusy: the process did not become idle in time.
var errBusy = errors.New("still busy")

// tail returns the end of a log file for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
