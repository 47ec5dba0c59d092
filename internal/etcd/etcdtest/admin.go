package etcdtest

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// RestartAll starts every killed member at once and waits until all are
// healthy. After the whole cluster was killed, members must come back
// together: one alone has no quorum and never turns healthy.
func (c *Cluster) RestartAll(members ...int) {
	c.t.Helper()
	for _, i := range members {
		c.launch(c.member(i))
	}
	for _, i := range members {
		c.WaitHealthy(i)
	}
}

// client is a raw etcd client on the given members, for what frontdesk
// itself never does (find the leader, compact).
func (c *Cluster) client(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	return cli
}

// Leader returns the index of the member that leads the cluster.
func (c *Cluster) Leader(ctx context.Context) int {
	c.t.Helper()
	cli := c.client(c.Endpoints()...)
	defer cli.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i, ep := range c.Endpoints() {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := cli.Status(sctx, ep)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal("etcdtest: no leader within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Compact compacts the cluster's history at its current revision through
// the given members, and returns that revision.
func (c *Cluster) Compact(ctx context.Context, members ...int) int64 {
	c.t.Helper()
	var eps []string
	for _, i := range members {
		eps = append(eps, c.Endpoint(i))
	}
	cli := c.client(eps...)
	defer cli.Close()
	resp, err := cli.Get(ctx, "/")
	if err != nil {
		c.t.Fatal(err)
	}
	rev := resp.Header.Revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		c.t.Fatalf("etcdtest: compact at %d: %v", rev, err)
	}
	return rev
}

// WaitCompacted waits until member i has applied a compaction at rev: a
// serializable read below it (answered from that member's own data) fails
// with ErrCompacted.
func (c *Cluster) WaitCompacted(ctx context.Context, i int, rev int64) {
	c.t.Helper()
	cli := c.client(c.Endpoint(i))
	defer cli.Close()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = cli.Get(rctx, "/", clientv3.WithRev(rev-1), clientv3.WithSerializable())
		cancel()
		if errors.Is(err, rpctypes.ErrCompacted) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcdtest: member %d did not apply the compaction at %d within 20s (last read: %v)", i, rev, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
