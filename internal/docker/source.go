package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// API is the part of the Docker Engine API the source uses; *client.Client
// implements it.
type API interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

// Sink writes instances: the control plane's in-process actions
// (*controlplane.Server), so that every write is one checked transaction.
type Sink interface {
	Launch(ctx context.Context, li controlplane.LaunchInput) (*imds.Instance, error)
	Terminate(ctx context.Context, id string) error
	Forget(ctx context.Context, id string) error
	// HostInstances reads only the instances placed on one host.
	HostInstances(ctx context.Context, hostID string, keep func(*imds.Instance) bool) ([]*imds.Instance, error)
}

// Signals tells the data plane what is about to appear, so that a container
// calling before its instance is served waits instead of getting a 404
// (*dataplane.Pending).
type Signals interface {
	Expect(addrs ...netip.Addr)
	Withdraw(addrs ...netip.Addr)
	Begin() (done func())
	Revoke(instanceID string, generation uint64)
}

// Options are the optional knobs of a Source.
type Options struct {
	Logger *slog.Logger
	// Policy is the operator's allow-list and defaults; nil is the zero
	// Policy (no roles).
	Policy *config.Docker
	// HostID places the instances (fleet mode).
	HostID string
	// Signals, when set, is told about starts and reconciles.
	Signals Signals
	// OnReconcile is called after every full reconcile with how many
	// containers have an instance, for metrics and tests.
	OnReconcile func(instances int)
	// OnEvent is called for every Docker event handled ("start", "die",
	// ...), for metrics.
	OnEvent func(action string)
	// MaxBackoff bounds the wait between reconnection attempts (5 s).
	MaxBackoff time.Duration
}

// Source follows a Docker daemon and keeps one instance per running
// container with an address.
type Source struct {
	api  API
	sink Sink
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	warned   map[string]string   // container id → last warning logged (log once)
	flights  map[string]func()   // container id → Signals flight of a start in progress
	launched map[string]launched // live instances, as last written or read
}

// launched is what the source knows of a live instance it wrote.
type launched struct {
	fingerprint string
	generation  uint64
}

