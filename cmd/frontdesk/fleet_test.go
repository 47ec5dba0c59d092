//go:build integration

package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
	"github.com/frontdesk-imds/frontdesk/internal/etcd"
	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// fleet is the shared set-up of TestFleet's subtests.
type fleet struct {
	ctx      context.Context
	cluster  *etcdtest.Cluster
	members  *fleetMembers
	prefix   string
	a, b     *fleetNode
	idA, idB string
	gA, gB   *fleetGuest
}

// The guests' addresses and the path every subtest asks.
const (
	onA, onB = "127.0.0.21", "127.0.0.22"
	idPath   = "/latest/meta-data/instance-id"
)

// newFleet starts the cluster and both nodes and launches one instance
// placed on each.
func newFleet(t *testing.T) *fleet {
	cluster := etcdtest.Start(t, etcdtest.Options{Members: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	f := &fleet{ctx: ctx, cluster: cluster, members: &fleetMembers{cl: cluster, down: map[int]bool{}}, prefix: fleetPrefix(t)}
	f.a = startFleetNode(t, "node-a", cluster.Endpoints(), f.prefix)
	f.b = startFleetNode(t, "node-b", cluster.Endpoints(), f.prefix)
	f.idA = launch(ctx, t, f.a.ec2, onA, onHost("node-a"), httpTokens(types.HttpTokensStateOptional))
	f.idB = launch(ctx, t, f.a.ec2, onB, onHost("node-b"), httpTokens(types.HttpTokensStateOptional))
	f.gA, f.gB = newFleetGuest(t, onA), newFleetGuest(t, onB)
	return f
}

// Fleet mode (issue 7): two frontdesk nodes on one real three-member etcd
// cluster on loopback. Node A serves the instances placed on host "node-a",
// node B those on "node-b"; an instance is whoever connects from its
// address. The subtests share the cluster and run in order, the most
// disruptive last; each one that kills members brings them back in its
// cleanup, so a failure does not cascade.
func TestFleet(t *testing.T) {
	f := newFleet(t)
	for _, sub := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"each_node_serves_only_the_instances_placed_on_it", f.eachNodeServesOnlyTheInstancesPlacedOnIt},
		{"nodes_share_the_admin_credentials", f.nodesShareTheAdminCredentials},
		{"change_through_a_is_enforced_by_b", f.changeThroughAIsEnforcedByB},
		{"concurrent_control_planes_lose_no_update", f.concurrentControlPlanesLoseNoUpdate},
		{"moved_instance_keeps_its_metadata_and_tokens", f.movedInstanceKeepsItsMetadataAndTokens},
		{"instance_moved_in_the_store_keeps_its_tokens", f.instanceMovedInTheStoreKeepsItsTokens},
		{"one_member_killed_under_load_fails_no_metadata_request", f.oneMemberKilledUnderLoadFailsNoMetadataRequest},
		{"compaction_while_a_node_is_disconnected_reloads_and_converges", f.compactionWhileANodeIsDisconnectedReloadsAndConverges},
		{"every_member_killed_nodes_serve_and_writes_fail_cleanly", f.everyMemberKilledNodesServeAndWritesFailCleanly},
	} {
		t.Run(sub.name, sub.run)
	}
}

