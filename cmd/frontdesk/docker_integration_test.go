//go:build integration

package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run a real dockerd, as a container host would, but inside a
// network namespace of their own: the namespace holds 169.254.169.254 on
// its loopback and has no route out, so no container packet to it (or to
// anything else) can leave the machine. frontdesk runs in the same
// namespace on 169.254.169.254:80 with --docker pointed at that dockerd.

// imdscSource is the guest's client, built static and put in the image:
// busybox's wget cannot PUT. Commands:
//
//	first [~]PATH...   token PUT as the very first action, then GETs (a ~ path is retried while 404, for credentials still being fetched)
//	hold  [~]PATH...   the same, then stay up
//	get TOKEN PATH     one GET with a given token
//	reuse TOKEN PATH   a GET with someone else's token, then first PATH
//	fetch URL          a plain GET (the test's view of /metrics)
const imdscSource = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const base = "http://169.254.169.254/latest/"

var c = &http.Client{Timeout: 5 * time.Second}

func put() (int, string) {
	req, _ := http.NewRequest(http.MethodPut, base+"api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "600")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(tok, path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("X-aws-ec2-metadata-token", tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.Join(strings.Fields(string(b)), " ")
}

func first(paths []string) {
	st, tok := put()
	fmt.Printf("put %d %s\n", st, tok)
	for _, p := range paths {
		retry := strings.HasPrefix(p, "~")
		p = strings.TrimPrefix(p, "~")
		st, body := get(tok, p)
		for i := 0; retry && st == 404 && i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
			st, body = get(tok, p)
		}
		fmt.Printf("get %s %d %s\n", p, st, body)
	}
}

