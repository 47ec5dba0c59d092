//go:build integration

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// netsetupArgsEnv carries the arguments of `frontdesk netsetup` to the test
// binary re-executed inside a network namespace (one per line).
const netsetupArgsEnv = "FRONTDESK_NETSETUP_HELPER_ARGS"

// netsetupServeEnv makes the helper serve HTTP on the given address instead.
const netsetupServeEnv = "FRONTDESK_NETSETUP_HELPER_SERVE"

// TestHelperNetsetup is not a test: the netsetup tests re-execute the test
// binary with it inside a namespace, so that cmdNetsetup and the ip
// commands it runs see only that namespace.
func TestHelperNetsetup(t *testing.T) {
	if addr := os.Getenv(netsetupServeEnv); addr != "" {
		err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "served by the host")
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	raw, ok := os.LookupEnv(netsetupArgsEnv)
	if !ok {
		return
	}
	var args []string
	if raw != "" {
		args = strings.Split(raw, "\n")
	}
	e := &env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if err := cmdNetsetup(context.Background(), e, args); err != nil {
		fmt.Fprintln(os.Stderr, "frontdesk:", err)
		os.Exit(exitCode(err))
	}
	os.Exit(0)
}

// fdns is one throwaway network namespace: the "host" netsetup runs on.
type fdns struct{ name string }

// newFdns creates a namespace with lo up, removed by t.Cleanup.
func newFdns(t *testing.T, role string) *fdns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("netsetup tests need root to create network namespaces (CI runs them as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("netsetup tests need iproute2: %v", err)
	}
	ns := &fdns{name: "fdns-" + role + "-" + opsRandomHex(t)}
	nsIP(t, "netns", "add", ns.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v\n%s", ns.name, err, out)
		}
	})
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

func opsRandomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