func (f *fleet) eachNodeServesOnlyTheInstancesPlacedOnIt(t *testing.T) {
	ctx, a, b, idA, idB, gA, gB := f.ctx, f.a, f.b, f.idA, f.idB, f.gA, f.gB
	if got := gA.waitStatus(ctx, t, a.dataURL, idPath, "", http.StatusOK, 10*time.Second); got != idA {
		t.Errorf("node A answered %s's instance-id %q, want %q", onA, got, idA)
	}
	if got := gB.waitStatus(ctx, t, b.dataURL, idPath, "", http.StatusOK, 10*time.Second); got != idB {
		t.Errorf("node B answered %s's instance-id %q, want %q", onB, got, idB)
	}
	for _, c := range []struct {
		node *fleetNode
		g    *fleetGuest
	}{{a, gB}, {b, gA}} {
		if status, body, err := c.g.get(ctx, c.node.dataURL, idPath, ""); err != nil || status != http.StatusNotFound {
			t.Errorf("%s answered %s (placed elsewhere): %d %q %v; want 404", c.node.name, c.g.addr, status, body, err)
		}
	}
	// The node name is an operator's field, not a Dedicated Host id.
	if status, body, err := gB.get(ctx, b.dataURL, "/latest/meta-data/placement/host-id", ""); err != nil || status != http.StatusNotFound {
		t.Errorf("placement/host-id on node B: %d %q %v; want 404", status, body, err)
	}
}

func (f *fleet) nodesShareTheAdminCredentials(t *testing.T) {
	ctx, a, b, idA, idB := f.ctx, f.a, f.b, f.idA, f.idB
	ka, sa := adminKey(t, a.dataDir)
	kb, sb := adminKey(t, b.dataDir)
	if ka != kb || sa != sb {
		t.Errorf("admin key of node A %s, of node B %s: they must come from the shared store", ka, kb)
	}
	// Node B's control plane accepts the key and sees node A's launches.
	out, err := b.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{idA, idB}})
	if err != nil {
		t.Fatalf("DescribeInstances through node B: %v", err)
	}
	n := 0
	for _, r := range out.Reservations {
		n += len(r.Instances)
	}
	if n != 2 {
		t.Errorf("node B describes %d of the 2 instances launched through node A", n)
	}
}

func (f *fleet) changeThroughAIsEnforcedByB(t *testing.T) {
	ctx, a, b, idB, gB := f.ctx, f.a, f.b, f.idB, f.gB
	const changes = 100
	lat, calls, after := measurePropagation(ctx, t, a, b, idB, gB, changes)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	t.Logf("fleet propagation: p50=%.1fms p99=%.1fms max=%.1fms over %d changes (target p99 < 200ms)", ms(p50), ms(p99), ms(lat[len(lat)-1]), changes)
	t.Logf("  the API call (etcd commit): p50=%.1fms p99=%.1fms; from its answer to enforcement on node B: p50=%.1fms p99=%.1fms",
		ms(percentile(calls, 0.50)), ms(percentile(calls, 0.99)), ms(percentile(after, 0.50)), ms(percentile(after, 0.99)))
	if p99 >= 2*time.Second {
		t.Errorf("p99 %s: a change through node A takes too long to reach node B", p99)
	}
}

