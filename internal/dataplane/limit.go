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
	// Callers that belong to no instance share one budget of the same rate.
	Rate float64
	// Burst is how many requests may arrive at once above the rate
	// (default: Rate, i.e. one second's worth).
	Burst int
	// MaxConnsPerInstance caps the connections one instance may have in
	// service at once; 0 means unlimited. A connection over the cap is
	// answered 429 (see Guard), not closed.
	MaxConnsPerInstance int
	// MaxConns caps every connection the data plane holds (in service and
	// being refused), across instances: the process's descriptor budget.
	// 0 means unlimited.
	MaxConns int
}

// ConnBudget sizes the connection limits from the process's open-file
// limit (RLIMIT_NOFILE). EC2 itself has no connection cap (its limit is
// packets per second, which Rate models); a cap only defends the
// descriptors this process needs to keep serving. Three quarters of the
// limit go to data-plane connections and the rest stays for the store,
// the control plane and log files; one instance may hold an eighth of the
// data-plane share (at least 64), so that no single guest can take the
// budget from the others.
func ConnBudget(nofile uint64) (total, perInstance int) {
	const ceiling = 1 << 24
	n := int(min(nofile, ceiling))
	total = max(n*3/4, 64)
	perInstance = max(total/8, 64)
	return total, min(perInstance, total)
}

// Defaults of the Guard's bounds on connections it refuses.
const (
	// DefaultMaxShedPerInstance is how many connections of one instance may
	// wait for their request head to be refused (a client that sends its
	// request with the connection never waits: it is answered at once).
	// Beyond it the instance's connections are closed without reading.
	DefaultMaxShedPerInstance = 4
	// DefaultMaxUnknownConns is the connection budget shared by every caller
	// that belongs to no instance.
	DefaultMaxUnknownConns = 32
	// shedReadTimeout bounds how long a refused connection may take to send
	// its request head.
	shedReadTimeout = time.Second
	// maxHead is the longest request head the Guard reads to refuse it.
	maxHead = 16 << 10
)

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

// unknownKey is the rate-limit key shared by callers of no instance (no
// instance id is empty).
const unknownKey = ""

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

// Forget drops the buckets of the given instances at once (terminated or
// no longer served).
func (l *RateLimiter) Forget(ids ...string) {
	for _, id := range ids {
		if id != unknownKey {
			l.buckets.Delete(id)
		}
	}
}

// forget drops the buckets of instances no longer served.
func (l *RateLimiter) forget(s *Snapshot) {
	l.buckets.Range(func(k, _ any) bool {
		if id := k.(string); id != unknownKey && s.GuestByID(id) == nil {
			l.buckets.Delete(k)
		}
		return true
	})
}

// held reports how many buckets are kept (for tests).
func (l *RateLimiter) held() int {
	n := 0
	l.buckets.Range(func(_, _ any) bool { n++; return true })
	return n
}

// Conns counts the data plane's connections per instance and in total.
// The Guards of the IPv4 and IPv6 listeners share one, so an instance has
// one allowance whichever address it calls. An instance's entry exists
// only while it holds a connection: nothing is kept for an instance with
// none, and so nothing outlives a terminated one.
type Conns struct {
	perInstance, total, shedPer, unknown int

	mu    sync.Mutex
	all   int
	byKey map[string]*connCount
}

type connCount struct {
	open    int // in service (handed to the HTTP server)
	waiting int // being refused, waiting for the request head
}

// ConnsOptions size a Conns; zero fields take the defaults noted.
type ConnsOptions struct {
	// MaxPerInstance caps connections in service per instance (0: none).
	MaxPerInstance int
	// MaxTotal caps every connection held, in service or being refused
	// (0: none).
	MaxTotal int
	// MaxShedPerInstance bounds connections per instance waiting for their
	// request head to be refused (default DefaultMaxShedPerInstance).
	MaxShedPerInstance int
	// MaxUnknown bounds the connections of callers of no instance, all
	// together (default DefaultMaxUnknownConns).
	MaxUnknown int
}

// NewConns returns the connection accounting for o.
func NewConns(o ConnsOptions) *Conns {
	if o.MaxShedPerInstance <= 0 {
		o.MaxShedPerInstance = DefaultMaxShedPerInstance
	}
	if o.MaxUnknown <= 0 {
		o.MaxUnknown = DefaultMaxUnknownConns
	}
	return &Conns{perInstance: o.MaxPerInstance, total: o.MaxTotal, shedPer: o.MaxShedPerInstance, unknown: o.MaxUnknown, byKey: map[string]*connCount{}}
}

