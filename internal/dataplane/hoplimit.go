package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// setHopLimit sets the IP TTL (IPv6 hop limit) of the connection carrying the
// current request, so the token response cannot travel more than n hops
// (docs/behaviour.md, "Hop limit"). IMDS closes every connection after one response, so no later
// response is affected. Without a recorded connection (a test recorder)
// there is nothing to limit.
func setHopLimit(ctx context.Context, n int) error {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	if c == nil {
		return nil
	}
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("connection %T has no socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	v4 := true
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		v4 = ap.Addr().Is4() || ap.Addr().Is4In6()
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v4 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, n)
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, n)
	})
	return errors.Join(err, serr)
}

// socketHopLimit reads back what setHopLimit set (for tests).
func socketHopLimit(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.New("no socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	ap, _ := netip.ParseAddrPort(c.LocalAddr().String())
	var v int
	var serr error
	err = raw.Control(func(fd uintptr) {
		if ap.Addr().Is4() || ap.Addr().Is4In6() {
			v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL)
			return
		}
		v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS)
	})
	return v, errors.Join(err, serr)
}
