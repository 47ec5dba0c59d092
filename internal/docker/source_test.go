package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"

	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

// fakeDocker is an in-memory daemon: containers, and an event stream the
// test feeds and can break.
type fakeDocker struct {
	mu         sync.Mutex
	containers map[string]container.InspectResponse
	streams    []chan events.Message
	errs       []chan error
	subscribed chan struct{}
}

func newFakeDocker() *fakeDocker {
	return &fakeDocker{containers: map[string]container.InspectResponse{}, subscribed: make(chan struct{}, 16)}
}

func cid(n int) string { return fmt.Sprintf("%02x", n) + strings.Repeat("ab", 31) }

func (d *fakeDocker) run(id, name, image string, labels map[string]string, started string, addrs ...string) {
	nets := map[string]*network.EndpointSettings{}
	for i, a := range addrs {
		ep := &network.EndpointSettings{}
		if strings.Contains(a, ":") {
			ep.GlobalIPv6Address = a
		} else {
			ep.IPAddress = a
		}
		nets[fmt.Sprintf("net%d", i)] = ep
	}
	d.put(container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: id, Name: "/" + name, Image: "sha256:0000",
			State:      &container.State{Status: container.StateRunning, Running: true, StartedAt: started},
			HostConfig: &container.HostConfig{NetworkMode: "bridge"},
		},
		Config:          &container.Config{Image: image, Labels: labels},
		NetworkSettings: &container.NetworkSettings{Networks: nets},
	})
}

func (d *fakeDocker) put(c container.InspectResponse) {
	d.mu.Lock()
	d.containers[c.ID] = c
	d.mu.Unlock()
}

func (d *fakeDocker) stop(id string) {
	d.mu.Lock()
	c := d.containers[id]
	st := *c.State
	st.Running, st.Status = false, container.StateExited
	c.State = &st
	d.containers[id] = c
	d.mu.Unlock()
}

func (d *fakeDocker) remove(id string) {
	d.mu.Lock()
	delete(d.containers, id)
	d.mu.Unlock()
}

func (d *fakeDocker) ContainerList(_ context.Context, o container.ListOptions) ([]container.Summary, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []container.Summary
	for id, c := range d.containers {
		if !o.All && !c.State.Running {
			continue
		}
		out = append(out, container.Summary{ID: id, State: c.State.Status})
	}
	return out, nil
}

func (d *fakeDocker) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.containers[id]
	if !ok {
		return container.InspectResponse{}, fmt.Errorf("no such container %s: %w", id, cerrdefs.ErrNotFound)
	}
	return c, nil
}

func (d *fakeDocker) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	msgs, errs := make(chan events.Message, 64), make(chan error, 1)
	d.mu.Lock()
	d.streams = append(d.streams, msgs)
	d.errs = append(d.errs, errs)
	d.mu.Unlock()
	d.subscribed <- struct{}{}
	return msgs, errs
}

func (d *fakeDocker) emit(typ events.Type, action events.Action, id string, attrs map[string]string) {
	d.mu.Lock()
	s := d.streams[len(d.streams)-1]
	d.mu.Unlock()
	s <- events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs}}
}

// breakStream ends the current subscription as a daemon restart would.
func (d *fakeDocker) breakStream() {
	d.mu.Lock()
	e := d.errs[len(d.errs)-1]
	d.mu.Unlock()
	e <- errors.New("unexpected EOF")
}

type recSignals struct {
	mu       sync.Mutex
	expected []netip.Addr
	open     int
	revoked  map[string]uint64
}

func (r *recSignals) Revoke(id string, gen uint64) {
	r.mu.Lock()
	if r.revoked == nil {
		r.revoked = map[string]uint64{}
	}
	r.revoked[id] = gen
	r.mu.Unlock()
}

func (r *recSignals) Expect(a ...netip.Addr) {
	r.mu.Lock()
	r.expected = append(r.expected, a...)
	r.mu.Unlock()
}
func (r *recSignals) Withdraw(...netip.Addr) {}
func (r *recSignals) Begin() func() {
	r.mu.Lock()
	r.open++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.open--
			r.mu.Unlock()
		})
	}
}