func main() {
	switch os.Args[1] {
	case "first":
		first(os.Args[2:])
	case "hold":
		first(os.Args[2:])
		fmt.Println("holding")
		time.Sleep(24 * time.Hour)
	case "get":
		st, body := get(os.Args[2], os.Args[3])
		fmt.Printf("get %s %d %s\n", os.Args[3], st, body)
	case "reuse":
		st, body := get(os.Args[2], os.Args[3])
		fmt.Printf("old %s %d %s\n", os.Args[3], st, body)
		first(os.Args[3:])
	case "fetch":
		resp, err := c.Get(os.Args[2])
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		io.Copy(os.Stdout, resp.Body)
	}
}
`

const dockerTestImage = "fdtest:1"

// dockerEnv is one namespace with its dockerd and frontdesk.
type dockerEnv struct {
	t      *testing.T
	ns     string
	nsPath string
	dir    string
	sock   string
	bin    string // frontdesk
	imdsc  string // the guest client, also used from the namespace itself
	fdData string

	mu        sync.Mutex
	dockerd   *exec.Cmd
	dockerdCh chan struct{}
	fd        *exec.Cmd
	fdLog     *dkBuffer
	fdDone    chan struct{}
}

type dkBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *dkBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *dkBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func dkRequireTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the Docker tests need root (CI runs them as root)")
	}
	for _, tool := range []string{"ip", "nsenter", "dockerd", "docker", "aws", "busybox", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the Docker tests need %s (scripts/test.sh installs it): %v", tool, err)
		}
	}
}

func dkRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newDockerEnv builds the namespace, dockerd, the image, a user-defined
// network and frontdesk.
func newDockerEnv(t *testing.T, configYAML string) *dockerEnv {
	t.Helper()
	dkRequireTools(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	e := &dockerEnv{t: t, ns: "fdd" + suffix, dir: "/tmp/fdd-" + suffix}
	e.nsPath = "/var/run/netns/" + e.ns
	e.sock = filepath.Join(e.dir, "docker.sock")
	e.fdData = filepath.Join(e.dir, "frontdesk")
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Cleanup runs in reverse: containers, frontdesk, dockerd, namespace,
	// directory.
	t.Cleanup(e.removeDir)
	dkRun(t, "ip", "netns", "add", e.ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", e.ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", e.ns, err, out)
		}
	})
	dkRun(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
	dkRun(t, "ip", "-n", e.ns, "addr", "add", "169.254.169.254/32", "dev", "lo")
	e.checkContained()

	e.startDockerd()
	t.Cleanup(e.stopDockerd)
	t.Cleanup(e.removeContainers)
	e.buildImage()
	e.docker("network", "create", "--subnet", "203.0.113.0/24", "--gateway", "203.0.113.1", "fdnet")
	// The bridge and the network must be where the test put them, on
	// documentation ranges, and the namespace must still have no way out.
	addrs := dkRun(t, "ip", "-n", e.ns, "-4", "addr", "show")
	if !strings.Contains(addrs, "198.51.100.1/24") || !strings.Contains(addrs, "203.0.113.1/24") {
		t.Fatalf("the namespace's bridges are not on the documentation ranges:\n%s", addrs)
	}
	e.checkContained()

	e.bin = dkBuild(t, e.dir)
	cfg := filepath.Join(e.dir, "frontdesk.yaml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	e.startFrontdesk(cfg)
	t.Cleanup(e.stopFrontdesk)
	return e
}

// checkContained fails unless 169.254.169.254 is local in the namespace and
// the namespace has no default route: then nothing a container sends to it
// can leave the machine.
func (e *dockerEnv) checkContained() {
	e.t.Helper()
	addrs := dkRun(e.t, "ip", "-n", e.ns, "addr", "show")
	if !strings.Contains(addrs, "inet 169.254.169.254/32") {
		e.t.Fatalf("169.254.169.254 is not local in namespace %s:\n%s", e.ns, addrs)
	}
	for _, fam := range []string{"-4", "-6"} {
		if routes := dkRun(e.t, "ip", "-n", e.ns, fam, "route", "show", "default"); strings.TrimSpace(routes) != "" {
			e.t.Fatalf("namespace %s has a default route: %s", e.ns, routes)
		}
	}
}

func (e *dockerEnv) startDockerd() {
	e.t.Helper()
	cmd := exec.Command("nsenter", "--net="+e.nsPath, "dockerd",
		"--data-root", filepath.Join(e.dir, "data"), "--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "dockerd.pid"), "--storage-driver", "vfs",
		"--bip", "198.51.100.1/24", "--iptables=false", "--ip-masq=false", "--live-restore",
		"--host", "unix://"+e.sock)
	logf, err := os.OpenFile(filepath.Join(e.dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("dockerd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	e.mu.Lock()
	e.dockerd, e.dockerdCh = cmd, done
	e.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := exec.Command("docker", "-H", "unix://"+e.sock, "info").Run(); err == nil {
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(e.dir, "dockerd.log"))
			e.t.Fatalf("dockerd exited:\n%s", tail(string(b), 3000))
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatal("dockerd not ready within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopDockerd stops dockerd by its pid and waits for it to exit.
func (e *dockerEnv) stopDockerd() {
	e.mu.Lock()
	cmd, done := e.dockerd, e.dockerdCh
	e.dockerd = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		e.t.Errorf("dockerd (pid %d) did not stop within 30s; killing it", cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-done
	}
}

func (e *dockerEnv) removeContainers() {
	out, err := exec.Command("docker", "-H", "unix://"+e.sock, "ps", "-aq").Output()
	if err != nil {
		return
	}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"-H", "unix://" + e.sock, "rm", "-f"}, ids...)...).Run()
	}
}

// removeDir ends what dockerd left running from this directory (its
// containerd, container shims), unmounts what it mounted under it, and
// removes it.
func (e *dockerEnv) removeDir() {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(e.dir+"/")) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil && pid != os.Getpid() {
			e.t.Logf("ending leftover process %d: %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	var under []string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && (f[1] == e.dir || strings.HasPrefix(f[1], e.dir+"/")) {
			under = append(under, f[1])
		}
	}
	for i := len(under) - 1; i >= 0; i-- {
		_ = syscall.Unmount(under[i], syscall.MNT_DETACH)
	}
	if err := os.RemoveAll(e.dir); err != nil {
		e.t.Errorf("remove %s: %v", e.dir, err)
	}
}

func (e *dockerEnv) docker(args ...string) string {
	e.t.Helper()
	return strings.TrimSpace(dkRun(e.t, "docker", append([]string{"-H", "unix://" + e.sock}, args...)...))
}

func (e *dockerEnv) dockerErr(args ...string) (string, error) {
	out, err := exec.Command("docker", append([]string{"-H", "unix://" + e.sock}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// buildImage imports a rootfs of busybox-static and the static client.
func (e *dockerEnv) buildImage() {
	e.t.Helper()
	src := filepath.Join(e.dir, "imdsc-src")
	root := filepath.Join(e.dir, "rootfs")
	for _, d := range []string{src, filepath.Join(root, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(src, "go.mod"), []byte("module imdsc\n\ngo 1.22\n"), 0o644)
	_ = os.WriteFile(filepath.Join(src, "main.go"), []byte(imdscSource), 0o644)
	e.imdsc = filepath.Join(root, "imdsc")
	build := exec.Command("go", "build", "-o", e.imdsc, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		e.t.Fatalf("build the guest client: %v\n%s", err, out)
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		e.t.Fatal(err)
	}
	if !staticELF(e.t, bb) {
		e.t.Fatalf("%s is dynamically linked: install busybox-static", bb)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for _, applet := range []string{"sh", "sleep", "cat", "true"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			e.t.Fatal(err)
		}
	}
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command("docker", "-H", "unix://"+e.sock, "import", "--change", "ENV PATH=/bin", "-", dockerTestImage)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		e.t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		e.t.Fatalf("docker import: %v\n%s", err, out)
	}
	if err := tar.Wait(); err != nil {
		e.t.Fatal(err)
	}
}

// staticELF reports whether an executable needs no dynamic loader.
func staticELF(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func dkBuild(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "frontdesk-bin")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (e *dockerEnv) startFrontdesk(cfg string) {
	e.t.Helper()
	cmd := exec.Command("nsenter", "--net="+e.nsPath, e.bin, "serve",
		"--listen", "169.254.169.254:80", "--api-listen", "127.0.0.1:1339",
		"--data-dir", e.fdData, "--config", cfg, "--docker", "unix://"+e.sock, "--log-level", "info")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + e.dir}
	e.fdLog = &dkBuffer{}
	cmd.Stderr = e.fdLog
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.fd, e.fdDone = cmd, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(e.fdDone)
	}()
	select {
	case <-ready:
	case <-e.fdDone:
		e.t.Fatalf("frontdesk exited before ready:\n%s", e.fdLog.String())
	case <-time.After(30 * time.Second):
		e.t.Fatal("frontdesk not ready within 30s")
	}
}

func (e *dockerEnv) stopFrontdesk() {
	if e.fd == nil {
		return
	}
	_ = e.fd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.fdDone:
	case <-time.After(20 * time.Second):
		e.t.Error("frontdesk did not stop within 20s")
		_ = e.fd.Process.Kill()
		<-e.fdDone
	}
	if e.t.Failed() {
		e.t.Logf("frontdesk log (tail):\n%s", tail(e.fdLog.String(), 6000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// instances lists every instance through frontdesk's own CLI, run in the
// namespace (a fast client, for polling).
func (e *dockerEnv) instances() map[string]instanceView {
	e.t.Helper()
	out, err := exec.Command("nsenter", "--net="+e.nsPath, e.bin, "instances", "list", "--json",
		"--data-dir", e.fdData, "--endpoint", "http://127.0.0.1:1339").Output()
	if err != nil {
		e.t.Fatalf("instances list: %v", err)
	}
	var list []instanceView
	if err := json.Unmarshal(out, &list); err != nil {
		e.t.Fatalf("instances list: %v\n%s", err, out)
	}
	res := map[string]instanceView{}
	for _, in := range list {
		res[in.InstanceID] = in
	}
	return res
}

// awsDescribe runs `aws ec2 describe-instances` against the control plane,
// in the namespace.
func (e *dockerEnv) awsDescribe(filters ...string) []map[string]any {
	e.t.Helper()
	args := append([]string{"--net=" + e.nsPath, "aws", "ec2", "describe-instances", "--endpoint-url", "http://127.0.0.1:1339",
		"--region", "us-east-1", "--output", "json"}, filters...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + e.dir, "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(e.fdData, "admin.credentials"),
		"AWS_CONFIG_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("aws ec2 describe-instances: %v\n%s", err, out)
	}
	var resp struct {
		Reservations []struct{ Instances []map[string]any }
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		e.t.Fatalf("describe-instances: %v\n%s", err, out)
	}
	var all []map[string]any
	for _, r := range resp.Reservations {
		all = append(all, r.Instances...)
	}
	return all
}

// guestLines parses the client's output: "put STATUS TOKEN", "get PATH
// STATUS BODY", "old PATH STATUS BODY".
type guestOut struct {
	putStatus string
	token     string
	gets      map[string]string // path → "STATUS BODY"
	old       string
	raw       string
}

func parseGuest(out string) guestOut {
	g := guestOut{gets: map[string]string{}, raw: out}
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(strings.TrimSpace(line), " ", 3)
		switch {
		case len(f) >= 2 && f[0] == "put":
			g.putStatus = f[1]
			if len(f) == 3 {
				g.token = f[2]
			}
		case len(f) == 3 && f[0] == "get":
			g.gets[f[1]] = f[2]
		case len(f) == 3 && f[0] == "old":
			g.old = f[2]
		}
	}
	return g
}

// waitLogs waits until a detached container has printed want.
func (e *dockerEnv) waitLogs(cid, want string) guestOut {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := e.dockerErr("logs", cid)
		if strings.Contains(out, want) {
			return parseGuest(out)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s did not print %q: %s", cid[:12], want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func instanceIDOf(cid string) string { return "i-" + cid[:17] }

func (e *dockerEnv) waitInstance(what string, cond func(map[string]instanceView) bool) map[string]instanceView {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := e.instances()
		if cond(all) {
			return all
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; instances: %+v", what, all)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const dockerTestConfig = `
docker:
  allow:
    - roles: [app-role]
      images: ["fdtest:*"]