// New returns a source; Run starts it.
func New(api API, sink Sink, opts Options) *Source {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Policy == nil {
		opts.Policy = &config.Docker{}
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	return &Source{api: api, sink: sink, opts: opts, log: opts.Logger,
		warned: map[string]string{}, flights: map[string]func(){}, launched: map[string]launched{}}
}

// TLSFiles are the client certificate files of a tcp:// daemon.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// Dial returns a Docker client for host (unix:///var/run/docker.sock,
// tcp://HOST:2376), negotiating the API version with the daemon.
func Dial(host string, tls TLSFiles) (*client.Client, error) {
	opts := []client.Opt{client.WithHost(host), client.WithAPIVersionNegotiation()}
	if tls.CAFile != "" || tls.CertFile != "" || tls.KeyFile != "" {
		if !strings.HasPrefix(host, "tcp://") {
			return nil, fmt.Errorf("docker: TLS files need a tcp:// host, not %q", host)
		}
		opts = append(opts, client.WithTLSClientConfig(tls.CAFile, tls.CertFile, tls.KeyFile))
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	return c, nil
}

// Run follows the daemon until ctx ends: it subscribes to events, reconciles
// against a full listing, then applies events as they come. When the
// stream breaks it reconnects (with backoff) and reconciles again, so that
// events missed meanwhile leave nothing stale or missing.
func (s *Source) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.session(ctx, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("docker: lost the daemon; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.opts.MaxBackoff)
	}
	return nil
}

// session is one subscription: reconcile, then events until the stream
// fails. connected is called once the reconcile succeeded.
func (s *Source) session(ctx context.Context, connected func()) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
	)
	// Subscribe first, then list: an event that happens during the listing
	// is queued and applied after it (applying it twice is harmless).
	msgs, errs := s.api.Events(sctx, events.ListOptions{Filters: f})
	// The reader keeps up with the stream whatever the store's speed: it
	// revokes ended workloads and opens start flights at once, so that an
	// address handed from a dead container to a new one is never served
	// as the old instance while the writes catch up.
	queue := make(chan events.Message, eventQueue)
	readErr := make(chan error, 1)
	go func() {
		defer close(queue)
		for {
			select {
			case <-sctx.Done():
				return
			case err := <-errs:
				if err == nil {
					err = errors.New("event stream closed")
				}
				readErr <- err
				return
			case m, ok := <-msgs:
				if !ok {
					readErr <- errors.New("event stream closed")
					return
				}
				s.early(m)
				select {
				case queue <- m:
				case <-sctx.Done():
					return
				}
			}
		}
	}()
	if err := s.Reconcile(sctx); err != nil {
		return err
	}
	connected()
	for m := range queue {
		batch := []events.Message{m}
	drain:
		for len(batch) < maxBatch {
			select {
			case next, ok := <-queue:
				if !ok {
					break drain
				}
				batch = append(batch, next)
			default:
				break drain
			}
		}
		s.handleBatch(sctx, batch)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return <-readErr
}

// eventQueue bounds the events read ahead of the writes; maxBatch the
// events applied together.
const (
	eventQueue = 4096
	maxBatch   = 512
)

// early is what an event changes before it is applied: a container that
// died is revoked in the data plane, and a container joining a network
// (which it does just before its process starts) opens a flight.
func (s *Source) early(m events.Message) {
	switch {
	case m.Type == events.ContainerEventType && (m.Action == events.ActionDie || m.Action == events.ActionDestroy):
		id, ok := InstanceID(m.Actor.ID)
		if !ok || s.opts.Signals == nil {
			return
		}
		s.mu.Lock()
		l, live := s.launched[id]
		s.mu.Unlock()
		if live {
			s.opts.Signals.Revoke(id, l.generation)
		}
	case m.Type == events.NetworkEventType && m.Action == events.ActionConnect:
		s.beginFlight(m.Actor.Attributes["container"])
	}
}

// handleBatch applies the events read so far. Every container is looked at
// once, as it is now (level-triggered), however many of its events are
// queued, so a late or repeated event does no harm and a backlog costs one
// look per container rather than one per event. Containers that are
// starting go first: their first calls are waiting.
func (s *Source) handleBatch(ctx context.Context, batch []events.Message) {
	type work struct {
		cid                string
		destroyed, started bool
	}
	var order []*work
	by := map[string]*work{}
	for _, m := range batch {
		cid, ok := containerOf(m)
		if !ok {
			continue
		}
		if s.opts.OnEvent != nil {
			s.opts.OnEvent(string(m.Action))
		}
		w := by[cid]
		if w == nil {
			w = &work{cid: cid}
			by[cid] = w
			order = append(order, w)
		}
		switch m.Action {
		case events.ActionDestroy:
			w.destroyed = true
		case events.ActionStart, events.ActionRestart, events.ActionConnect, events.ActionUnPause:
			w.started = true
		}
	}
	slices.SortStableFunc(order, func(a, b *work) int {
		ua, ub := a.started && !a.destroyed, b.started && !b.destroyed
		switch {
		case ua && !ub:
			return -1
		case ub && !ua:
			return 1
		}
		return 0
	})
	for _, w := range order {
		s.sync(ctx, w.cid, w.destroyed)
	}
}

// containerOf returns the container an event is about, if it is one the
// source follows.
func containerOf(m events.Message) (string, bool) {
	var cid string
	switch m.Type {
	case events.ContainerEventType:
		switch m.Action {
		case events.ActionStart, events.ActionRestart, events.ActionDie, events.ActionDestroy, events.ActionUnPause:
		default:
			return "", false
		}
		cid = m.Actor.ID
	case events.NetworkEventType:
		if m.Action != events.ActionConnect && m.Action != events.ActionDisconnect {
			return "", false
		}
		cid = m.Actor.Attributes["container"]
	default:
		return "", false
	}
	return cid, cid != ""
}

func (s *Source) beginFlight(cid string) {
	if s.opts.Signals == nil || cid == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.flights[cid]; !ok {
		s.flights[cid] = s.opts.Signals.Begin()
	}
}

func (s *Source) endFlight(cid string) {
	s.mu.Lock()
	done := s.flights[cid]
	delete(s.flights, cid)
	s.mu.Unlock()
	if done != nil {
		done()
	}
}

// sync makes one container's instance match the container.
func (s *Source) sync(ctx context.Context, cid string, destroyed bool) {
	id, ok := InstanceID(cid)
	if !ok {
		return
	}
	var c container.InspectResponse
	var err error
	if !destroyed {
		c, err = s.api.ContainerInspect(ctx, cid)
	}
	if destroyed || cerrdefs.IsNotFound(err) {
		s.endFlight(cid)
		s.retire(ctx, id, true)
		s.mu.Lock()
		delete(s.warned, cid)
		s.mu.Unlock()
		return
	}
	if err != nil {
		s.log.Warn("docker: inspecting a container failed", "container", short(cid), "err", err)
		return
	}
	pl := planFor(c, s.opts.Policy, s.opts.HostID)
	if pl.launch == nil && pl.skip == "not running" && c.State != nil && (c.State.Status == container.StateCreated || c.State.Restarting) {
		// Connected to its networks but not started yet: the flight stays
		// open until its start event.
		return
	}
	s.apply(ctx, pl)
	s.endFlight(cid)
}

// apply writes a plan: launch (or relaunch) its instance, or retire it.
func (s *Source) apply(ctx context.Context, pl plan) bool {
	s.report(pl)
	if pl.launch == nil {
		s.retire(ctx, pl.instanceID, false)
		return false
	}
	s.mu.Lock()
	l, ok := s.launched[pl.instanceID]
	same := ok && l.fingerprint == pl.fingerprint
	s.mu.Unlock()
	if same {
		return true
	}
	if s.opts.Signals != nil {
		s.opts.Signals.Expect(pl.addrs...)
	}
	li := *pl.launch
	li.Relaunch = true
	in, err := s.sink.Launch(ctx, li)
	if err != nil && strings.Contains(err.Error(), "InUse") {
		// An address still held by an instance whose container we have
		// not seen go (events missed): retire the stale holders, then try
		// once more.
		s.retireStaleHolders(ctx, pl)
		in, err = s.sink.Launch(ctx, li)
	}
	if err != nil {
		if s.opts.Signals != nil {
			s.opts.Signals.Withdraw(pl.addrs...)
		}
		s.warnOnce(pl.containerID, "docker: the container's instance could not be launched", "err", err.Error())
		return false
	}
	s.mu.Lock()
	s.launched[pl.instanceID] = launched{fingerprint: pl.fingerprint, generation: in.Generation}
	s.mu.Unlock()
	s.log.Info("docker: container launched as an instance", "container", short(pl.containerID), "instance", in.InstanceID,
		"addresses", strings.Join(in.Addresses(), ","), "role", li.Profile)
	return true
}

// retire terminates a container's instance, and with forget deletes its
// record (the container is gone for good).
func (s *Source) retire(ctx context.Context, id string, forget bool) {
	s.mu.Lock()
	_, known := s.launched[id]
	delete(s.launched, id)
	s.mu.Unlock()
	if !known && !forget {
		return // nothing live to end: no write
	}
	err := s.sink.Terminate(ctx, id)
	switch {
	case err == nil:
		if known {
			s.log.Info("docker: container stopped; instance terminated", "instance", id)
		}
	case strings.Contains(err.Error(), "NotFound"):
		return
	default:
		s.log.Warn("docker: terminating an instance failed", "instance", id, "err", err)
		return
	}
	if forget {
		if err := s.sink.Forget(ctx, id); err != nil {
			s.log.Warn("docker: forgetting an instance failed", "instance", id, "err", err)
		}
	}
}

// retireStaleHolders terminates the Docker instances that hold one of the
// plan's addresses but whose containers are no longer running.
func (s *Source) retireStaleHolders(ctx context.Context, pl plan) {
	want := map[string]bool{}
	for _, a := range pl.addrs {
		want[a.String()] = true
	}
	ins, err := s.sink.HostInstances(ctx, s.opts.HostID, func(in *imds.Instance) bool {
		if !in.Live() || in.InstanceID == pl.instanceID {
			return false
		}
		if _, ok := in.TagValue(TagContainerID); !ok {
			return false
		}
		for _, a := range in.Addresses() {
			if want[a] {
				return true
			}
		}
		return false
	})
	if err != nil {
		return
	}
	for _, in := range ins {
		cid, _ := in.TagValue(TagContainerID)
		c, err := s.api.ContainerInspect(ctx, cid)
		if err == nil && c.ContainerJSONBase != nil && c.State != nil && c.State.Running {
			continue // really running: a genuine conflict
		}
		s.mu.Lock()
		s.launched[in.InstanceID] = launched{generation: in.Generation} // known live: retire writes
		s.mu.Unlock()
		s.retire(ctx, in.InstanceID, cerrdefs.IsNotFound(err))
	}
}

// Reconcile lists every container and makes the store match: an instance
// for each running container that should have one, none for the rest, and
// no record left of containers that no longer exist.
func (s *Source) Reconcile(ctx context.Context) error {
	if s.opts.Signals != nil {
		done := s.opts.Signals.Begin()
		defer done()
	}
	list, err := s.api.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return fmt.Errorf("docker: list containers: %w", err)
	}
	exists := map[string]bool{}
	var plans []plan
	for _, sum := range list {
		id, ok := InstanceID(sum.ID)
		if !ok {
			continue
		}
		exists[id] = true
		if sum.State != container.StateRunning {
			plans = append(plans, plan{containerID: sum.ID, instanceID: id, skip: "not running"})
			continue
		}
		c, err := s.api.ContainerInspect(ctx, sum.ID)
		if cerrdefs.IsNotFound(err) {
			delete(exists, id)
			continue
		}
		if err != nil {
			return fmt.Errorf("docker: inspect %s: %w", short(sum.ID), err)
		}
		pl := planFor(c, s.opts.Policy, s.opts.HostID)
		if pl.launch != nil && s.opts.Signals != nil {
			s.opts.Signals.Expect(pl.addrs...)
		}
		plans = append(plans, pl)
	}
	// Only this host's containers: in fleet mode other nodes follow
	// their own daemons.
	stored, err := s.sink.HostInstances(ctx, s.opts.HostID, func(in *imds.Instance) bool {
		_, ok := in.TagValue(TagContainerID)
		return ok
	})
	if err != nil {
		return fmt.Errorf("docker: read instances: %w", err)
	}
	want := map[string]string{}
	for _, pl := range plans {
		if pl.launch != nil {
			want[pl.instanceID] = pl.fingerprint
		}
	}
	// What the store holds is the truth: forget what we remember.
	s.mu.Lock()
	clear(s.launched)
	for _, in := range stored {
		if fp, _ := in.TagValue(TagLaunch); in.Live() && fp != "" {
			s.launched[in.InstanceID] = launched{fingerprint: fp, generation: in.Generation}
		}
	}
	s.mu.Unlock()
	// Retire first, so that addresses moved from a gone container to a new
	// one are free when the new one is launched.
	for _, in := range stored {
		fp, _ := in.TagValue(TagLaunch)
		switch {
		case !exists[in.InstanceID]:
			s.retire(ctx, in.InstanceID, true)
		case in.Live() && want[in.InstanceID] != fp:
			s.retire(ctx, in.InstanceID, false)
		}
	}
	n := 0
	for _, pl := range plans {
		if s.apply(ctx, pl) {
			n++
		}
		s.endFlight(pl.containerID)
	}
	s.mu.Lock()
	for cid := range s.warned {
		if id, _ := InstanceID(cid); !exists[id] {
			delete(s.warned, cid)
		}
	}
	s.mu.Unlock()
	s.log.Info("docker: reconciled", "containers", len(list), "instances", n)
	if s.opts.OnReconcile != nil {
		s.opts.OnReconcile(n)
	}
	return nil
}

