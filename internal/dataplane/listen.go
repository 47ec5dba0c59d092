package dataplane

import (
	"context"
	"net"
)

// Listen opens a data-plane listener on network ("tcp4" or "tcp6": each
// data-plane address serves one family, so that an IPv6 caller always
// reaches the listener that applies the IPv6 rules). Where the system
// allows it, the kernel hands over a connection only once its first data
// has arrived (TCP_DEFER_ACCEPT): a client sends its request with the
// connection, so the Guard can answer or refuse it on the spot, while a
// connection that never sends costs this process no descriptor until the
// kernel gives up waiting (a few seconds).
func Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: deferAccept}
	return lc.Listen(ctx, network, addr)
}
