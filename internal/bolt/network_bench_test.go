package bolt_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

// BenchmarkSubnetAllocation measures what RunInstances reads to allocate
// the lowest free address of a /16 subnet holding `used` live instances
// (packed at the bottom, as lowest-first allocation leaves them), against
// the baseline of what a launch with an explicit address reads (one index
// lookup), in the same run and on the same store:
//
//	go test -run XXX -bench SubnetAllocation ./internal/bolt
func BenchmarkSubnetAllocation(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	subnet := netip.MustParsePrefix("10.0.0.0/16")
	first, last, _ := imds.SubnetHosts(subnet)
	filled := 0
	fill := func(n int) {
		a := first
		for range filled {
			a = a.Next()
		}
		for filled < n {
			err := st.Update(ctx, func(tx imds.Tx) error {
				for i := 0; i < 2000 && filled < n; i++ {
					if err := imds.PutInstance(tx, storetest.NewInstance(b, 1+filled, a.String())); err != nil {
						return err
					}
					a = a.Next()
					filled++
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("baseline_explicit_address_lookup", func(b *testing.B) {
		for range b.N {
			err := st.View(ctx, func(tx imds.Tx) error {
				_, err := imds.InstanceIDByAddress(tx, "10.0.255.1")
				return err
			})
			if err == nil {
				b.Fatal("10.0.255.1 is held")
			}
		}
	})
	for _, used := range []int{0, 250, 1000, 10000, 60000} {
		fill(used)
		want := first
		for range used {
			want = want.Next()
		}
		b.Run(fmt.Sprintf("lowest_free_with_%d_used", used), func(b *testing.B) {
			for range b.N {
				err := st.View(ctx, func(tx imds.Tx) error {
					got, err := imds.FreeAddresses(tx, first, last, 1, nil)
					if err != nil {
						return err
					}
					if len(got) != 1 || got[0] != want {
						return fmt.Errorf("allocated %v, want %s", got, want)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
