// Package audit writes frontdesk's audit stream: one JSON object per line
// for every IMDSv1 call (how an operator finds the process still to be
// migrated to IMDSv2), every credential delivery, and every control-plane
// change with the access key id that made it.
//
// Tokens, secret access keys and session tokens are never written: events
// are built from dataplane.RequestEvent fields and a few request fields
// (path, User-Agent, remote address), never from the token header.
//
// A guest cannot flood the stream. Per instance, repeats of the same call
// (event, method, path, User-Agent, status; for deliveries the role and
// access key) within Options.Window collapse: the first is written at
// once, the rest are counted and written as one line when the window ends,
// each line carrying "count", so the counts add up to exactly the calls
// made. Guest-supplied text is cut to a bounded length and marked with
// TruncatedMarker. Each instance may have at most Options.Share lines
// queued, so one guest cannot push the others' events out.
//
// Writing never blocks a request. Events are encoded on the caller's
// goroutine and queued to a single writer goroutine through a bounded
// buffer (Options.Buffer lines); when a slow or stuck writer lets the
// buffer fill up, new events are dropped and counted (Dropped) rather than
// stalling the data plane.
package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
)

// DefaultBuffer is the default number of queued lines.
const DefaultBuffer = 4096

// DefaultWindow is how long repeats of one call are collected into one line.
const DefaultWindow = 10 * time.Second

// Bounds on guest-supplied text: a path or User-Agent longer than this is
// cut and marked, so that a guest cannot write kilobytes per request.
const (
	maxPathLen = 256
	maxUALen   = 512
	// TruncatedMarker ends a field that was cut.
	TruncatedMarker = "...[truncated]"
	// maxKeysPerInstance bounds the distinct calls tracked per instance
	// and window; beyond it calls are written one line each.
	maxKeysPerInstance = 64
)

// Event names, the "event" field of each line.
const (
	EventV1Call     = "imds_v1_call"
	EventDelivery   = "credential_delivery"
	EventChange     = "control_plane_change"
	redactedValue   = "[redacted]"
	timeFieldLayout = time.RFC3339Nano
)

// Options are the optional knobs of New. The zero value works.
type Options struct {
	// Now stamps events and measures windows (default time.Now).
	Now func() time.Time
	// Buffer is how many lines may wait for the writer before events are
	// dropped (default DefaultBuffer).
	Buffer int
	// Share is how many of those lines one instance may hold (default: a
	// sixteenth of Buffer, at least 16).
	Share int
	// Window is how long repeats of one call collapse into one line
	// (default DefaultWindow).
	Window time.Duration
	// Logger reports write failures (default: discarded).
	Logger *slog.Logger
}

// Log is the audit stream. Its methods are safe for concurrent use.
type Log struct {
	now     func() time.Time
	log     *slog.Logger
	window  time.Duration
	share   int32
	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
	queue   chan queued
	done    chan struct{}
	stop    chan struct{}
	dropped atomic.Int64
	err     error // first write error, read after done is closed

	aggMu sync.Mutex
	inst  map[string]*instanceState
}

// queued is one line and the counter of its instance's share.
type queued struct {
	line []byte
	held *atomic.Int32 // nil: not an instance's line
}

// instanceState is what the Log keeps about one instance: the calls being
// collapsed and its lines in the queue. It is dropped by Forget and when
// nothing is pending.
type instanceState struct {
	calls  map[callKey]*pending
	queued atomic.Int32
}

type callKey struct {
	event, method, path, ua, role, accessKeyID, outcome string
	status, version                                     int
}

// pending counts the repeats of one call within its window.
type pending struct {
	end   time.Time // the window ends
	first time.Time // the first repeat, the time of the collapsed line
	count int64
	line  func(stamp string, count int64) any
}

