//go:build unix

package dataplane

import (
	"errors"
	"net"
	"syscall"
)

// readNow reads what c has already received, without waiting: the count of
// bytes read, 0 when nothing has arrived yet, or -1 when the peer has
// closed or the connection failed. The refusal path uses it to answer a
// client that sent its request with the connection on the spot, in the
// accept loop, without a goroutine or a descriptor held past the answer.
func readNow(c net.Conn, buf []byte) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := 0
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf) // the socket is non-blocking
		return true
	}); err != nil {
		return -1
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		return 0
	case rerr != nil, n == 0:
		return -1
	}
	return n
}