func (f *fleet) concurrentControlPlanesLoseNoUpdate(t *testing.T) {
	ctx, a, b := f.ctx, f.a, f.b
	const addr = "127.0.0.23"
	id := launch(ctx, t, a.ec2, addr, onHost("node-a"), httpTokens(types.HttpTokensStateOptional), func(in *ec2.RunInstancesInput) {
		in.MetadataOptions.InstanceMetadataTags = types.InstanceMetadataTagsStateEnabled
	})
	g := newFleetGuest(t, addr)
	// Each writer adds its own tags (read-modify-write of one instance
	// record: a lost update loses a tag) and sets HttpTokens together
	// with a hop limit that encodes it (a half-applied modification
	// leaves a pair that does not match).
	const workers, tagsPerWorker = 4, 5
	type pair struct {
		tokens types.HttpTokensState
		hop    int32
	}
	pairs := []pair{{types.HttpTokensStateOptional, 2}, {types.HttpTokensStateRequired, 3}}
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*tagsPerWorker*2)
	for _, n := range []*fleetNode{a, b} {
		for w := range workers {
			wg.Go(func() {
				for i := range tagsPerWorker {
					key := fmt.Sprintf("%s-w%d-t%d", n.name, w, i)
					if _, err := n.ec2.CreateTags(ctx, &ec2.CreateTagsInput{
						Resources: []string{id}, Tags: []types.Tag{{Key: aws.String(key), Value: aws.String(key)}},
					}); err != nil {
						errs <- fmt.Errorf("CreateTags %s through %s: %w", key, n.name, err)
					}
					p := pairs[(w+i)%2]
					if _, err := n.ec2.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
						InstanceId: aws.String(id), HttpTokens: p.tokens, HttpPutResponseHopLimit: aws.Int32(p.hop),
					}); err != nil {
						errs <- fmt.Errorf("ModifyInstanceMetadataOptions through %s: %w", n.name, err)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var want []string
	for _, n := range []string{"node-a", "node-b"} {
		for w := range workers {
			for i := range tagsPerWorker {
				want = append(want, fmt.Sprintf("%s-w%d-t%d", n, w, i))
			}
		}
	}
	sort.Strings(want)
	out, err := b.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	in := out.Reservations[0].Instances[0]
	var got []string
	for _, tag := range in.Tags {
		if aws.ToString(tag.Key) != aws.ToString(tag.Value) {
			t.Errorf("tag %s=%s: value half-written", aws.ToString(tag.Key), aws.ToString(tag.Value))
		}
		got = append(got, aws.ToString(tag.Key))
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("tags after %d concurrent CreateTags through two nodes:\n got %d %v\nwant %d %v", len(want), len(got), got, len(want), want)
	}
	mo := in.MetadataOptions
	final := pair{mo.HttpTokens, aws.ToInt32(mo.HttpPutResponseHopLimit)}
	if final != pairs[0] && final != pairs[1] {
		t.Errorf("metadata options after concurrent modifications: HttpTokens=%s hop limit=%d, a mix of two requests", final.tokens, final.hop)
	}

	// Node A's data plane serves the same final state.
	wantStatus := http.StatusOK
	if final.tokens == types.HttpTokensStateRequired {
		wantStatus = http.StatusUnauthorized
	}
	g.waitStatus(ctx, t, a.dataURL, idPath, "", wantStatus, 10*time.Second)
	tok := g.mustToken(ctx, t, a.dataURL, 60)
	listing := g.waitStatus(ctx, t, a.dataURL, "/latest/meta-data/tags/instance", tok, http.StatusOK, 5*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		served := strings.Split(listing, "\n")
		sort.Strings(served)
		if strings.Join(served, ",") == strings.Join(want, ",") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node A serves tags %v, want %v", served, want)
		}
		time.Sleep(20 * time.Millisecond)
		listing = g.waitStatus(ctx, t, a.dataURL, "/latest/meta-data/tags/instance", tok, http.StatusOK, 5*time.Second)
	}
}

func (f *fleet) movedInstanceKeepsItsMetadataAndTokens(t *testing.T) {
	ctx, a, b := f.ctx, f.a, f.b
	const addr = "127.0.0.24"
	id := launch(ctx, t, a.ec2, addr, onHost("node-a"), httpTokens(types.HttpTokensStateRequired))
	g := newFleetGuest(t, addr)
	g.waitStatus(ctx, t, a.dataURL, idPath, "", http.StatusUnauthorized, 10*time.Second)
	tok := g.mustToken(ctx, t, a.dataURL, 300)
	if got := g.waitStatus(ctx, t, a.dataURL, idPath, tok, http.StatusOK, time.Second); got != id {
		t.Fatalf("node A: instance-id %q", got)
	}
	if status, _, err := g.get(ctx, b.dataURL, idPath, tok); err != nil || status != http.StatusNotFound {
		t.Fatalf("node B before the move: %d %v, want 404", status, err)
	}

	if _, err := a.ec2.ModifyInstancePlacement(ctx, &ec2.ModifyInstancePlacementInput{
		InstanceId: aws.String(id), HostId: aws.String("node-b"),
	}); err != nil {
		t.Fatalf("ModifyInstancePlacement HostId=node-b through node A: %v (moving an instance between hosts needs this action)", err)
	}
	// The token node A issued works on node B, for the rest of its TTL.
	if got := g.waitStatus(ctx, t, b.dataURL, idPath, tok, http.StatusOK, 10*time.Second); got != id {
		t.Errorf("node B after the move: instance-id %q, want %q", got, id)
	}
	if status, body, err := g.get(ctx, b.dataURL, "/latest/meta-data/placement/host-id", tok); err != nil || status != http.StatusNotFound {
		t.Errorf("node B after the move: placement/host-id %d %q %v; want 404 (a node name is not served)", status, body, err)
	}
	// Its options moved with it: still no IMDSv1.
	if status, _, err := g.get(ctx, b.dataURL, idPath, ""); err != nil || status != http.StatusUnauthorized {
		t.Errorf("node B after the move, no token: %d %v, want 401", status, err)
	}
	g.waitStatus(ctx, t, a.dataURL, idPath, tok, http.StatusNotFound, 10*time.Second)
	// And node B's own tokens work too.
	tokB := g.mustToken(ctx, t, b.dataURL, 60)
	g.waitStatus(ctx, t, b.dataURL, idPath, tokB, http.StatusOK, time.Second)
}

func (f *fleet) instanceMovedInTheStoreKeepsItsTokens(t *testing.T) {
	ctx, cluster, prefix, a, b := f.ctx, f.cluster, f.prefix, f.a, f.b
	const addr = "127.0.0.25"
	id := launch(ctx, t, a.ec2, addr, onHost("node-a"), httpTokens(types.HttpTokensStateRequired))
	g := newFleetGuest(t, addr)
	g.waitStatus(ctx, t, a.dataURL, idPath, "", http.StatusUnauthorized, 10*time.Second)
	tok := g.mustToken(ctx, t, a.dataURL, 300)
	g.waitStatus(ctx, t, a.dataURL, idPath, tok, http.StatusOK, time.Second)

	st, err := etcd.Open(ctx, etcd.Config{Endpoints: cluster.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(ctx, func(tx imds.Tx) error {
		in, err := imds.GetInstance(tx, id)
		if err != nil {
			return err
		}
		in.Placement.HostID = "node-b"
		return imds.PutInstance(tx, in)
	}); err != nil {
		t.Fatalf("move %s to node-b in the store: %v", id, err)
	}
	if got := g.waitStatus(ctx, t, b.dataURL, idPath, tok, http.StatusOK, 10*time.Second); got != id {
		t.Errorf("node B after the move: instance-id %q, want %q", got, id)
	}
	if status, body, err := g.get(ctx, b.dataURL, "/latest/meta-data/placement/host-id", tok); err != nil || status != http.StatusNotFound {
		t.Errorf("node B after the move: placement/host-id %d %q %v; want 404 (a node name is not served)", status, body, err)
	}
	if status, _, err := g.get(ctx, b.dataURL, idPath, ""); err != nil || status != http.StatusUnauthorized {
		t.Errorf("node B after the move, no token: %d %v, want 401", status, err)
	}
	g.waitStatus(ctx, t, a.dataURL, idPath, tok, http.StatusNotFound, 10*time.Second)
}

func (f *fleet) oneMemberKilledUnderLoadFailsNoMetadataRequest(t *testing.T) {
	ctx, cluster, members, a, b, idA, idB, gA, gB := f.ctx, f.cluster, f.members, f.a, f.b, f.idA, f.idB, f.gA, f.gB
	t.Cleanup(members.restartDown)
	load := startFleetLoad(ctx, loadTarget{a, gA, idA}, loadTarget{b, gB, idB})
	time.Sleep(500 * time.Millisecond)
	// The leader, the worst member to lose: the cluster must elect.
	leader := cluster.Leader(ctx)
	members.kill(leader)
	t.Logf("killed etcd member %d (the leader)", leader)
	// Two members are a quorum: a change through node A still reaches
	// node B (the write may need to wait out the election).
	start := time.Now()
	retryWrite(ctx, t, "HttpTokens=required with one member down", 15*time.Second, func() error {
		return setHttpTokens(ctx, a.ec2, idB, types.HttpTokensStateRequired)
	})
	gB.waitStatus(ctx, t, b.dataURL, idPath, "", http.StatusUnauthorized, 10*time.Second)
	t.Logf("first change after the kill enforced on node B %s after the kill", time.Since(start).Round(time.Millisecond))
	retryWrite(ctx, t, "HttpTokens=optional with one member down", 15*time.Second, func() error {
		return setHttpTokens(ctx, a.ec2, idB, types.HttpTokensStateOptional)
	})
	gB.waitStatus(ctx, t, b.dataURL, idPath, "", http.StatusOK, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	members.restart(leader)
	time.Sleep(300 * time.Millisecond)
	load.stop(t, 20)
}

func (f *fleet) compactionWhileANodeIsDisconnectedReloadsAndConverges(t *testing.T) {
	ctx, cluster, members, prefix, a := f.ctx, f.cluster, f.members, f.prefix, f.a
	t.Cleanup(members.restartDown)
	// Node C reaches etcd only through member 2, by way of a relay the
	// test can cut.
	const member = 2
	proxy := startFleetProxy(t, strings.TrimPrefix(cluster.Endpoint(member), "http://"))
	const kept, gone, added = "127.0.0.31", "127.0.0.32", "127.0.0.33"
	idKept := launch(ctx, t, a.ec2, kept, onHost("node-c"), httpTokens(types.HttpTokensStateOptional))
	idGone := launch(ctx, t, a.ec2, gone, onHost("node-c"), httpTokens(types.HttpTokensStateOptional))
	c := startFleetNode(t, "node-c", []string{proxy.URL()}, prefix)
	gKept, gGone, gAdded := newFleetGuest(t, kept), newFleetGuest(t, gone), newFleetGuest(t, added)
	gKept.waitStatus(ctx, t, c.dataURL, idPath, "", http.StatusOK, 10*time.Second)
	gGone.waitStatus(ctx, t, c.dataURL, idPath, "", http.StatusOK, 10*time.Second)

	// Disconnect node C: cut its link and kill its only member.
	// Node C must be following by watch before the cut (its start-up
	// load could otherwise straddle the outage and hide the
	// compaction): a change through node A shows as applied on it.
	if _, err := a.ec2.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(idKept), HttpPutResponseHopLimit: aws.Int32(2),
	}); err != nil {
		t.Fatal(err)
	}
	waitApplied(ctx, t, c.ec2, 10*time.Second, idKept)
	time.Sleep(200 * time.Millisecond)

	proxy.Cut()
	members.kill(member)

	// Meanwhile, through node A: modify one, terminate one, launch one.
	if err := setHttpTokens(ctx, a.ec2, idKept, types.HttpTokensStateRequired); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{idGone}}); err != nil {
		t.Fatal(err)
	}
	idAdded := launch(ctx, t, a.ec2, added, onHost("node-c"), httpTokens(types.HttpTokensStateOptional))

	// Compact through the two live members at the current revision:
	// the history node C would resume its watch from is gone.
	var live []int
	for i := range cluster.Size() {
		if i != member {
			live = append(live, i)
		}
	}
	rev := cluster.Compact(ctx, live...)
	t.Logf("compacted at revision %d", rev)

	// Disconnected, node C serves what it had (fail-static).
	if status, _, err := gKept.get(ctx, c.dataURL, idPath, ""); err != nil || status != http.StatusOK {
		t.Errorf("disconnected node C, %s without a token: %d %v; want the last snapshot's 200", kept, status, err)
	}
	if status, _, err := gGone.get(ctx, c.dataURL, idPath, ""); err != nil || status != http.StatusOK {
		t.Errorf("disconnected node C, %s: %d %v; want the last snapshot's 200", gone, status, err)
	}

	// Bring the member back; once it has applied the compaction,
	// reconnect node C.
	members.restart(member)
	cluster.WaitCompacted(ctx, member, rev)
	proxy.Heal()

	gKept.waitStatus(ctx, t, c.dataURL, idPath, "", http.StatusUnauthorized, 20*time.Second)
	gGone.waitStatus(ctx, t, c.dataURL, idPath, "", http.StatusNotFound, 10*time.Second)
	if got := gAdded.waitStatus(ctx, t, c.dataURL, idPath, "", http.StatusOK, 10*time.Second); got != idAdded {
		t.Errorf("node C: %s is %q, want %q", added, got, idAdded)
	}
	if !strings.Contains(c.logs.String(), "watch history compacted") {
		t.Errorf("node C converged without reporting a reload after the compaction")
	}
	// And it follows again: a new change arrives by the watch.
	if err := setHttpTokens(ctx, a.ec2, idKept, types.HttpTokensStateOptional); err != nil {
		t.Fatal(err)
	}
	gKept.waitStatus(ctx, t, c.dataURL, idPath, "", http.StatusOK, 10*time.Second)
}

func (f *fleet) everyMemberKilledNodesServeAndWritesFailCleanly(t *testing.T) {
	ctx, members, a, b, idA, idB, gA, gB := f.ctx, f.members, f.a, f.b, f.idA, f.idB, f.gA, f.gB
	t.Cleanup(members.restartDown)
	// Tokens issued before the outage.
	tokA := gA.mustToken(ctx, t, a.dataURL, 300)
	tokB := gB.mustToken(ctx, t, b.dataURL, 300)
	gA.waitStatus(ctx, t, a.dataURL, idPath, "", http.StatusOK, 10*time.Second)
	gB.waitStatus(ctx, t, b.dataURL, idPath, "", http.StatusOK, 10*time.Second)

	load := startFleetLoad(ctx, loadTarget{a, gA, idA}, loadTarget{b, gB, idB})
	members.kill(0, 1, 2)

	// Writes fail with EC2's Unavailable, promptly.
	const newAddr = "127.0.0.41"
	start := time.Now()
	err := setHttpTokens(ctx, a.ec2, idA, types.HttpTokensStateRequired)
	if code := apiclient.ErrorCode(err); code != "Unavailable" {
		t.Errorf("ModifyInstanceMetadataOptions with etcd down: %v (code %q), want Unavailable", err, code)
	}
	_, err = b.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0abcdef1234567890"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		PrivateIpAddress: aws.String(newAddr), Placement: &types.Placement{HostId: aws.String("node-b")},
	})
	if code := apiclient.ErrorCode(err); code != "Unavailable" {
		t.Errorf("RunInstances with etcd down: %v (code %q), want Unavailable", err, code)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("two failing writes took %s: they must fail promptly, not hang", d)
	}

	// Both nodes keep answering, with old tokens and with new ones.
	for _, c := range []struct {
		node *fleetNode
		g    *fleetGuest
		id   string
		tok  string
	}{{a, gA, idA, tokA}, {b, gB, idB, tokB}} {
		if status, body, err := c.g.get(ctx, c.node.dataURL, idPath, c.tok); err != nil || status != http.StatusOK || body != c.id {
			t.Errorf("%s with etcd down, token from before: %d %q %v", c.node.name, status, body, err)
		}
		if status, body, err := c.g.get(ctx, c.node.dataURL, idPath, ""); err != nil || status != http.StatusOK || body != c.id {
			t.Errorf("%s with etcd down, IMDSv1: %d %q %v (a failed write must not half-apply)", c.node.name, status, body, err)
		}
		tok, err := c.g.token(ctx, c.node.dataURL, 60)
		if err != nil {
			t.Errorf("%s with etcd down, new token: %v", c.node.name, err)
			continue
		}
		if status, body, err := c.g.get(ctx, c.node.dataURL, "/latest/meta-data/instance-id", tok); err != nil || status != http.StatusOK || body != c.id {
			t.Errorf("%s with etcd down, new token: %d %q %v", c.node.name, status, body, err)
		}
	}

	members.restart(0, 1, 2)
	t.Logf("cluster back %s after the kill", time.Since(start).Round(time.Millisecond))

	// Nothing of the failed writes was stored: the options are as
	// before, and the address is free.
	var out *ec2.DescribeInstancesOutput
	retryWrite(ctx, t, "DescribeInstances after the outage", 20*time.Second, func() error {
		var err error
		out, err = a.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{idA}})
		return err
	})
	if got := out.Reservations[0].Instances[0].MetadataOptions.HttpTokens; got != types.HttpTokensStateOptional {
		t.Errorf("after the outage HttpTokens of %s is %s: the failed modification was stored", idA, got)
	}
	var newID string
	retryWrite(ctx, t, "RunInstances after the outage", 20*time.Second, func() error {
		out, err := b.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0abcdef1234567890"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			PrivateIpAddress: aws.String(newAddr), Placement: &types.Placement{HostId: aws.String("node-b")},
			MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateOptional},
		})
		if err == nil {
			newID = aws.ToString(out.Instances[0].InstanceId)
		}
		return err
	})

	// New changes reach both nodes, each made through the other one.
	retryWrite(ctx, t, "HttpTokens=required on node A's instance through node B", 20*time.Second, func() error {
		return setHttpTokens(ctx, b.ec2, idA, types.HttpTokensStateRequired)
	})
	retryWrite(ctx, t, "HttpTokens=required on node B's instance through node A", 20*time.Second, func() error {
		return setHttpTokens(ctx, a.ec2, idB, types.HttpTokensStateRequired)
	})
	gA.waitStatus(ctx, t, a.dataURL, idPath, "", http.StatusUnauthorized, 20*time.Second)
	gB.waitStatus(ctx, t, b.dataURL, idPath, "", http.StatusUnauthorized, 20*time.Second)
	if got := newFleetGuest(t, newAddr).waitStatus(ctx, t, b.dataURL, idPath, "", http.StatusOK, 20*time.Second); got != newID {
		t.Errorf("node B serves %s as %q, want %q", newAddr, got, newID)
	}
	load.stop(t, 20)
}