// New starts a Log writing JSON lines to w. Close it to flush; Close does
// not close w.
func New(w io.Writer, opts Options) *Log {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Share <= 0 {
		opts.Share = max(opts.Buffer/16, 16)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{now: opts.Now, log: opts.Logger, window: opts.Window, share: int32(opts.Share),
		queue: make(chan queued, opts.Buffer), done: make(chan struct{}), stop: make(chan struct{}), inst: map[string]*instanceState{}}
	go l.run(w)
	go l.sweep()
	return l
}

// sweep writes the collapsed lines of windows that have ended.
func (l *Log) sweep() {
	t := time.NewTicker(max(l.window/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.flush(l.now(), "")
		}
	}
}

// flush writes the pending lines of windows ended by now (every window
// when now is zero), of one instance or (id "") of all.
func (l *Log) flush(now time.Time, id string) {
	type out struct {
		v  any
		st *instanceState
	}
	var lines []out
	l.aggMu.Lock()
	for iid, st := range l.inst {
		if id != "" && iid != id {
			continue
		}
		for k, p := range st.calls {
			if !now.IsZero() && now.Before(p.end) {
				continue
			}
			if p.count > 0 {
				lines = append(lines, out{p.line(p.first.UTC().Format(timeFieldLayout), p.count), st})
			}
			delete(st.calls, k)
		}
		if len(st.calls) == 0 {
			delete(l.inst, iid)
		}
	}
	l.aggMu.Unlock()
	for _, o := range lines {
		l.emitFor(o.v, o.st)
	}
}

// Forget writes what is pending for an instance and drops everything the
// Log keeps about it; the daemon calls it when the instance is terminated.
func (l *Log) Forget(instanceID string) {
	if instanceID != "" {
		l.flush(time.Time{}, instanceID)
	}
}

// Tracked is how many instances the Log keeps state for (for tests).
func (l *Log) Tracked() int {
	l.aggMu.Lock()
	defer l.aggMu.Unlock()
	return len(l.inst)
}

// run writes queued lines, flushing whenever the queue runs empty so lines
// reach the file promptly without a syscall per line under load.
func (l *Log) run(w io.Writer) {
	defer close(l.done)
	bw := bufio.NewWriter(w)
	for q := range l.queue {
		if q.held != nil {
			q.held.Add(-1)
		}
		if _, err := bw.Write(q.line); err != nil {
			l.failed(err)
			bw.Reset(w) // drop what could not be written and carry on
			continue
		}
		if len(l.queue) == 0 {
			if err := bw.Flush(); err != nil {
				l.failed(err)
				bw.Reset(w)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		l.failed(err)
	}
}

func (l *Log) failed(err error) {
	if l.err == nil {
		l.err = err
		l.log.Error("writing the audit log failed", "err", err)
	}
	l.dropped.Add(1)
}

// Dropped returns how many events were lost because the queue was full, the
// log was closed, or the writer failed.
func (l *Log) Dropped() int64 { return l.dropped.Load() }

// Close writes the pending collapsed lines, stops accepting events, writes
// out the queued ones and returns the first write error. It does not close
// the underlying writer.
func (l *Log) Close() error {
	l.mu.Lock()
	wasClosed := l.closed
	l.mu.Unlock()
	if !wasClosed {
		close(l.stop)
		l.flush(time.Time{}, "")
	}
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
	return l.err
}

// emit encodes v as one line and queues it without blocking.
func (l *Log) emit(v any) { l.emitFor(v, nil) }

// emitFor queues v within st's share of the queue (nil: no share).
func (l *Log) emitFor(v any, st *instanceState) {
	line, err := json.Marshal(v)
	if err != nil {
		l.dropped.Add(1)
		return
	}
	line = append(line, '\n')
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	q := queued{line: line}
	if st != nil {
		if st.queued.Add(1) > l.share {
			st.queued.Add(-1)
			l.dropped.Add(1)
			return
		}
		q.held = &st.queued
	}
	select {
	case l.queue <- q:
	default:
		if q.held != nil {
			q.held.Add(-1)
		}
		l.dropped.Add(1)
	}
}

// record writes a call of an instance, or counts it as a repeat of one
// already written in the current window.
func (l *Log) record(id string, k callKey, at time.Time, line func(stamp string, count int64) any) {
	var late any // a collapsed line of an ended window, written first
	l.aggMu.Lock()
	st := l.inst[id]
	if st == nil {
		st = &instanceState{calls: map[callKey]*pending{}}
		l.inst[id] = st
	}
	p := st.calls[k]
	if p != nil && at.Before(p.end) {
		if p.count == 0 {
			p.first = at
		}
		p.count++
		l.aggMu.Unlock()
		return
	}
	if p != nil && p.count > 0 {
		late = p.line(p.first.UTC().Format(timeFieldLayout), p.count)
	}
	if p != nil || len(st.calls) < maxKeysPerInstance {
		st.calls[k] = &pending{end: at.Add(l.window), line: line}
	}
	l.aggMu.Unlock()
	if late != nil {
		l.emitFor(late, st)
	}
	l.emitFor(line(at.UTC().Format(timeFieldLayout), 1), st)
}

type v1Call struct {
	Time       string `json:"time"`
	Event      string `json:"event"`
	InstanceID string `json:"instance_id"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	UserAgent  string `json:"user_agent"`
	Status     int    `json:"status"`
	Outcome    string `json:"outcome"`
	Remote     string `json:"remote"`
	Count      int64  `json:"count"`
}

type delivery struct {
	Time        string `json:"time"`
	Event       string `json:"event"`
	InstanceID  string `json:"instance_id"`
	Role        string `json:"role"` // "" for the instance identity credentials
	AccessKeyID string `json:"access_key_id"`
	IMDSVersion int    `json:"imds_version"`
	UserAgent   string `json:"user_agent"`
	Remote      string `json:"remote"`
	Count       int64  `json:"count"`
}

type change struct {
	Time        string            `json:"time"`
	Event       string            `json:"event"`
	AccessKeyID string            `json:"access_key_id"`
	Action      string            `json:"action"`
	InstanceIDs []string          `json:"instance_ids,omitempty"`
	Detail      map[string]string `json:"detail,omitempty"`
}

// Request implements dataplane.Observer. It writes a line for every
// tokenless (IMDSv1) request of a known instance, answered or rejected, and
// one for every credential delivery; other requests cost one comparison.
// A tokenless credential delivery writes both lines.
func (l *Log) Request(r *http.Request, ev *dataplane.RequestEvent) {
	if (ev.IMDSVersion != 1 || ev.InstanceID == "") && ev.Delivery == nil {
		return
	}
	ts := ev.Start
	if ts.IsZero() {
		ts = l.now()
	}
	var path, ua, remote string
	if r != nil {
		if r.URL != nil {
			path = r.URL.Path
		}
		ua, remote = r.UserAgent(), r.RemoteAddr
	}
	path, ua = truncate(path, maxPathLen), truncate(ua, maxUALen)
	if ev.IMDSVersion == 1 && ev.InstanceID != "" {
		id, method, status, outcome := ev.InstanceID, ev.Method, ev.Status, ev.Outcome.String()
		l.record(id, callKey{event: EventV1Call, method: method, path: path, ua: ua, status: status, outcome: outcome}, ts,
			func(stamp string, n int64) any {
				return v1Call{Time: stamp, Event: EventV1Call, InstanceID: id, Method: method,
					Path: path, UserAgent: ua, Status: status, Outcome: outcome, Remote: remote, Count: n}
			})
	}
	if d := ev.Delivery; d != nil {
		id, role, akid, version := ev.InstanceID, d.Role, d.AccessKeyID, ev.IMDSVersion
		l.record(id, callKey{event: EventDelivery, role: role, accessKeyID: akid, version: version, ua: ua}, ts,
			func(stamp string, n int64) any {
				return delivery{Time: stamp, Event: EventDelivery, InstanceID: id, Role: role,
					AccessKeyID: akid, IMDSVersion: version, UserAgent: ua, Remote: remote, Count: n}
			})
	}
}

// Change records a control-plane change made with accessKeyID. detail holds
// the changed parameters; values whose key names a secret, session token,
// password or private key are replaced by "[redacted]", in case a caller
// passes one (HttpTokens and the like are kept).
func (l *Log) Change(accessKeyID, action string, instanceIDs []string, detail map[string]string) {
	var d map[string]string
	if len(detail) > 0 {
		d = make(map[string]string, len(detail))
		for k, v := range detail {
			if sensitive(k) {
				v = redactedValue
			}
			d[k] = v
		}
	}
	l.emit(change{
		Time: l.now().UTC().Format(timeFieldLayout), Event: EventChange, AccessKeyID: accessKeyID,
		Action: action, InstanceIDs: instanceIDs, Detail: d,
	})
}

func sensitive(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"secret", "sessiontoken", "session_token", "password", "privatekey", "private_key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// truncate cuts s to at most n bytes (on a UTF-8 boundary) and marks it.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + TruncatedMarker
}

// File is an audit destination that can be reopened at the same path, so
// that logrotate (or `mv` and a signal) can move the file away: lines
// written after Reopen go to a new file at the path.
type File struct {
	path string // "" for standard output
	mu   sync.Mutex
	w    io.Writer
	f    *os.File
}

// Open opens an audit destination: "-" or "stdout" for standard output
// (closing it leaves stdout open), otherwise a file opened for appending
// and created with mode 0600.
func Open(path string) (*File, error) {
	switch path {
	case "":
		return nil, errors.New("open audit log: empty path")
	case "-", "stdout":
		return &File{w: os.Stdout}, nil
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, w: f, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return f, nil
}

// Write writes to the current file.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.w == nil {
		return 0, os.ErrClosed
	}
	return f.w.Write(p)
}

// Reopen opens the path again and closes the previous file. On failure
// the previous file stays in use. Standard output is never reopened.
func (f *File) Reopen() error {
	if f.path == "" {
		return nil
	}
	nf, err := openAppend(f.path)
	if err != nil {
		return err
	}
	f.mu.Lock()
	old := f.f
	f.f, f.w = nf, nf
	f.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file (standard output stays open).
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.w = nil
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}