// report logs why a container has no instance, or which of its labels were
// ignored: once per container and message, not on every event.
func (s *Source) report(pl plan) {
	switch {
	case pl.hostNet:
		s.warnOnce(pl.containerID, "docker: container refused an identity", "reason", pl.skip)
	case pl.launch == nil && pl.skip != "not running" && pl.skip != "":
		s.infoOnce(pl.containerID, "docker: container has no instance", "reason", pl.skip)
	}
	for _, w := range pl.warnings {
		s.warnOnce(pl.containerID, "docker: container label ignored", "reason", w)
	}
}

func (s *Source) once(cid, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.Contains(s.warned[cid], "\x00"+key+"\x00") {
		return false
	}
	s.warned[cid] += "\x00" + key + "\x00"
	return true
}

func (s *Source) warnOnce(cid, msg string, kv ...string) {
	if s.once(cid, msg+strings.Join(kv, "=")) {
		s.log.Warn(msg, append([]any{"container", short(cid)}, anys(kv)...)...)
	}
}

func (s *Source) infoOnce(cid, msg string, kv ...string) {
	if s.once(cid, msg+strings.Join(kv, "=")) {
		s.log.Info(msg, append([]any{"container", short(cid)}, anys(kv)...)...)
	}
}

func anys(kv []string) []any {
	out := make([]any, len(kv))
	for i, v := range kv {
		out[i] = v
	}
	return out
}

func short(cid string) string {
	if len(cid) > 12 {
		return cid[:12]
	}
	return cid
}