type harness struct {
	t      *testing.T
	d      *fakeDocker
	cp     *controlplane.Server
	src    *Source
	sig    *recSignals
	recons chan int
}

func newHarness(t *testing.T, policy *config.Docker) *harness {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, d: newFakeDocker(), cp: controlplane.New(st, controlplane.AdminCredentials{}, controlplane.Options{}), sig: &recSignals{}, recons: make(chan int, 16)}
	h.src = New(h.d, h.cp, Options{Policy: policy, Signals: h.sig, OnReconcile: func(n int) { h.recons <- n }, MaxBackoff: 10 * time.Millisecond})
	return h
}

// start runs the source and waits for its first reconcile.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.src.Run(ctx); close(done) }()
	h.t.Cleanup(func() { cancel(); <-done })
	h.waitReconcile()
}

func (h *harness) waitReconcile() int {
	select {
	case n := <-h.recons:
		return n
	case <-time.After(5 * time.Second):
		h.t.Fatal("no reconcile")
		return 0
	}
}

func (h *harness) instance(id string) *imds.Instance {
	ins, err := h.cp.Instances(context.Background(), func(in *imds.Instance) bool { return in.InstanceID == id })
	if err != nil {
		h.t.Fatal(err)
	}
	if len(ins) == 0 {
		return nil
	}
	return ins[0]
}

// eventually polls cond (the source applies events on its own goroutine).
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func iid(c string) string { id, _ := InstanceID(c); return id }

func TestSourceFollowsContainers(t *testing.T) {
	h := newHarness(t, &config.Docker{Allow: []config.DockerRule{{Roles: []string{"app-role"}, Images: []string{"app"}}}})
	a, b := cid(1), cid(2)
	h.d.run(a, "web", "app", map[string]string{LabelProfile: "app-role", "frontdesk.tags.team": "blue"}, "t1", "203.0.113.10", "2001:db8::10")
	h.start()

	in := h.instance(iid(a))
	if in == nil || in.State != imds.StateRunning {
		t.Fatalf("container a: %+v", in)
	}
	if got := strings.Join(in.Addresses(), ","); got != "203.0.113.10,2001:db8::10" {
		t.Fatalf("addresses %s", got)
	}
	if in.IAMInstanceProfile == nil || in.IAMInstanceProfile.Role != "app-role" {
		t.Fatalf("profile %+v", in.IAMInstanceProfile)
	}
	if v, _ := in.TagValue("team"); v != "blue" {
		t.Fatalf("tags %+v", in.Tags)
	}
	if v, _ := in.TagValue(TagName); v != "web" {
		t.Fatalf("Name tag %+v", in.Tags)
	}
	if in.MetadataOptions.HttpPutResponseHopLimit != config.DefaultDockerHopLimit || in.MetadataOptions.HttpProtocolIPv6 != imds.Enabled {
		t.Fatalf("options %+v", in.MetadataOptions)
	}
	h.sig.mu.Lock()
	exp := map[netip.Addr]bool{}
	for _, a := range h.sig.expected {
		exp[a] = true
	}
	h.sig.mu.Unlock()
	if len(exp) != 2 || !exp[netip.MustParseAddr("2001:db8::10")] {
		t.Fatalf("addresses expected before the launch: %v", exp)
	}

	// A second container is a second instance, from its events.
	h.d.emit(events.NetworkEventType, events.ActionConnect, "netid", map[string]string{"container": b})
	h.d.run(b, "worker", "other", nil, "t1", "203.0.113.11")
	h.d.emit(events.ContainerEventType, events.ActionStart, b, nil)
	h.eventually("b launched", func() bool { in := h.instance(iid(b)); return in != nil && in.Live() })
	h.eventually("flights closed", func() bool { h.sig.mu.Lock(); defer h.sig.mu.Unlock(); return h.sig.open == 0 })

	// Restart: a new launch generation on the same instance id.
	gen := h.instance(iid(a)).Generation
	h.d.stop(a)
	h.d.emit(events.ContainerEventType, events.ActionDie, a, nil)
	h.eventually("a terminated", func() bool { return h.instance(iid(a)).State == imds.StateTerminated })
	h.sig.mu.Lock()
	rev, ok := h.sig.revoked[iid(a)]
	h.sig.mu.Unlock()
	if !ok || rev != gen {
		t.Fatalf("the died container's generation %d was not revoked in the data plane (%v)", gen, h.sig.revoked)
	}
	h.d.run(a, "web", "app", map[string]string{LabelProfile: "app-role"}, "t2", "203.0.113.10")
	h.d.emit(events.ContainerEventType, events.ActionStart, a, nil)
	h.eventually("a relaunched", func() bool { in := h.instance(iid(a)); return in.Live() && in.Generation != gen })

	// Removed: the record goes.
	h.d.stop(b)
	h.d.remove(b)
	h.d.emit(events.ContainerEventType, events.ActionDestroy, b, nil)
	h.eventually("b forgotten", func() bool { return h.instance(iid(b)) == nil })
}

