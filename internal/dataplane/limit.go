package dataplane

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Limits protect guests from each other. The zero value means no limits.
type Limits struct {
	// Rate is the sustained requests per second one instance may make;
	// 0 means unlimited. EC2 shares about 1,024 packets per second per
	// interface among its link-local services, so 1024 is a faithful default.
	Rate float64
	// Burst is how many requests may arrive at once above the rate
	// (default: Rate, i.e. one second's worth).
	Burst int
	// MaxConnsPerInstance caps the open connections of one instance; 0 means
	// unlimited. Connections over the cap are closed at once.
	MaxConnsPerInstance int
}

// bucket is a lock-free rate limiter (the generic cell rate algorithm): it
// keeps only the theoretical arrival time of the next request.
type bucket struct {
	tat atomic.Int64 // unix nanoseconds
}

// allow reports whether a request at now is within the limit and, if not,
// how long until one would be.
func (b *bucket) allow(now time.Time, interval time.Duration, burst int) (bool, time.Duration) {
	n := now.UnixNano()
	tolerance := int64(interval) * int64(burst-1)
	for {
		tat := b.tat.Load()
		t := max(tat, n)
		if t-n > tolerance {
			return false, time.Duration(t - n - tolerance)
		}
		if b.tat.CompareAndSwap(tat, t+int64(interval)) {
			return true, 0
		}
	}
}

// limiter holds the per-instance buckets. Buckets live outside the
// snapshot so that an instance's budget survives snapshot swaps.
type limiter struct {
	interval time.Duration
	burst    int
	buckets  sync.Map // instance id -> *bucket
}

func newLimiter(l Limits) *limiter {
	if l.Rate <= 0 {
		return nil
	}
	burst := l.Burst
	if burst <= 0 {
		burst = max(int(l.Rate), 1)
	}
	return &limiter{interval: time.Duration(float64(time.Second) / l.Rate), burst: burst}
}

func (l *limiter) allow(id string, now time.Time) (bool, time.Duration) {
	b, ok := l.buckets.Load(id)
	if !ok {
		b, _ = l.buckets.LoadOrStore(id, &bucket{})
	}
	return b.(*bucket).allow(now, l.interval, l.burst)
}

// forget drops the buckets of instances no longer served.
func (l *limiter) forget(s *Snapshot) {
	l.buckets.Range(func(k, _ any) bool {
		if s.GuestByID(k.(string)) == nil {
			l.buckets.Delete(k)
		}
		return true
	})
}

// ConnLimiter wraps a listener so that no instance holds more than max open
// connections: one guest opening connections in a loop cannot exhaust the
// server for the others. Callers that match no instance share one budget.
type ConnLimiter struct {
	net.Listener
	snap   func() *Snapshot
	max    int32
	counts sync.Map // instance id -> *atomic.Int32
	// Rejected counts connections closed for being over the cap.
	Rejected atomic.Int64
	onReject func()
}

// LimitConns returns l limited to max open connections per instance;
// onReject (optional) is called for each connection closed over the cap.
func LimitConns(l net.Listener, snap func() *Snapshot, max int, onReject func()) *ConnLimiter {
	return &ConnLimiter{Listener: l, snap: snap, max: int32(max), onReject: onReject}
}

// Accept returns the next connection within its instance's cap.
func (cl *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := cl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ""
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			if g := cl.snap().Guest(ap.Addr()); g != nil {
				key = g.Instance.InstanceID
			}
		}
		v, ok := cl.counts.Load(key)
		if !ok {
			v, _ = cl.counts.LoadOrStore(key, new(atomic.Int32))
		}
		n := v.(*atomic.Int32)
		if n.Add(1) > cl.max {
			n.Add(-1)
			cl.Rejected.Add(1)
			if cl.onReject != nil {
				cl.onReject()
			}
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, n: n}, nil
	}
}

type limitedConn struct {
	net.Conn
	n    *atomic.Int32
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.n.Add(-1) })
	return c.Conn.Close()
}

// NetConn returns the underlying connection (for socket options).
func (c *limitedConn) NetConn() net.Conn { return c.Conn }
