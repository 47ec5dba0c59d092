//go:build integration

package main

import (
	"strings"
	"testing"
)

// imdsOnHost puts 169.254.169.254/32 on a new ifb link of the host, removed
// with the test.
func imdsOnHost(t *testing.T, link string) {
	t.Helper()
	ipCmd(t, "link", "add", link, "type", "ifb")
	cleanupIP(t, "link", "del", link)
	ipCmd(t, "addr", "add", imdsAddr+"/32", "dev", link)
	ipCmd(t, "link", "set", link, "up")
}

// guestBehindHost makes namespace ns a guest on guestIP/24, joined to the
// host (hostAddr/24 on hostEnd) by a veth pair, with its route to
// 169.254.169.254 through the host. It fails the test unless the address is
// local on the host, so no guest packet to it can leave the machine.
func guestBehindHost(t *testing.T, hostEnd, ns, hostAddr, guestIP string) {
	t.Helper()
	ipCmd(t, "link", "add", hostEnd, "type", "veth", "peer", "name", hostEnd+"p")
	t.Cleanup(func() { _ = runQuiet("ip", "link", "del", hostEnd) })
	ipCmd(t, "addr", "add", hostAddr+"/24", "dev", hostEnd)
	ipCmd(t, "netns", "add", ns)
	cleanupIP(t, "netns", "del", ns)
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	ipCmd(t, "link", "set", hostEnd+"p", "netns", ns)
	ipCmd(t, "-n", ns, "link", "set", hostEnd+"p", "name", "eth0")
	ipCmd(t, "-n", ns, "addr", "add", guestIP+"/24", "dev", "eth0")
	ipCmd(t, "-n", ns, "link", "set", "eth0", "up")
	ipCmd(t, "link", "set", hostEnd, "up")
	ipCmd(t, "-n", ns, "route", "add", imdsAddr+"/32", "via", hostAddr)
	if r := ipCmd(t, "-n", ns, "route", "get", imdsAddr); !strings.Contains(r, "via "+hostAddr) {
		t.Fatalf("guest route to %s is not via the host: %s", imdsAddr, r)
	}
	if r := ipCmd(t, "route", "get", imdsAddr); !strings.HasPrefix(strings.TrimSpace(r), "local "+imdsAddr) {
		t.Fatalf("%s is not local in the host namespace: %s", imdsAddr, r)
	}
}

// guestReader returns a function that reads a path below /latest/ from
// inside ns with an IMDSv2 token, failing the test on anything but 200.
func guestReader(t *testing.T, ns string) func(path string) string {
	t.Helper()
	tok := imdsToken(t, ns, "3")
	if tok.status != "200" {
		t.Fatalf("token PUT: %+v", tok)
	}
	return func(path string) string {
		t.Helper()
		r := guestCurl(t, ns, "--max-time", "3", "-H", "X-aws-ec2-metadata-token: "+tok.body, imdsHostURL+"/latest/"+path)
		if r.exit != 0 || r.status != "200" {
			t.Fatalf("%s: exit %d status %s body %q", path, r.exit, r.status, r.body)
		}
		return r.body
	}
}
