// Package audit writes frontdesk's audit stream: one JSON object per line
// for every IMDSv1 call (how an operator finds the process still to be
// migrated to IMDSv2), every credential delivery, and every control-plane
// change with the access key id that made it.
//
// Tokens, secret access keys and session tokens are never written: events
// are built from dataplane.RequestEvent fields and a few request fields
// (path, User-Agent, remote address), never from the token header.
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

// maxTextLen bounds the bytes kept of a path or User-Agent: both come from
// the guest, which must not be able to write megabytes per request.
const maxTextLen = 1024

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
	// Now stamps events (default time.Now).
	Now func() time.Time
	// Buffer is how many lines may wait for the writer before events are
	// dropped (default DefaultBuffer).
	Buffer int
	// Logger reports write failures (default: discarded).
	Logger *slog.Logger
}

// Log is the audit stream. Its methods are safe for concurrent use.
type Log struct {
	now     func() time.Time
	log     *slog.Logger
	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
	queue   chan []byte
	done    chan struct{}
	dropped atomic.Int64
	err     error // first write error, read after done is closed
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{now: opts.Now, log: opts.Logger, queue: make(chan []byte, opts.Buffer), done: make(chan struct{})}
	go l.run(w)
	return l
}

// run writes queued lines, flushing whenever the queue runs empty so lines
// reach the file promptly without a syscall per line under load.
func (l *Log) run(w io.Writer) {
	defer close(l.done)
	bw := bufio.NewWriter(w)
	for line := range l.queue {
		if _, err := bw.Write(line); err != nil {
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

// Close stops accepting events, writes out the queued ones and returns the
// first write error. It does not close the underlying writer.
func (l *Log) Close() error {
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
func (l *Log) emit(v any) {
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
	select {
	case l.queue <- line:
	default:
		l.dropped.Add(1)
	}
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
	stamp := ts.UTC().Format(timeFieldLayout)
	var path, ua, remote string
	if r != nil {
		if r.URL != nil {
			path = r.URL.Path
		}
		ua, remote = r.UserAgent(), r.RemoteAddr
	}
	path, ua = truncate(path), truncate(ua)
	if ev.IMDSVersion == 1 && ev.InstanceID != "" {
		l.emit(v1Call{
			Time: stamp, Event: EventV1Call, InstanceID: ev.InstanceID, Method: ev.Method,
			Path: path, UserAgent: ua, Status: ev.Status, Outcome: ev.Outcome.String(), Remote: remote,
		})
	}
	if d := ev.Delivery; d != nil {
		l.emit(delivery{
			Time: stamp, Event: EventDelivery, InstanceID: ev.InstanceID, Role: d.Role,
			AccessKeyID: d.AccessKeyID, IMDSVersion: ev.IMDSVersion, UserAgent: ua, Remote: remote,
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

func truncate(s string) string {
	if len(s) <= maxTextLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxTextLen], "")
}

// Open opens an audit destination: "-" or "stdout" for standard output
// (closing it leaves stdout open), otherwise a file opened for appending
// and created with mode 0600.
func Open(path string) (io.WriteCloser, error) {
	switch path {
	case "":
		return nil, errors.New("open audit log: empty path")
	case "-", "stdout":
		return nopCloser{os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
