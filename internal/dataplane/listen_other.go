//go:build !linux

package dataplane

import "syscall"

// deferAccept is a no-op where TCP_DEFER_ACCEPT does not exist.
func deferAccept(_, _ string, _ syscall.RawConn) error { return nil }