type admission int

const (
	admitServe admission = iota // hand to the HTTP server
	admitShed                   // answer 429 after reading the head
	admitDrop                   // close without reading: over every bound
)

// admit decides what becomes of a new connection from key; overRate says
// the caller is over its request rate. A connection admitted for service
// or for shedding is counted until its release.
func (c *Conns) admit(key string, overRate bool) admission {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total > 0 && c.all >= c.total {
		return admitDrop
	}
	n := c.byKey[key]
	if n == nil {
		n = &connCount{}
		c.byKey[key] = n
	}
	limit := c.perInstance
	if key == unknownKey {
		limit = c.unknown
	}
	if !overRate && (limit <= 0 || n.open < limit) {
		n.open++
		c.all++
		return admitServe
	}
	// Answering from the head already received costs no wait, so it is
	// not bounded here; see (*Guard).refuse.
	return admitShed
}

// wait counts a refused connection that must wait for its head; false
// when the key is at its bound and the connection must be dropped.
func (c *Conns) wait(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.byKey[key]
	bound := c.shedPer
	if key == unknownKey {
		bound = min(c.shedPer, c.unknown)
	}
	if n == nil || n.waiting >= bound || (c.total > 0 && c.all >= c.total) {
		c.dropEmpty(key, n)
		return false
	}
	n.waiting++
	c.all++
	return true
}

// release ends the count of one connection of key.
func (c *Conns) release(key string, served bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.byKey[key]
	if n == nil {
		return
	}
	if served {
		n.open--
	} else {
		n.waiting--
	}
	c.all--
	c.dropEmpty(key, n)
}

// settle forgets key's entry if admit made one that nothing uses.
func (c *Conns) settle(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropEmpty(key, c.byKey[key])
}

func (c *Conns) dropEmpty(key string, n *connCount) {
	if n != nil && n.open == 0 && n.waiting == 0 {
		delete(c.byKey, key)
	}
}

// Open returns the connections of one instance (in service, waiting to be
// refused) and of the whole data plane; "" is the shared count of callers
// of no instance.
func (c *Conns) Open(id string) (open, waiting, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.byKey[id]; n != nil {
		open, waiting = n.open, n.waiting
	}
	return open, waiting, c.all
}

// Tracked is how many callers have an entry (for tests: it falls to zero
// when every connection is gone).
func (c *Conns) Tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}

// Guard wraps the data plane's listener to protect guests from each other
// before any HTTP work is spent. Every connection it accepts is counted
// against its instance (callers of no instance share one small allowance)
// and against the process's budget until it is really closed. A connection
// within its instance's cap and rate goes on to the HTTP server; one over
// the cap or from an instance over its request rate is answered
// "429 Too Many Requests" with Retry-After after its request head is read
// (so the close cannot reset the connection under the answer). Requests
// that arrive with their connection are answered on the spot; a
// connection whose head has not arrived yet waits for it in one of a few
// slots per instance (ConnsOptions.MaxShedPerInstance), and beyond those,
// or beyond the process's budget, a connection is closed without reading.
// So an instance that floods idle connections holds a handful of
// descriptors, and a guest in a loop cannot make the server parse and
// route every request at the others' expense.
type Guard struct {
	net.Listener
	snap  func() *Snapshot
	conns *Conns
	limit *RateLimiter
	now   func() time.Time
	obs   Observer
	// Rejected counts connections closed without an answer (over every
	// bound); Shed counts connections answered 429 by the Guard.
	h        *Handler // finds callers as the handler does (caller ranges)
	Rejected atomic.Int64
	Shed     atomic.Int64
	onReject func()
}

// GuardOptions configure a Guard; the zero value caps nothing but the
// connections of callers of no instance.
type GuardOptions struct {
	// MaxConnsPerInstance caps connections in service per instance (0: no
	// cap). Ignored when Conns is set.
	MaxConnsPerInstance int
	// Conns is the accounting shared with other Guards (nil: this Guard's
	// own, from MaxConnsPerInstance and the defaults).
	Conns *Conns
	// Handler whose rate limits apply at accept too (nil: none).
	Handler *Handler
	// OnReject is called for each connection closed without an answer.
	OnReject func()
}