func nsIP(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ip runs iproute2 against the namespace.
func (ns *fdns) ip(t *testing.T, args ...string) string {
	t.Helper()
	return nsIP(t, append([]string{"-n", ns.name}, args...)...)
}

// netsetup runs `frontdesk netsetup args...` inside the namespace and
// returns its stdout, its stderr and its error.
func (ns *fdns) netsetup(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns.name, exe, "-test.run=^TestHelperNetsetup$")
	cmd.Env = append(os.Environ(), netsetupArgsEnv+"="+strings.Join(args, "\n"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustNetsetup is netsetup that fails the test on error.
func (ns *fdns) mustNetsetup(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := ns.netsetup(t, args...)
	if err != nil {
		t.Fatalf("netsetup %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// nsLink is what the tests compare of one link's state.
type nsLink struct {
	Index    int      `json:"ifindex"`
	Name     string   `json:"ifname"`
	Flags    []string `json:"flags"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Tentative bool   `json:"tentative"`
	} `json:"addr_info"`
}

// link returns the link's state, or nil when it does not exist.
func (ns *fdns) link(t *testing.T, name string) *nsLink {
	t.Helper()
	var ls []nsLink
	if err := json.Unmarshal([]byte(ns.ip(t, "-j", "addr", "show")), &ls); err != nil {
		t.Fatal(err)
	}
	for i := range ls {
		if ls[i].Name == name {
			return &ls[i]
		}
	}
	return nil
}

// addrs lists the link's addresses but the link-local one the kernel adds.
func (l *nsLink) addrs() []string {
	var as []string
	for _, a := range l.AddrInfo {
		if strings.HasPrefix(a.Local, "fe80:") {
			continue
		}
		as = append(as, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
	}
	slices.Sort(as)
	return as
}

func (ns *fdns) sysctl(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns.name, "cat", "/proc/sys/"+strings.ReplaceAll(key, ".", "/")).CombinedOutput()
	if err != nil {
		t.Fatalf("read %s in %s: %v\n%s", key, ns.name, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (ns *fdns) setSysctl(t *testing.T, key, value string) {
	t.Helper()
	nsIP(t, "netns", "exec", ns.name, "sysctl", "-qw", key+"="+value)
}

// opsCommandLines returns the lines of netsetup's output that are commands
// (not # notes).
func opsCommandLines(out string) []string {
	var cmds []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// This kernel has no dummy driver, so the tests create ifb links: netsetup
// does not care which type the link is.
const testLinkType = "ifb"

func TestNetsetupIsIdempotent(t *testing.T) {
	ns := newFdns(t, "idem")
	args := []string{"--link-type", testLinkType, "--ipv6"}
	want := []string{"169.254.169.254/32", "fd00:ec2::254/128"}

	dry := ns.mustNetsetup(t, append(args, "--dry-run")...)
	wantDry := "ip link add frontdesk0 type ifb\n" +
		"ip addr add 169.254.169.254/32 dev frontdesk0\n" +
		"ip -6 addr add fd00:ec2::254/128 dev frontdesk0 nodad\n" +
		"ip link set frontdesk0 up\n"
	if dry != wantDry {
		t.Errorf("--dry-run printed\n%s\nwant\n%s", dry, wantDry)
	}
	if l := ns.link(t, "frontdesk0"); l != nil {
		t.Fatalf("--dry-run created the link: %+v", l)
	}

	first := ns.mustNetsetup(t, args...)
	if first != wantDry {
		t.Errorf("the first run printed\n%s\nwant the commands it ran:\n%s", first, wantDry)
	}
	l := ns.link(t, "frontdesk0")
	if l == nil {
		t.Fatal("the first run created no link")
	}
	if got := l.addrs(); !slices.Equal(got, want) {
		t.Errorf("after the first run the link holds %v, want %v", got, want)
	}
	if !slices.Contains(l.Flags, "UP") {
		t.Errorf("after the first run the link is not up: %v", l.Flags)
	}
	for _, a := range l.AddrInfo {
		if a.Tentative {
			t.Errorf("%s is tentative: serve could not bind it", a.Local)
		}
	}

	second := ns.mustNetsetup(t, args...)
	if cmds := opsCommandLines(second); len(cmds) > 0 {
		t.Errorf("the second run ran %q", cmds)
	}
	if !strings.Contains(second, "nothing to do") {
		t.Errorf("the second run did not say there was nothing to do:\n%s", second)
	}
	l2 := ns.link(t, "frontdesk0")
	if l2 == nil || l2.Index != l.Index || !slices.Equal(l2.addrs(), want) {
		t.Errorf("the second run changed the link: before %+v, after %+v", l, l2)
	}
	if cmds := opsCommandLines(ns.mustNetsetup(t, append(args, "--dry-run")...)); len(cmds) > 0 {
		t.Errorf("--dry-run on a set-up host plans %q", cmds)
	}
}

func TestNetsetupCompletesAPartialSetup(t *testing.T) {
	ns := newFdns(t, "part")
	// A link someone made by hand, of another type, holding the IPv4
	// address but down: netsetup adopts it and adds only what is missing.
	ns.ip(t, "link", "add", "imds0", "type", testLinkType)
	ns.ip(t, "addr", "add", "169.254.169.254/32", "dev", "imds0")
	out := ns.mustNetsetup(t, "--interface", "imds0", "--ipv6")
	want := "ip -6 addr add fd00:ec2::254/128 dev imds0 nodad\nip link set imds0 up\n"
	if out != want {
		t.Errorf("netsetup printed\n%s\nwant\n%s", out, want)
	}
	l := ns.link(t, "imds0")
	if got := l.addrs(); !slices.Equal(got, []string{"169.254.169.254/32", "fd00:ec2::254/128"}) || !slices.Contains(l.Flags, "UP") {
		t.Errorf("imds0 is %v %v", got, l.Flags)
	}
	if l := ns.link(t, "frontdesk0"); l != nil {
		t.Errorf("netsetup created frontdesk0 although --interface imds0")
	}
}

func TestNetsetupRefusesBadInput(t *testing.T) {
	ns := newFdns(t, "bad")
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"a missing guest interface is an error", []string{"--link-type", testLinkType, "--guest-interface", "br9"}, 1},
		{"an interface name with a slash is refused", []string{"--interface", "../all"}, 2},
		{"an over-long interface name is refused", []string{"--interface", "frontdesk0123456"}, 2},
		{"a stray argument is refused", []string{"now"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := ns.netsetup(t, tc.args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("netsetup %v: %v, want exit %d; stderr %s", tc.args, err, tc.code, stderr)
			}
		})
	}
}

// TestNetsetupGuestsReachTheHost builds a bridge with a guest behind a veth
// and checks the claim of the help text: with the address on the dummy
// link and nothing else, a guest that routes 169.254.169.254 via the host is
// served; one whose route is on-link is served too once arp_ignore (which
// netsetup reports and --apply fixes) is 0.
func TestNetsetupGuestsReachTheHost(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("this test needs curl: %v", err)
	}
	host := newFdns(t, "host")
	guest := newFdns(t, "guest")
	host.ip(t, "link", "add", "br0", "type", "bridge")
	host.ip(t, "addr", "add", "203.0.113.1/24", "dev", "br0")
	host.ip(t, "link", "set", "br0", "up")
	host.ip(t, "link", "add", "vh0", "type", "veth", "peer", "name", "eth0", "netns", guest.name)
	host.ip(t, "link", "set", "vh0", "master", "br0", "up")
	guest.ip(t, "addr", "add", "203.0.113.10/24", "dev", "eth0")
	guest.ip(t, "link", "set", "eth0", "up")
	host.setSysctl(t, "net.ipv4.conf.br0.arp_ignore", "1")

	out := host.mustNetsetup(t, "--link-type", testLinkType, "--guest-interface", "br0")
	for _, want := range []string{
		"# guests on br0: ip route add 169.254.169.254/32 via 203.0.113.1",
		"# sysctl -w net.ipv4.conf.br0.arp_ignore=0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("netsetup output lacks %q:\n%s", want, out)
		}
	}
	if got := host.sysctl(t, "net.ipv4.conf.br0.arp_ignore"); got != "1" {
		t.Errorf("without --apply arp_ignore became %s", got)
	}

	// The service, bound to the address netsetup added.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("ip", "netns", "exec", host.name, exe, "-test.run=^TestHelperNetsetup$")
	srv.Env = append(os.Environ(), netsetupServeEnv+"=169.254.169.254:80")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})

	curl := func() (string, error) {
		out, err := exec.Command("ip", "netns", "exec", guest.name, "curl", "-sS", "--noproxy", "*", "--max-time", "2", "http://169.254.169.254/").CombinedOutput()
		return string(out), err
	}
	// On-link route with arp_ignore=1: the host does not answer ARP.
	guest.ip(t, "route", "add", "169.254.0.0/16", "dev", "eth0")
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Wait until the server listens: from the host namespace itself.
		o, err := exec.Command("ip", "netns", "exec", host.name, "curl", "-sS", "--max-time", "1", "http://169.254.169.254/").CombinedOutput()
		if err == nil && string(o) == "served by the host" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service in the host namespace never answered: %v %s", err, o)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body, err := curl(); err == nil {
		t.Errorf("an on-link guest was served although arp_ignore=1: %q", body)
	}

	t.Run("a guest routing via the host needs nothing else", func(t *testing.T) {
		guest.ip(t, "route", "add", "169.254.169.254/32", "via", "203.0.113.1")
		t.Cleanup(func() { guest.ip(t, "route", "del", "169.254.169.254/32") })
		guest.ip(t, "neigh", "flush", "dev", "eth0")
		if body, err := curl(); err != nil || body != "served by the host" {
			t.Errorf("guest got %q, %v", body, err)
		}
	})

	t.Run("--apply lets on-link guests resolve the address", func(t *testing.T) {
		dry := host.mustNetsetup(t, "--link-type", testLinkType, "--guest-interface", "br0", "--apply", "--dry-run")
		if !strings.Contains(dry, "\nsysctl -w net.ipv4.conf.br0.arp_ignore=0\n") {
			t.Errorf("--apply --dry-run does not print the sysctl:\n%s", dry)
		}
		if got := host.sysctl(t, "net.ipv4.conf.br0.arp_ignore"); got != "1" {
			t.Fatalf("--dry-run changed arp_ignore to %s", got)
		}
		host.mustNetsetup(t, "--link-type", testLinkType, "--guest-interface", "br0", "--apply")
		if got := host.sysctl(t, "net.ipv4.conf.br0.arp_ignore"); got != "0" {
			t.Fatalf("--apply left arp_ignore at %s", got)
		}
		guest.ip(t, "neigh", "flush", "dev", "eth0")
		if body, err := curl(); err != nil || body != "served by the host" {
			t.Errorf("on-link guest got %q, %v", body, err)
		}
		again := host.mustNetsetup(t, "--link-type", testLinkType, "--guest-interface", "br0", "--apply")
		if cmds := opsCommandLines(again); len(cmds) > 0 {
			t.Errorf("a second --apply ran %q", cmds)
		}
	})
}