`

func TestDockerContainersAsInstances(t *testing.T) {
	e := newDockerEnv(t, dockerTestConfig)

	t.Run("first call is the token PUT", func(t *testing.T) {
		e.t = t
		out := e.docker("run", "--rm", "--network", "fdnet", dockerTestImage, "/imdsc", "first", "meta-data/instance-id", "meta-data/local-ipv4")
		g := parseGuest(out)
		if g.putStatus != "200" || len(g.token) != 56 {
			t.Fatalf("token PUT as the first call: %q", out)
		}
		id := g.gets["meta-data/instance-id"]
		if !strings.HasPrefix(id, "200 i-") {
			t.Fatalf("instance-id: %q", out)
		}
		if ip := g.gets["meta-data/local-ipv4"]; !strings.HasPrefix(ip, "200 203.0.113.") {
			t.Fatalf("local-ipv4: %q", out)
		}
	})

	t.Run("role by label, allow-list, two containers two instances", func(t *testing.T) {
		e.t = t
		a := e.docker("run", "-d", "--network", "fdnet", "--ip", "203.0.113.10", "--name", "web",
			"--label", "frontdesk.iam-instance-profile=app-role", "--label", "frontdesk.tags.team=blue",
			dockerTestImage, "/imdsc", "hold", "meta-data/instance-id", "meta-data/iam/security-credentials/", "~meta-data/iam/security-credentials/app-role")
		b := e.docker("run", "-d", "--network", "fdnet", "--ip", "203.0.113.11", "--name", "greedy",
			"--label", "frontdesk.iam-instance-profile=admin-role",
			dockerTestImage, "/imdsc", "hold", "meta-data/instance-id", "meta-data/iam/security-credentials/")
		ga, gb := e.waitLogs(a, "holding"), e.waitLogs(b, "holding")
		if ga.gets["meta-data/instance-id"] != "200 "+instanceIDOf(a) || gb.gets["meta-data/instance-id"] != "200 "+instanceIDOf(b) {
			t.Fatalf("instance ids:\n%s\n%s", ga.raw, gb.raw)
		}
		if ga.gets["meta-data/iam/security-credentials/"] != "200 app-role" {
			t.Fatalf("role by label: %s", ga.raw)
		}
		if c := ga.gets["meta-data/iam/security-credentials/app-role"]; !strings.HasPrefix(c, "200 {") || !strings.Contains(c, `"Code" : "Success"`) {
			t.Fatalf("role credentials: %s", ga.raw)
		}
		if !strings.HasPrefix(gb.gets["meta-data/iam/security-credentials/"], "404") {
			t.Fatalf("a role outside the allow-list was granted: %s", gb.raw)
		}
		// Both visible through the EC2 API with their container addresses.
		byID := map[string]map[string]any{}
		for _, in := range e.awsDescribe("--filters", "Name=instance-state-name,Values=running") {
			byID[in["InstanceId"].(string)] = in
		}
		for cid, ip := range map[string]string{a: "203.0.113.10", b: "203.0.113.11"} {
			in, ok := byID[instanceIDOf(cid)]
			if !ok || in["PrivateIpAddress"] != ip {
				t.Fatalf("describe-instances: %s at %s missing or wrong: %+v", instanceIDOf(cid), ip, in)
			}
		}
		tags := e.instances()[instanceIDOf(b)].Tags
		if tags["frontdesk:role-refused"] != "admin-role" || tags["Name"] != "greedy" || tags["image"] != dockerTestImage {
			t.Fatalf("tags of the refused container: %v", tags)
		}
		if e.instances()[instanceIDOf(a)].Tags["team"] != "blue" {
			t.Fatalf("label tags: %v", e.instances()[instanceIDOf(a)].Tags)
		}

		// Stop: terminated within a second of docker returning.
		e.docker("kill", b)
		stopped := time.Now()
		e.waitInstance("the killed container's instance terminated", func(all map[string]instanceView) bool {
			return all[instanceIDOf(b)].State == "terminated"
		})
		took := time.Since(stopped)
		t.Logf("kill → terminated in %s (including one CLI round trip)", took)
		if took > time.Second {
			t.Fatalf("terminated %s after the container stopped, want within 1s", took)
		}
		// Removed: the record goes too.
		e.docker("rm", b)
		e.waitInstance("the removed container forgotten", func(all map[string]instanceView) bool {
			_, ok := all[instanceIDOf(b)]
			return !ok
		})

		// Restart: the same instance id, a new launch generation: the old
		// token is refused.
		e.docker("restart", "-t", "0", a)
		g2 := e.waitLogs(a, "holding\nput")
		_ = g2
		out, _ := e.dockerErr("exec", a, "/imdsc", "get", ga.token, "meta-data/instance-id")
		if !strings.Contains(out, "get meta-data/instance-id 401") {
			t.Fatalf("the token of the previous run of a restarted container: %s", out)
		}
		out, _ = e.dockerErr("exec", a, "/imdsc", "first", "meta-data/instance-id")
		if !strings.Contains(out, "200 "+instanceIDOf(a)) {
			t.Fatalf("after restart: %s", out)
		}
		e.docker("rm", "-f", a)
	})

	t.Run("host-network containers get no identity", func(t *testing.T) {
		e.t = t
		// The namespace is the host here: its only addresses are loopback
		// and 169.254.169.254 itself, so this stays inside it too.
		e.checkContained()
		name := "hostnet-" + fmt.Sprint(time.Now().UnixNano())
		out := e.docker("run", "--name", name, "--network", "host", dockerTestImage, "/imdsc", "first", "meta-data/instance-id")
		if g := parseGuest(out); g.putStatus != "404" {
			t.Fatalf("a host-network container got an answer: %q", out)
		}
		cid := e.docker("inspect", "-f", "{{.Id}}", name)
		if _, ok := e.instances()[instanceIDOf(cid)]; ok {
			t.Fatal("a host-network container got an instance")
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(e.fdLog.String(), "container refused an identity") == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		e.docker("start", "-a", name) // a second run: no second log line
		e.docker("rm", name)
		// A container started after it: once its instance is there, the
		// source has looked at everything before it.
		marker := e.docker("run", "-d", "--network", "fdnet", dockerTestImage, "sleep", "60")
		e.waitInstance("the marker container", func(all map[string]instanceView) bool { return all[instanceIDOf(marker)].State == "running" })
		e.docker("rm", "-f", marker)
		if n := strings.Count(e.fdLog.String(), "container refused an identity"); n != 1 {
			t.Fatalf("the refusal was logged %d times, want once:\n%s", n, tail(e.fdLog.String(), 2000))
		}
	})

	t.Run("IP reuse is a new instance and the old token gets nothing", func(t *testing.T) {
		e.t = t
		a := e.docker("run", "-d", "--network", "fdnet", "--ip", "203.0.113.20", dockerTestImage,
			"/imdsc", "hold", "meta-data/instance-id", "~meta-data/identity-credentials/ec2/security-credentials/ec2-instance")
		ga := e.waitLogs(a, "holding")
		if ga.gets["meta-data/instance-id"] != "200 "+instanceIDOf(a) || !strings.HasPrefix(ga.gets["meta-data/identity-credentials/ec2/security-credentials/ec2-instance"], "200 {") {
			t.Fatalf("first container: %s", ga.raw)
		}
		e.docker("rm", "-f", a)
		out := e.docker("run", "--rm", "--network", "fdnet", "--ip", "203.0.113.20", dockerTestImage,
			"/imdsc", "reuse", ga.token, "meta-data/identity-credentials/ec2/security-credentials/ec2-instance", "meta-data/instance-id")
		g := parseGuest(out)
		if !strings.HasPrefix(g.old, "401") {
			t.Fatalf("the previous container's token on its address: %q", out)
		}
		if id := g.gets["meta-data/instance-id"]; !strings.HasPrefix(id, "200 i-") || id == "200 "+instanceIDOf(a) {
			t.Fatalf("the new container is not a new instance: %q", out)
		}
		if c := g.gets["meta-data/identity-credentials/ec2/security-credentials/ec2-instance"]; strings.Contains(c, "AccessKeyId") &&
			c == ga.gets["meta-data/identity-credentials/ec2/security-credentials/ec2-instance"] {
			t.Fatalf("the new instance got the old one's credentials")
		}
	})

	t.Run("dockerd restarted while containers change", func(t *testing.T) {
		e.t = t
		long := e.docker("run", "-d", "--network", "fdnet", "--ip", "203.0.113.30", dockerTestImage, "/imdsc", "hold", "meta-data/instance-id")
		short := e.docker("run", "-d", "--network", "fdnet", "--ip", "203.0.113.31", dockerTestImage, "sh", "-c", "sleep 4")
		gl := e.waitLogs(long, "holding")
		e.waitInstance("both running", func(all map[string]instanceView) bool {
			return all[instanceIDOf(long)].State == "running" && all[instanceIDOf(short)].State == "running"
		})
		reconciles := strings.Count(e.fdLog.String(), "docker: reconciled")
		e.stopDockerd()
		// With dockerd away the short container ends: no event can say so.
		time.Sleep(5 * time.Second)
		e.startDockerd()
		fresh := e.docker("run", "-d", "--network", "fdnet", "--ip", "203.0.113.32", dockerTestImage, "/imdsc", "hold", "meta-data/instance-id")
		e.waitInstance("reconciled after the restart", func(all map[string]instanceView) bool {
			return all[instanceIDOf(long)].State == "running" && all[instanceIDOf(short)].State != "running" &&
				all[instanceIDOf(fresh)].State == "running"
		})
		if n := strings.Count(e.fdLog.String(), "docker: reconciled"); n <= reconciles {
			t.Fatalf("no reconcile after the daemon came back (%d before, %d after)", reconciles, n)
		}
		// The container that lived through the restart kept its instance
		// and launch generation: its token still works.
		out, _ := e.dockerErr("exec", long, "/imdsc", "get", gl.token, "meta-data/instance-id")
		if !strings.Contains(out, "200 "+instanceIDOf(long)) {
			t.Fatalf("the surviving container's token: %s", out)
		}
		e.waitLogs(fresh, "holding")
		e.docker("rm", "-f", long, short, fresh)
	})

	t.Run("churn leaves no instance behind", func(t *testing.T) {
		e.t = t
		const n, workers = 200, 4
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, failures, wrong := 0, []string{}, []string{}
		jobs := make(chan int)
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for i := range jobs {
					cidFile := filepath.Join(e.dir, fmt.Sprintf("churn-%d.cid", i))
					out, err := e.dockerErr("run", "--rm", "--cidfile", cidFile, "--network", "fdnet", dockerTestImage, "/imdsc", "first", "meta-data/instance-id")
					cid, _ := os.ReadFile(cidFile)
					g := parseGuest(out)
					got := g.gets["meta-data/instance-id"]
					mu.Lock()
					switch {
					case len(cid) >= 17 && strings.HasPrefix(got, "200 ") && got != "200 "+instanceIDOf(string(cid)):
						// The one thing that must never happen, under any load.
						wrong = append(wrong, fmt.Sprintf("container %.12s read %s", cid, got))
					case err == nil && g.putStatus == "200" && got == "200 "+instanceIDOf(string(cid)):
						ok++
					case len(failures) < 5:
						failures = append(failures, fmt.Sprintf("%v: %s", err, out))
					}
					mu.Unlock()
				}
			})
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		t.Logf("%d short-lived containers in %s, %d first calls served", n, time.Since(start).Round(time.Millisecond), ok)
		metrics, _ := exec.Command("nsenter", "--net="+e.nsPath, e.imdsc, "fetch", "http://127.0.0.1:1339/metrics").Output()
		for _, line := range strings.Split(string(metrics), "\n") {
			if strings.HasPrefix(line, "frontdesk_pending_caller_wait") && (!strings.Contains(line, "_bucket") ||
				strings.Contains(line, `le="0.1"`) || strings.Contains(line, `le="0.5"`) || strings.Contains(line, `le="1"`)) {
				t.Log(line)
			}
		}
		if len(wrong) > 0 {
			t.Errorf("containers served another instance's identity: %v", wrong)
		}
		if ok != n {
			t.Fatalf("%d of %d containers got their token and instance id on the first call; failures: %v", ok, n, failures)
		}
		e.waitInstance("no instance left", func(all map[string]instanceView) bool {
			for _, in := range all {
				if in.State == "running" {
					return false
				}
			}
			return len(all) == 0
		})
	})
}
