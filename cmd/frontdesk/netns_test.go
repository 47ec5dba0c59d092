//go:build integration

package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// imdsAddr is the address the data plane owns in these tests, as on EC2.
const imdsAddr = "169.254.169.254"

// Addresses of the test network. The guests on the bridge use
// 203.0.113.0/24 rather than 192.0.2.0/24 because CI machines may (this one
// does) have their own uplink in 192.0.2.0/24; the far guest sits behind a
// router in 198.51.100.0/24.
const (
	bridgeAddr  = "203.0.113.1"
	routerAddr  = "203.0.113.2"
	guest1Addr  = "203.0.113.10"
	guest2Addr  = "203.0.113.11"
	strayAddr   = "203.0.113.12" // never registered
	farGateway  = "198.51.100.1"
	farAddr     = "198.51.100.10"
	farSubnet   = "198.51.100.0/24"
	bridgeBits  = "/24"
	imdsHostURL = "http://" + imdsAddr
)

// testNet is the namespaces of one test run:
//
//	g1, g2, stray ──veth── bridge (203.0.113.1, host ns)
//	far ──veth── router ──veth── bridge
//
// and 169.254.169.254/32 on an ifb link of its own in the host namespace
// (ifb, like dummy, is a link that only holds addresses; this kernel has no
// dummy driver).
type testNet struct {
	g1, g2, stray, router, far string // namespace names
}

