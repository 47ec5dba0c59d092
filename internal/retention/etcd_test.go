//go:build integration

package retention

import (
	"fmt"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/etcd"
	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// The purge and its lease work on etcd (a fleet's store) as on bolt and
// memory: the lease is taken and checked in etcd transactions.
func TestPurgeOnEtcd(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	n := 0
	open := func(t *testing.T) imds.Store {
		n++
		s, err := etcd.Open(t.Context(), etcd.Config{Endpoints: c.Endpoints(), Prefix: fmt.Sprintf("/retention/%d", n),
			DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("purges_after_the_window", func(t *testing.T) { purgesAfterTheWindow(t, open(t)) })
	t.Run("one_node_at_a_time", func(t *testing.T) { oneNodeAtATime(t, open(t)) })
}