// BenchmarkFleetPropagation measures how long a change made through one
// node's control plane takes to be enforced by another node's data plane,
// on a three-member etcd cluster: 100 HttpTokens flips per iteration.
func BenchmarkFleetPropagation(b *testing.B) {
	cluster := etcdtest.Start(b, etcdtest.Options{Members: 3})
	prefix := fleetPrefix(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	na := startFleetNode(b, "node-a", cluster.Endpoints(), prefix, "--log-level", "warn")
	nb := startFleetNode(b, "node-b", cluster.Endpoints(), prefix, "--log-level", "warn")
	const addr = "127.0.0.22"
	id := launch(ctx, b, na.ec2, addr, onHost("node-b"), httpTokens(types.HttpTokensStateOptional))
	g := newFleetGuest(b, addr)
	g.waitStatus(ctx, b, nb.dataURL, "/latest/meta-data/instance-id", "", http.StatusOK, 10*time.Second)
	var all []time.Duration
	b.ResetTimer()
	for range b.N {
		lat, _, _ := measurePropagation(ctx, b, na, nb, id, g, 100)
		all = append(all, lat...)
	}
	b.StopTimer()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
	b.Logf("fleet propagation: p50=%.1fms p99=%.1fms over %d changes", ms(percentile(all, 0.50)), ms(percentile(all, 0.99)), len(all))
}
