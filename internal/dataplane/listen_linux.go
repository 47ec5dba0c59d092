package dataplane

import "syscall"

// deferAccept sets TCP_DEFER_ACCEPT (one second) on a listening socket.
// Failing to set it is not fatal: the Guard bounds idle connections anyway.
func deferAccept(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
	})
}
