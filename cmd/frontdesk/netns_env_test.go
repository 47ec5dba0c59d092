//go:build integration

package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every link and namespace the netns tests create starts with this prefix,
// so a run can find what a killed earlier run left behind.
const netnsPrefix = "fdn"

// netnsLockPath serialises the netns tests of concurrent `go test` runs on
// this machine: they all need 169.254.169.254:80 and the same routes in the
// host namespace, which only one run at a time can own.
const netnsLockPath = "/tmp/frontdesk-netns-test.lock"

// requireNetnsTools fails (never skips: CI runs as root) unless the test can
// build namespaces and run the guest-side clients.
func requireNetnsTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("network-namespace tests need root (CI runs them as root)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("network-namespace tests need %s: %v", tool, err)
		}
	}
}

// lockNetns takes the machine-wide netns test lock until the test ends.
func lockNetns(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(netnsLockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("netns lock: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("netns lock %s: %v", netnsLockPath, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// randomSuffix keeps the names of concurrent or leftover runs apart.
func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ipCmd runs iproute2 and fails the test on error.
func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cleanupIP runs iproute2 at cleanup time: failures are reported, not fatal,
// so the remaining cleanups still run.
func cleanupIP(t *testing.T, args ...string) {
	t.Helper()
	t.Cleanup(func() {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
}

// ourLinks lists the host links whose names carry the netns prefix.
func ourLinks(t *testing.T) []string {
	t.Helper()
	var names []string
	sc := bufio.NewScanner(strings.NewReader(ipCmd(t, "-o", "link", "show")))
	for sc.Scan() {
		// "12: fdnb1a2b3c: <BROADCAST,...>" or "13: fdnh1a2b3c@if2: ..."
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, netnsPrefix) {
			names = append(names, name)
		}
	}
	return names
}

// ourNamespaces lists the namespaces whose names carry the netns prefix.
func ourNamespaces(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(ipCmd(t, "netns", "list"), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], netnsPrefix+"-") {
			names = append(names, f[0])
		}
	}
	return names
}

// removeLeftovers deletes what a killed earlier run left (its cleanups never
// ran). Holding the lock means no live run owns these names.
func removeLeftovers(t *testing.T) {
	t.Helper()
	for _, ns := range ourNamespaces(t) {
		t.Logf("removing leftover namespace %s", ns)
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	for _, l := range ourLinks(t) {
		t.Logf("removing leftover link %s", l)
		_ = exec.Command("ip", "link", "del", l).Run()
	}
}

// hasAddress reports whether addr (e.g. "169.254.169.254") is on any host
// interface.
func hasAddress(t *testing.T, addr string) bool {
	t.Helper()
	for _, f := range strings.Fields(ipCmd(t, "-o", "addr", "show")) {
		if a, _, _ := strings.Cut(f, "/"); a == addr {
			return true
		}
	}
	return false
}

// curlResult is what one guest-side curl saw.
type curlResult struct {
	body   string
	status string // "000" when no HTTP response arrived
	exit   int    // curl's exit status: 28 is a timeout
}

// guestCurl runs curl inside namespace ns, with no proxy and an empty
// environment, and returns the body, the status and curl's exit status.
func guestCurl(t *testing.T, ns string, args ...string) curlResult {
	t.Helper()
	full := append([]string{"netns", "exec", ns, "curl", "-sS", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}"}, args...)
	cmd := exec.Command("ip", full...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	r := curlResult{}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	default:
		t.Fatalf("curl in %s: %v", ns, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		t.Fatalf("curl in %s printed no status (exit %d): %q %s", ns, r.exit, s, stderr.String())
	}
	r.body, r.status = s[:i], s[i+1:]
	return r
}

// runQuiet runs a command whose failure does not matter (best-effort cleanup).
func runQuiet(name string, args ...string) error {
	return exec.Command(name, args...).Run()
}