func TestSourceReconcilesAfterReconnect(t *testing.T) {
	h := newHarness(t, nil)
	a, b, c := cid(1), cid(2), cid(3)
	h.d.run(a, "a", "img", nil, "t1", "198.51.100.2")
	h.d.run(b, "b", "img", nil, "t1", "198.51.100.3")
	h.start()
	genA := h.instance(iid(a)).Generation
	genB := h.instance(iid(b)).Generation

	// While the stream is down: b is removed, c takes b's address, a keeps
	// running untouched. No event says so.
	h.d.stop(b)
	h.d.remove(b)
	h.d.run(c, "c", "img", nil, "t1", "198.51.100.3")
	h.d.breakStream()
	if n := h.waitReconcile(); n != 2 {
		t.Fatalf("reconcile found %d instances, want 2", n)
	}
	if in := h.instance(iid(a)); in == nil || !in.Live() || in.Generation != genA {
		t.Fatalf("a changed across the reconnect: %+v (generation %d)", in, genA)
	}
	if in := h.instance(iid(b)); in != nil {
		t.Fatalf("b left behind: %+v", in)
	}
	in := h.instance(iid(c))
	if in == nil || !in.Live() || in.Addresses()[0] != "198.51.100.3" || in.Generation == genB {
		t.Fatalf("c: %+v", in)
	}
}

func TestSourceIPReuseWithMissedEvents(t *testing.T) {
	h := newHarness(t, nil)
	a, b := cid(1), cid(2)
	h.d.run(a, "old", "img", nil, "t1", "203.0.113.50")
	h.start()
	// a is gone without a word; b starts on its address.
	h.d.remove(a)
	h.d.run(b, "new", "img", nil, "t1", "203.0.113.50")
	h.d.emit(events.ContainerEventType, events.ActionStart, b, nil)
	h.eventually("b launched on a's address", func() bool { in := h.instance(iid(b)); return in != nil && in.Live() })
	if in := h.instance(iid(a)); in != nil && in.Live() {
		t.Fatal("the old container's instance is still live")
	}
}

