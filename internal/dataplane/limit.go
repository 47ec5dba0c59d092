package dataplane

import (
	"net"
	"net/http"
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

// RateLimiter holds the per-instance buckets. Buckets live outside the
// snapshot so that an instance's budget survives snapshot swaps, and one
// RateLimiter can serve several handlers (the IPv4 and IPv6 endpoints) so
// that an instance has one budget, whichever address it calls.
type RateLimiter struct {
	interval time.Duration
	burst    int
	buckets  sync.Map // instance id -> *bucket
}

// NewRateLimiter returns the limiter for l, or nil when l.Rate is 0
// (unlimited).
func NewRateLimiter(l Limits) *RateLimiter {
	if l.Rate <= 0 {
		return nil
	}
	burst := l.Burst
	if burst <= 0 {
		burst = max(int(l.Rate), 1)
	}
	return &RateLimiter{interval: time.Duration(float64(time.Second) / l.Rate), burst: burst}
}

// over reports, without spending budget, whether a request from id at now
// would be refused.
func (l *RateLimiter) over(id string, now time.Time) bool {
	b, ok := l.buckets.Load(id)
	if !ok {
		return false
	}
	n := now.UnixNano()
	return max(b.(*bucket).tat.Load(), n)-n > int64(l.interval)*int64(l.burst-1)
}

func (l *RateLimiter) allow(id string, now time.Time) (bool, time.Duration) {
	b, ok := l.buckets.Load(id)
	if !ok {
		b, _ = l.buckets.LoadOrStore(id, &bucket{})
	}
	return b.(*bucket).allow(now, l.interval, l.burst)
}

// forget drops the buckets of instances no longer served.
func (l *RateLimiter) forget(s *Snapshot) {
	l.buckets.Range(func(k, _ any) bool {
		if s.GuestByID(k.(string)) == nil {
			l.buckets.Delete(k)
		}
		return true
	})
}

// Guard wraps the data plane's listener to protect guests from each other
// before any HTTP work is spent: it closes connections over an instance's
// cap on open connections, and answers a connection from an instance that
// is over its request rate with a canned 429 (Retry-After) after reading
// just its request head. A guest in a loop would otherwise make the server
// accept, parse and answer every request, and the CPU that costs is taken
// from the other guests. Requests within the rate go on to the handler,
// which spends the budget (and answers 429 itself at the boundary).
type Guard struct {
	net.Listener
	snap   func() *Snapshot
	max    int32
	limit  *RateLimiter
	now    func() time.Time
	counts sync.Map // instance id -> *atomic.Int32
	obs    Observer
	h      *Handler // finds callers as the handler does (caller ranges)
	// Rejected counts connections closed for being over the cap; Shed
	// counts requests answered 429 at accept.
	Rejected atomic.Int64
	Shed     atomic.Int64
	onReject func()
}

// GuardOptions configure a Guard; the zero value caps nothing.
type GuardOptions struct {
	// MaxConnsPerInstance caps open connections per instance (0: no cap).
	MaxConnsPerInstance int
	// Handler whose rate limits apply at accept too (nil: none).
	Handler *Handler
	// OnReject is called for each connection closed over the cap.
	OnReject func()
}

// NewGuard wraps l.
func NewGuard(l net.Listener, snap func() *Snapshot, o GuardOptions) *Guard {
	g := &Guard{Listener: l, snap: snap, max: int32(o.MaxConnsPerInstance), onReject: o.OnReject, now: time.Now}
	if o.Handler != nil {
		g.limit, g.now, g.obs, g.h = o.Handler.limit, o.Handler.now, o.Handler.obs, o.Handler
	}
	return g
}

// Accept returns the next connection that is within its instance's limits.
func (cl *Guard) Accept() (net.Conn, error) {
	for {
		c, err := cl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ""
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			if g := cl.guest(ap.Addr()); g != nil {
				key = g.Instance.InstanceID
			}
		}
		if key != "" && cl.limit != nil && cl.limit.over(key, cl.now()) {
			cl.Shed.Add(1)
			go cl.shed(c, key)
			continue
		}
		if cl.max <= 0 {
			return c, nil
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

func (cl *Guard) guest(addr netip.Addr) *Guest {
	if cl.h != nil {
		return cl.h.guestAt(cl.snap(), addr)
	}
	return cl.snap().Guest(addr)
}

// shedResponse is the whole answer to a request over the rate limit.
var shedResponse = []byte("HTTP/1.1 429 Too Many Requests\r\nServer: EC2ws\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n")

// shed reads the request head (so that closing does not reset the
// connection under the answer), answers 429 and closes.
func (cl *Guard) shed(c net.Conn, id string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second)) // a socket deadline is real time, not the injected clock
	var buf [1024]byte
	var tail uint32 // the last four bytes read, to find "\r\n\r\n"
	total := 0
	for total < 16<<10 {
		n, err := c.Read(buf[:])
		for _, b := range buf[:n] {
			tail = tail<<8 | uint32(b)
			if tail == 0x0d0a0d0a {
				_, _ = c.Write(shedResponse)
				if cl.obs != nil {
					ev := RequestEvent{InstanceID: id, Status: http.StatusTooManyRequests, Outcome: OutcomeThrottled, Start: cl.now()}
					cl.obs.Request(nil, &ev)
				}
				return
			}
		}
		total += n
		if err != nil {
			return
		}
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