// buildTestNet creates the host-side links and the namespaces; every piece
// is removed by t.Cleanup, in reverse order, even if the test fails.
func buildTestNet(t *testing.T) *testNet {
	t.Helper()
	sfx := randomSuffix(t)
	imdsLink, bridge := netnsPrefix+"d"+sfx, netnsPrefix+"b"+sfx
	ns := func(role string) string { return netnsPrefix + "-" + role + "-" + sfx }
	n := &testNet{g1: ns("g1"), g2: ns("g2"), stray: ns("g3"), router: ns("rt"), far: ns("far")}

	// Registered first so it runs last: nothing of this run may survive it.
	t.Cleanup(func() {
		for _, l := range ourLinks(t) {
			if strings.HasSuffix(l, sfx) {
				t.Errorf("link %s survived cleanup", l)
			}
		}
		for _, s := range ourNamespaces(t) {
			if strings.HasSuffix(s, sfx) {
				t.Errorf("namespace %s survived cleanup", s)
			}
		}
		if hasAddress(t, imdsAddr) {
			t.Errorf("%s survived cleanup", imdsAddr)
		}
	})

	ipCmd(t, "link", "add", imdsLink, "type", "ifb")
	cleanupIP(t, "link", "del", imdsLink)
	ipCmd(t, "addr", "add", imdsAddr+"/32", "dev", imdsLink)
	ipCmd(t, "link", "set", imdsLink, "up")

	ipCmd(t, "link", "add", bridge, "type", "bridge")
	cleanupIP(t, "link", "del", bridge)
	ipCmd(t, "addr", "add", bridgeAddr+bridgeBits, "dev", bridge)
	ipCmd(t, "link", "set", bridge, "up")

	// newNS creates a namespace with lo up.
	newNS := func(name string) {
		ipCmd(t, "netns", "add", name)
		cleanupIP(t, "netns", "del", name)
		ipCmd(t, "-n", name, "link", "set", "lo", "up")
	}
	// wire joins namespace name to the bridge as eth0 with addr.
	wire := func(name, hostEnd, addr string) {
		ipCmd(t, "link", "add", hostEnd, "type", "veth", "peer", "name", hostEnd+"p")
		// Deleting either end deletes the pair; the namespace's deletion
		// usually has, so a missing link is fine here.
		t.Cleanup(func() { _ = runQuiet("ip", "link", "del", hostEnd) })
		ipCmd(t, "link", "set", hostEnd+"p", "netns", name)
		ipCmd(t, "-n", name, "link", "set", hostEnd+"p", "name", "eth0")
		ipCmd(t, "-n", name, "addr", "add", addr+bridgeBits, "dev", "eth0")
		ipCmd(t, "-n", name, "link", "set", "eth0", "up")
		ipCmd(t, "link", "set", hostEnd, "master", bridge, "up")
	}
	for i, g := range []struct{ ns, addr string }{{n.g1, guest1Addr}, {n.g2, guest2Addr}, {n.stray, strayAddr}} {
		newNS(g.ns)
		wire(g.ns, netnsPrefix+"h"+string(rune('1'+i))+sfx, g.addr)
		ipCmd(t, "-n", g.ns, "route", "add", imdsAddr+"/32", "via", bridgeAddr)
	}

	newNS(n.router)
	wire(n.router, netnsPrefix+"hr"+sfx, routerAddr)
	ipCmd(t, "-n", n.router, "route", "add", imdsAddr+"/32", "via", bridgeAddr)
	ipCmd(t, "netns", "exec", n.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	newNS(n.far)
	inner := netnsPrefix + "ra" + sfx
	ipCmd(t, "link", "add", inner, "type", "veth", "peer", "name", inner+"p")
	t.Cleanup(func() { _ = runQuiet("ip", "link", "del", inner) })
	ipCmd(t, "link", "set", inner, "netns", n.router)
	ipCmd(t, "link", "set", inner+"p", "netns", n.far)
	ipCmd(t, "-n", n.router, "link", "set", inner, "name", "eth1")
	ipCmd(t, "-n", n.router, "addr", "add", farGateway+"/24", "dev", "eth1")
	ipCmd(t, "-n", n.router, "link", "set", "eth1", "up")
	ipCmd(t, "-n", n.far, "link", "set", inner+"p", "name", "eth0")
	ipCmd(t, "-n", n.far, "addr", "add", farAddr+"/24", "dev", "eth0")
	ipCmd(t, "-n", n.far, "link", "set", "eth0", "up")
	ipCmd(t, "-n", n.far, "route", "add", imdsAddr+"/32", "via", farGateway)
	// The host reaches the far subnet through the router; the route goes
	// away with the bridge.
	ipCmd(t, "route", "add", farSubnet, "via", routerAddr, "dev", bridge)
	return n
}

// imdsToken does the IMDSv2 token PUT from namespace ns.
func imdsToken(t *testing.T, ns string, maxTime string) curlResult {
	t.Helper()
	return guestCurl(t, ns, "--max-time", maxTime, "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", imdsHostURL+"/latest/api/token")
}

// instanceIDv2 fetches instance-id from namespace ns with the token flow.
func instanceIDv2(t *testing.T, ns string) curlResult {
	t.Helper()
	tok := imdsToken(t, ns, "3")
	if tok.exit != 0 || tok.status != "200" || tok.body == "" {
		t.Fatalf("token PUT from %s: exit %d status %s body %q", ns, tok.exit, tok.status, tok.body)
	}
	return guestCurl(t, ns, "--max-time", "3", "-H", "X-aws-ec2-metadata-token: "+tok.body, imdsHostURL+"/latest/meta-data/instance-id")
}

var instanceIDRe = regexp.MustCompile(`i-[0-9a-f]{8,17}`)

// Real packets from network namespaces: each guest is told apart by its
// source address, an unregistered one learns nothing, and the token
// response's IP TTL is the instance's hop limit.
func TestNetnsRealPackets(t *testing.T) {
	requireNetnsTools(t, "curl", awsCLI)
	lockNetns(t)
	removeLeftovers(t)
	if hasAddress(t, imdsAddr) {
		t.Fatalf("%s is already on a host interface: another service owns it", imdsAddr)
	}
	n := buildTestNet(t)

	dir := t.TempDir()
	d := startDaemon(t, dir, "--listen", imdsAddr+":80")
	if d.dataURL != imdsHostURL+":80" {
		t.Fatalf("data plane listens on %s, want %s:80 (the later --listen must win)", d.dataURL, imdsHostURL)
	}
	// Only the added address carries the data plane: nothing answers on
	// port 80 of loopback.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:80", time.Second); err == nil {
		c.Close()
		t.Fatal("something answers on 127.0.0.1:80; the data plane must be bound to 169.254.169.254 only")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := apiFor(t, d.dataDir, d.apiURL)
	id1 := launch(ctx, t, c, guest1Addr)
	id2 := launch(ctx, t, c, guest2Addr)
	idFar := launch(ctx, t, c, farAddr, func(in *ec2.RunInstancesInput) {
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{
			HttpTokens:              types.HttpTokensStateOptional,
			HttpPutResponseHopLimit: aws.Int32(1),
			HttpEndpoint:            types.InstanceMetadataEndpointStateEnabled,
		}
	})
	waitApplied(ctx, t, c, 2*time.Second, id1, id2, idFar)

	t.Run("each_guest_sees_its_own_instance_id_with_a_token", func(t *testing.T) {
		for _, g := range []struct{ ns, want string }{{n.g1, id1}, {n.g2, id2}} {
			r := instanceIDv2(t, g.ns)
			if r.exit != 0 || r.status != "200" || r.body != g.want {
				t.Errorf("%s: exit %d status %s body %q, want %q", g.ns, r.exit, r.status, r.body, g.want)
			}
		}
	})

	t.Run("unregistered_guest_gets_404_and_no_instance_data", func(t *testing.T) {
		for _, r := range []curlResult{
			imdsToken(t, n.stray, "3"),
			guestCurl(t, n.stray, "--max-time", "3", imdsHostURL+"/latest/meta-data/instance-id"),
			guestCurl(t, n.stray, "--max-time", "3", imdsHostURL+"/latest/dynamic/instance-identity/document"),
		} {
			if r.exit != 0 || r.status != "404" {
				t.Errorf("exit %d status %s, want 404", r.exit, r.status)
			}
			if m := instanceIDRe.FindString(r.body); m != "" {
				t.Errorf("404 body names an instance (%s): %q", m, r.body)
			}
			for _, ip := range []string{guest1Addr, guest2Addr, farAddr} {
				if strings.Contains(r.body, ip) {
					t.Errorf("404 body names %s: %q", ip, r.body)
				}
			}
		}
	})

	t.Run("far_guest_gets_no_token_with_hop_limit_1_but_v1_works", func(t *testing.T) {
		r := imdsToken(t, n.far, "3")
		if r.exit != 28 || r.body != "" {
			t.Fatalf("token PUT two hops away: exit %d status %s body %q, want a timeout (exit 28)", r.exit, r.status, r.body)
		}
		r = guestCurl(t, n.far, "--max-time", "3", imdsHostURL+"/latest/meta-data/instance-id")
		if r.exit != 0 || r.status != "200" || r.body != idFar {
			t.Fatalf("v1 GET two hops away: exit %d status %s body %q, want %q", r.exit, r.status, r.body, idFar)
		}
	})

	t.Run("far_guest_gets_its_token_once_the_cli_raises_the_hop_limit_to_2", func(t *testing.T) {
		out := runAWS(t, filepath.Join(dir, "admin.credentials"), d.apiURL,
			"ec2", "modify-instance-metadata-options", "--instance-id", idFar, "--http-put-response-hop-limit", "2")
		var mod struct {
			InstanceId              string
			InstanceMetadataOptions struct{ HttpPutResponseHopLimit int }
		}
		if err := json.Unmarshal(out, &mod); err != nil {
			t.Fatalf("modify output: %v\n%s", err, out)
		}
		if mod.InstanceId != idFar || mod.InstanceMetadataOptions.HttpPutResponseHopLimit != 2 {
			t.Fatalf("modify output %s", out)
		}
		start := time.Now()
		var r curlResult
		attempts := 0
		for {
			attempts++
			r = imdsToken(t, n.far, "0.5")
			if r.exit == 0 || time.Since(start) > 2*time.Second {
				break
			}
		}
		t.Logf("token after %d attempts, %v after the CLI returned", attempts, time.Since(start))
		if r.exit != 0 || r.status != "200" || r.body == "" {
			t.Fatalf("token PUT two hops away after hop limit 2: exit %d status %s (waited %v)", r.exit, r.status, time.Since(start))
		}
		g := guestCurl(t, n.far, "--max-time", "3", "-H", "X-aws-ec2-metadata-token: "+r.body, imdsHostURL+"/latest/meta-data/instance-id")
		if g.exit != 0 || g.status != "200" || g.body != idFar {
			t.Fatalf("GET with token two hops away: exit %d status %s body %q", g.exit, g.status, g.body)
		}
	})

}