func TestSourceRefusals(t *testing.T) {
	h := newHarness(t, &config.Docker{Allow: []config.DockerRule{{Roles: []string{"ci-*"}, Labels: map[string]string{"ci": "true"}}}})
	host, off, norole, none := cid(1), cid(2), cid(3), cid(4)
	h.d.run(host, "host", "img", nil, "t1")
	c := h.d.containers[host]
	c.HostConfig.NetworkMode = "host"
	h.d.put(c)
	h.d.run(off, "off", "img", map[string]string{LabelInstance: "false"}, "t1", "198.51.100.20")
	h.d.run(norole, "norole", "img", map[string]string{LabelProfile: "admin-role", "ci": "true"}, "t1", "198.51.100.21")
	h.d.run(none, "none", "img", nil, "t1") // --network none
	h.start()
	for _, id := range []string{host, off, none} {
		if in := h.instance(iid(id)); in != nil {
			t.Errorf("container %s got an instance", id[:4])
		}
	}
	in := h.instance(iid(norole))
	if in == nil || in.IAMInstanceProfile != nil {
		t.Fatalf("refused role: %+v", in)
	}
	if v, _ := in.TagValue(TagRoleRefused); v != "admin-role" {
		t.Fatalf("refusal tag: %+v", in.Tags)
	}
}

func TestPlanLabels(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte("#cloud-config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	p := &config.Docker{UserDataDir: dir, HTTPTokens: "optional", HopLimit: 2}
	mk := func(labels map[string]string) plan {
		d := newFakeDocker()
		d.run(cid(9), "x", "img", labels, "t1", "203.0.113.9")
		return planFor(d.containers[cid(9)], p, "host-a")
	}
	pl := mk(map[string]string{LabelUserDataFile: "web.yaml", LabelHopLimit: "3", LabelHTTPTokens: "required"})
	if string(pl.launch.UserData) != "#cloud-config\n" || *pl.launch.Options.HttpPutResponseHopLimit != 3 ||
		*pl.launch.Options.HttpTokens != "required" || pl.launch.HostID != "host-a" || len(pl.warnings) != 0 {
		t.Fatalf("plan %+v %v", pl.launch, pl.warnings)
	}
	pl = mk(nil)
	if *pl.launch.Options.HttpPutResponseHopLimit != 2 || *pl.launch.Options.HttpTokens != "optional" {
		t.Fatalf("policy defaults not used: %+v", pl.launch.Options)
	}
	for _, bad := range []string{"../secret", outside, "link"} {
		pl = mk(map[string]string{LabelUserDataFile: bad})
		if pl.launch.UserData != nil || len(pl.warnings) != 1 {
			t.Errorf("user-data-file %q: data %q warnings %v", bad, pl.launch.UserData, pl.warnings)
		}
	}
	pl = mk(map[string]string{LabelHopLimit: "0", LabelHTTPTokens: "maybe", "frontdesk.tags.frontdesk:launch": "x"})
	if len(pl.warnings) != 3 {
		t.Fatalf("warnings %v", pl.warnings)
	}
	// A restart changes the fingerprint; the same container does not.
	a, b := mk(nil), mk(nil)
	d := newFakeDocker()
	d.run(cid(9), "x", "img", nil, "t2", "203.0.113.9")
	c := planFor(d.containers[cid(9)], p, "host-a")
	if a.fingerprint != b.fingerprint || a.fingerprint == c.fingerprint {
		t.Fatalf("fingerprints %s %s %s", a.fingerprint, b.fingerprint, c.fingerprint)
	}
}

func TestSourceLeavesOtherHostsAlone(t *testing.T) {
	h := newHarness(t, nil)
	h.src.opts.HostID = "me"
	other := cid(7)
	if _, err := h.cp.Launch(context.Background(), controlplane.LaunchInput{InstanceID: iid(other), HostID: "them",
		Interfaces: []controlplane.LaunchInterface{{IPv4: []netip.Addr{netip.MustParseAddr("192.0.2.7")}}},
		Tags:       []imds.Tag{{Key: TagContainerID, Value: other}, {Key: TagLaunch, Value: "x"}}}); err != nil {
		t.Fatal(err)
	}
	mine := cid(8)
	h.d.run(mine, "mine", "img", nil, "t1", "192.0.2.8")
	h.start()
	if in := h.instance(iid(other)); in == nil || !in.Live() {
		t.Fatalf("another host's container instance was retired: %+v", in)
	}
	if in := h.instance(iid(mine)); in == nil || in.Placement.HostID != "me" {
		t.Fatalf("this host's container: %+v", in)
	}
}
