package dataplane

import (
	"context"
	"net"
	"testing"
)

// The hop limit is set on the accepted socket itself; reading the socket
// option back proves the kernel will stamp it on the token response. The
// packet-level proof (a guest two hops away gets nothing) is the network
// namespace test in cmd/frontdesk.
func TestSetHopLimitSetsSocketTTL(t *testing.T) {
	for _, network := range []struct{ name, addr string }{{"ipv4", "127.0.0.1:0"}, {"ipv6", "[::1]:0"}} {
		t.Run(network.name, func(t *testing.T) {
			l, err := net.Listen("tcp", network.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := net.Dial("tcp", l.Addr().String())
				if err == nil {
					defer c.Close()
					var b [1]byte
					c.Read(b[:])
				}
			}()
			c, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := ConnContext(context.Background(), c)
			for _, want := range []int{1, 2, 64} {
				if err := setHopLimit(ctx, want); err != nil {
					t.Fatal(err)
				}
				got, err := socketHopLimit(c)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("hop limit %d, want %d", got, want)
				}
			}
		})
	}
}