// NewGuard wraps l.
func NewGuard(l net.Listener, snap func() *Snapshot, o GuardOptions) *Guard {
	g := &Guard{Listener: l, snap: snap, conns: o.Conns, onReject: o.OnReject, now: time.Now}
	if g.conns == nil {
		g.conns = NewConns(ConnsOptions{MaxPerInstance: o.MaxConnsPerInstance})
	}
	if o.Handler != nil {
		g.limit, g.now, g.obs, g.h = o.Handler.limit, o.Handler.now, o.Handler.obs, o.Handler
	}
	return g
}

// Conns returns the Guard's connection accounting.
func (cl *Guard) Conns() *Conns { return cl.conns }

// Accept returns the next connection that is within its instance's limits.
func (cl *Guard) Accept() (net.Conn, error) {
	for {
		c, err := cl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := unknownKey
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			if g := cl.guest(ap.Addr()); g != nil {
				key = g.Instance.InstanceID
			}
		}
		over := cl.limit != nil && cl.limit.over(key, cl.now())
		switch cl.conns.admit(key, over) {
		case admitServe:
			return &countedConn{Conn: c, key: key, conns: cl.conns}, nil
		case admitShed:
			cl.refuse(c, key, true)
		default:
			cl.refuse(c, key, false)
		}
	}
}

func (cl *Guard) guest(addr netip.Addr) *Guest {
	if cl.h != nil {
		return cl.h.guestAt(cl.snap(), addr)
	}
	return cl.snap().Guest(addr)
}

func (cl *Guard) drop(c net.Conn) {
	cl.Rejected.Add(1)
	if cl.onReject != nil {
		cl.onReject()
	}
	c.Close()
}

// refuse answers c with a 429. What the client sent with its connection is
// read at once without waiting; only a client that has not sent its whole
// head yet is given a slot to finish it in, if mayWait and one is free.
func (cl *Guard) refuse(c net.Conn, key string, mayWait bool) {
	var buf [4096]byte
	n := readNow(c, buf[:])
	if n < 0 {
		// The client is gone already: nothing to answer or count.
		cl.conns.settle(key)
		c.Close()
		return
	}
	var h headScanner
	if h.scan(buf[:n]) {
		cl.conns.settle(key)
		cl.answer(c, key)
		return
	}
	if !mayWait || !cl.conns.wait(key) {
		cl.conns.settle(key)
		cl.drop(c)
		return
	}
	go func() {
		defer cl.conns.release(key, false)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(shedReadTimeout)) // a socket deadline is real time, not the injected clock
		rbuf := make([]byte, 1024)
		total := n
		for total < maxHead {
			m, err := c.Read(rbuf)
			if h.scan(rbuf[:m]) {
				cl.answer(c, key)
				return
			}
			total += m
			if err != nil {
				return
			}
		}
	}()
}

// shedResponse is the whole answer to a connection the Guard refuses.
var shedResponse = []byte("HTTP/1.1 429 Too Many Requests\r\nServer: EC2ws\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n")

// answer writes the 429 and closes c.
func (cl *Guard) answer(c net.Conn, key string) {
	cl.Shed.Add(1)
	if cl.obs != nil && key != unknownKey {
		ev := RequestEvent{InstanceID: key, Status: http.StatusTooManyRequests, Outcome: OutcomeThrottled, Start: cl.now()}
		cl.obs.Request(nil, &ev)
	}
	_ = c.SetWriteDeadline(time.Now().Add(shedReadTimeout))
	_, _ = c.Write(shedResponse)
	c.Close()
}

// headScanner finds the end of a request head ("\r\n\r\n") across reads.
type headScanner struct{ tail uint32 }

func (h *headScanner) scan(b []byte) bool {
	for _, c := range b {
		h.tail = h.tail<<8 | uint32(c)
		if h.tail == 0x0d0a0d0a {
			return true
		}
	}
	return false
}

// countedConn releases its count when it is closed: the moment the
// descriptor is gone, whoever closes it (the HTTP server, a hijacker).
type countedConn struct {
	net.Conn
	key   string
	conns *Conns
	once  sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.conns.release(c.key, true) })
	return err
}

// NetConn returns the underlying connection (for socket options).
func (c *countedConn) NetConn() net.Conn { return c.Conn }
