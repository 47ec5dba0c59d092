//go:build integration

package main

import (
	"context"
	"debug/elf"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerPrefix names the namespace, containers and images of the
// container test (not the netns tests' prefix, whose clean-up would take
// them).
const containerPrefix = "fdc"

// TestContainerImageServesTheDemoToOtherContainers builds the image from
// deploy/container under a real dockerd, runs it as a test service with
// --demo-callers, and reads the demo instance's id from another container,
// through the published port and straight at the container's address.
//
// dockerd runs in a network namespace of its own that holds
// 169.254.169.254 and has no route out, so nothing a container sends can
// leave the machine; its bridge is 198.51.100.0/24 and it touches no
// firewall rule (--iptables=false).
func TestContainerImageServesTheDemoToOtherContainers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the container test needs root to run dockerd (CI runs it as root)")
	}
	for _, tool := range []string{"ip", "nsenter", "dockerd", "docker", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the container test needs %s: %v", tool, err)
		}
	}
	busybox := staticBusybox(t)
	sfx := randomSuffix(t)
	// A short directory: dockerd's sockets live under it, and a unix
	// socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", containerPrefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	ns := containerPrefix + sfx
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	ipCmd(t, "-n", ns, "addr", "add", imdsAddr+"/32", "dev", "lo")
	requireIMDSLocal(t, ns)
	if routes := strings.TrimSpace(ipCmd(t, "-n", ns, "route", "show")); routes != "" {
		t.Fatalf("namespace %s has routes before dockerd starts:\n%s", ns, routes)
	}

	sock := "unix://" + filepath.Join(dir, "docker.sock")
	startDockerd(t, ns, dir, sock)
	docker := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("docker", append([]string{"-H", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}

	// The image, built the documented way.
	image := containerPrefix + "-frontdesk:" + sfx
	build := exec.Command("../../deploy/container/build.sh", image)
	build.Env = append(os.Environ(), "DOCKER_HOST="+sock)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/container/build.sh: %v\n%s", err, out)
	}

	// The client image: busybox and frontdesk's own guest client, static.
	rootfs := filepath.Join(dir, "client")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "cat", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	gobuild := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(rootfs, "bin", "frontdesk"), ".")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tarball := filepath.Join(dir, "client.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	client := containerPrefix + "-client:" + sfx
	docker("import", tarball, client)

	var containers []string
	t.Cleanup(func() {
		for _, c := range containers {
			_ = exec.Command("docker", "-H", sock, "rm", "-f", c).Run()
		}
	})
	server := containerPrefix + "-imds-" + sfx
	containers = append(containers, server)
	docker("run", "-d", "--name", server, "-p", "1338:1338", image,
		"serve", "--demo", "--demo-callers", "0.0.0.0/0,::/0",
		"--listen", "0.0.0.0:1338", "--api-listen", "127.0.0.1:1339", "--data-dir", "/var/lib/frontdesk")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(docker("logs", server), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("the frontdesk container was not ready within 60s:\n%s", docker("logs", server))
		}
		time.Sleep(200 * time.Millisecond)
	}
	serverAddr, err := netip.ParseAddr(docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", server))
	if err != nil || !netip.MustParsePrefix("198.51.100.0/24").Contains(serverAddr) {
		t.Fatalf("the frontdesk container's address %v (%v) is not on the 198.51.100.0/24 bridge", serverAddr, err)
	}

	for _, c := range []struct{ name, endpoint string }{
		{"published port", "http://198.51.100.1:1338"},
		{"container address", "http://" + serverAddr.String() + ":1338"},
	} {
		requireIMDSLocal(t, ns) // before any guest sends a packet
		name := containerPrefix + "-get-" + sfx
		containers = append(containers, name)
		got := docker("run", "--name", name, client, "/bin/frontdesk", "get", "--endpoint", c.endpoint, "meta-data/instance-id")
		docker("rm", name)
		if got != demoInstanceID {
			t.Errorf("through the %s (%s) another container read %q, want %s", c.name, c.endpoint, got, demoInstanceID)
		}
	}
	if t.Failed() {
		t.Logf("frontdesk container log:\n%s", docker("logs", server))
	}
}

// requireIMDSLocal fails the test unless 169.254.169.254 is an address of
// the namespace itself, so that a packet to it can never leave the machine.
func requireIMDSLocal(t *testing.T, ns string) {
	t.Helper()
	if out := ipCmd(t, "-n", ns, "addr", "show"); !strings.Contains(out, "inet "+imdsAddr+"/32 ") {
		t.Fatalf("%s is not local in namespace %s:\n%s", imdsAddr, ns, out)
	}
}

// staticBusybox finds busybox-static's binary: the client image has no
// libc for a dynamic one.
func staticBusybox(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("the container test needs busybox-static: %v", err)
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("busybox: %v", err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked; the container test needs busybox-static", p)
		}
	}
	return p
}

// startDockerd runs dockerd inside ns and stops it, by its pid, when the
// test ends.
func startDockerd(t *testing.T, ns, dir, sock string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// nsenter rather than `ip netns exec`, which remounts /sys and leaves
	// dockerd without its devices cgroup; nsenter execs dockerd in place,
	// so the pid is dockerd's.
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+ns, "dockerd",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "--storage-driver", "vfs",
		"--bip", "198.51.100.1/24", "--iptables=false", "--ip-masq=false", "--host", sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start dockerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		defer logf.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("dockerd (pid %d) did not stop within 30s; killing it", cmd.Process.Pid)
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("dockerd log (tail):\n%s", tailString(string(b), 4000))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if exec.CommandContext(ctx, "docker", "-H", sock, "info").Run() == nil {
			return
		}
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd exited: %v\n%s", err, tailString(string(b), 4000))
		case <-ctx.Done():
			t.Fatal("dockerd was not ready within 60s")
		case <-time.After(500 * time.Millisecond):
		}
	}
}
