package imdstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/credentials"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/identity"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/token"
)

// Server is one instance's metadata service on a loopback port. Its methods
// are safe for concurrent use; the controls report a failure with the test's
// Fatalf, so call them from the test's goroutine, as Fatalf requires.
type Server struct {
	t     testing.TB // nil for a server from Start
	clock *clock
	store *memstore.Store
	// The daemon's parts, wired as the daemon wires them.
	keeper    *token.Keeper
	follower  *dataplane.Follower
	refresher *credentials.Refresher
	served    credentials.Served
	signer    *lazySigner
	trees     *dataplane.TreeCache
	handler   atomic.Pointer[dataplane.Handler]
	roles     *roleProvider

	ln     net.Listener
	http   *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	id, role, url string

	mu      sync.Mutex // serialises the controls
	callsMu sync.Mutex
	calls   []Call
}

// Call is one request the server answered.
type Call struct {
	Method string
	// Path is the request path, e.g. /latest/meta-data/instance-id.
	Path string
	// Token reports whether the request carried an IMDSv2 session token
	// (X-aws-ec2-metadata-token). The token request itself, PUT
	// /latest/api/token, carries none.
	Token bool
	// Status is the HTTP status of the answer.
	Status    int
	UserAgent string
	// Time is when the request arrived, on the server's clock.
	Time time.Time
}

// settleTimeout bounds how long a control waits for the server's background
// work (the snapshot follower, the credential refresher) to catch up.
const settleTimeout = 10 * time.Second

// New starts a Server for the test and stops it when the test ends. It
// fails the test if the server cannot start.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := start(t, opts)
	if err != nil {
		t.Fatalf("imdstest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a Server outside a test (an Example, a TestMain, a program).
// The caller must Close it. Controls called on it panic where a server from
// New would fail the test.
func Start(opts ...Option) (*Server, error) { return start(nil, opts) }

func start(t testing.TB, opts []Option) (*Server, error) {
	c := defaultConfig()
	for _, o := range opts {
		o(&c)
	}
	if c.start.IsZero() {
		c.start = time.Now()
	}
	c.start = c.start.UTC().Truncate(time.Second)
	clk := newClock(c.start)
	in, err := c.instance(c.start)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	store := memstore.New()
	s := &Server{t: t, clock: clk, store: store, id: in.InstanceID, trees: dataplane.NewTreeCache(0)}
	if in.IAMInstanceProfile != nil {
		s.role = in.IAMInstanceProfile.Role
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	s.keeper = token.NewKeeper(store, token.KeeperOptions{Now: clk.Now, Logger: log})
	if err := s.keeper.Load(ctx); err != nil {
		return nil, fmt.Errorf("token key ring: %w", err)
	}
	if err := store.Update(ctx, func(tx imds.Tx) error {
		in.OptionsRevision = tx.Revision() + 1
		return imds.PutInstance(tx, in)
	}); err != nil {
		return nil, fmt.Errorf("launch the instance: %w", err)
	}
	s.follower = dataplane.NewFollower(store, dataplane.FollowerOptions{
		Now:    clk.Now,
		Logger: log,
		OnSecret: func(name string, v []byte) {
			if name == token.SecretName {
				_ = s.keeper.Apply(v)
			}
		},
	})
	if _, err := s.follower.Load(ctx); err != nil {
		return nil, fmt.Errorf("load the store: %w", err)
	}
	s.roles = &roleProvider{local: credentials.NewLocal(credentials.LocalOptions{Now: clk.Now, Lifetime: c.lifetime})}
	s.refresher = credentials.NewRefresher(func(string) credentials.Provider { return s.roles },
		credentials.RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: log, Jitter: -1})
	s.served = credentials.Served{Roles: s.refresher, Identity: credentials.NewIdentity(clk.Now)}
	s.signer = &lazySigner{store: store, now: clk.Now}
	s.setHandler(dataplane.Limits{})

	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.url = "http://" + s.ln.Addr().String()
	s.http = dataplane.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handler.Load().ServeHTTP(w, r)
	}))
	// The daemon's write timeout would cut off the first signature request,
	// which waits for the signing keys to be generated (seconds, longer
	// under the race detector).
	s.http.WriteTimeout = 2 * time.Minute
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { _ = s.follower.Run(runCtx) })
	s.wg.Go(func() { _ = s.refresher.Run(runCtx) })
	ln := s.ln
	s.wg.Go(func() { _ = s.http.Serve(ln) })

	if s.role != "" {
		// Like a booting guest, the first request finds credentials.
		s.refresher.SetTargets([]credentials.Target{{InstanceID: in.InstanceID, AccountID: in.AccountID, Role: s.role,
			RoleArn: "arn:aws:iam::" + in.AccountID + ":role/" + s.role}})
		wctx, wcancel := context.WithTimeout(ctx, settleTimeout)
		err := s.refresher.Wait(wctx, in.InstanceID, s.role)
		wcancel()
		if err != nil {
			return nil, fmt.Errorf("first role credentials: %w", err)
		}
		if err := s.settle(); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

// Close stops the server and releases its port. It may be called more than
// once.
func (s *Server) Close() {
	s.once.Do(func() {
		if s.http != nil {
			_ = s.http.Close()
		} else if s.ln != nil {
			s.ln.Close()
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		_ = s.store.Close()
	})
}

// URL is the endpoint to give an SDK, e.g. http://127.0.0.1:40123: the
// Endpoint of feature/ec2/imds's Options, config.WithEC2IMDSEndpoint, or
// AWS_EC2_METADATA_SERVICE_ENDPOINT (botocore wants a trailing "/" there).
func (s *Server) URL() string { return s.url }

// InstanceID is the id the server's instance answers at
// meta-data/instance-id.
func (s *Server) InstanceID() string { return s.id }

// Calls returns every request answered so far, in order.
func (s *Server) Calls() []Call {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	return append([]Call(nil), s.calls...)
}

// observe records a call; it is the data plane's Observer hook.
func (s *Server) observe(r *http.Request, ev *dataplane.RequestEvent) {
	c := Call{Method: ev.Method, Status: ev.Status, Time: ev.Start}
	if r != nil {
		c.Path = r.URL.Path
		c.UserAgent = r.UserAgent()
		_, c.Token = r.Header["X-Aws-Ec2-Metadata-Token"]
	}
	s.callsMu.Lock()
	s.calls = append(s.calls, c)
	s.callsMu.Unlock()
}

type observerFunc func(*http.Request, *dataplane.RequestEvent)

func (f observerFunc) Request(r *http.Request, ev *dataplane.RequestEvent) { f(r, ev) }

// loopback are the callers a Server answers for: its instance's own address
// is a documentation address no test can send from.
func loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// setHandler installs a data plane handler with the given rate limits. The
// tree cache is shared, so a new handler renders nothing again.
func (s *Server) setHandler(l dataplane.Limits) {
	var callers []dataplane.CallerRange
	for _, p := range loopback() {
		callers = append(callers, dataplane.CallerRange{Prefix: p, InstanceID: s.id})
	}
	s.handler.Store(dataplane.New(s.follower.Snapshot, s.keeper, s.signer, s.served, dataplane.Options{
		Now:         s.clock.Now,
		Logger:      slog.New(slog.DiscardHandler),
		Observer:    observerFunc(s.observe),
		RateLimiter: dataplane.NewRateLimiter(l),
		Trees:       s.trees,
		Callers:     callers,
	}))
}

// settle waits until the credential refresher has nothing due at the
// server's current time.
func (s *Server) settle() error {
	deadline := time.Now().Add(settleTimeout)
	for !s.refresher.Idle() {
		if time.Now().After(deadline) {
			return errors.New("the credential refresher did not settle")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// fatalf reports a control that could not be carried out.
func (s *Server) fatalf(format string, args ...any) {
	if s.t != nil {
		s.t.Helper()
		s.t.Fatalf("imdstest: "+format, args...)
	}
	panic(fmt.Sprintf("imdstest: "+format, args...))
}

func (s *Server) helper() {
	if s.t != nil {
		s.t.Helper()
	}
}

// lazySigner creates the identity document's signing keys on first use:
// generating them takes seconds, and most tests never ask for a signature.
type lazySigner struct {
	store imds.Store
	now   func() time.Time
	once  sync.Once
	s     *identity.Signer
	err   error
}

func (l *lazySigner) Sign(doc []byte) ([]byte, []byte, []byte, error) {
	l.once.Do(func() { l.s, l.err = identity.LoadOrCreate(context.Background(), l.store, l.now) })
	if l.err != nil {
		return nil, nil, nil, l.err
	}
	sigs, err := l.s.Sign(doc)
	return sigs.Signature, sigs.PKCS7, sigs.RSA2048, err
}

// instance is the instance a configuration launches.
func (c config) instance(now time.Time) (*imds.Instance, error) {
	id := c.instanceID
	if id == "" {
		id = "i-" + randomHex(17)
	}
	if !imds.ValidInstanceID(id) {
		return nil, fmt.Errorf("instance id %q is not i- and 8 or 17 hex digits", id)
	}
	zone := c.zone
	if zone == "" {
		zone = c.region + "a"
	}
	req := c.options.request()
	if req.InstanceMetadataTags == nil && len(c.tags) > 0 {
		req.InstanceMetadataTags = ptr(imds.Enabled)
	}
	opts, err := imds.LaunchOptions(req, imds.DefaultAccountDefaults(), false)
	if err != nil {
		return nil, fmt.Errorf("metadata options: %w", err)
	}
	const account = "123456789012"
	domain := "ec2.internal"
	if c.region != "us-east-1" {
		domain = c.region + ".compute.internal"
	}
	in := &imds.Instance{
		InstanceID:        id,
		ReservationID:     "r-" + randomHex(17),
		AccountID:         account,
		Generation:        uint64(now.UnixNano()),
		State:             imds.StateRunning,
		ImageID:           "ami-0abcdef1234567890",
		AMIManifestPath:   "(unknown)",
		InstanceType:      c.instanceType,
		Architecture:      "x86_64",
		LaunchTime:        now,
		InstanceLifecycle: "on-demand",
		InstanceAction:    "none",
		Monitoring:        "disabled",
		Profile:           "default-hvm",
		Placement:         imds.Placement{Region: c.region, AvailabilityZone: zone, Tenancy: "default"},
		NetworkInterfaces: []imds.NetworkInterface{{
			MAC:            "02:00:c0:00:02:0a",
			InterfaceID:    "eni-" + randomHex(17),
			OwnerID:        account,
			SubnetID:       "subnet-" + randomHex(17),
			SubnetIPv4CIDR: "192.0.2.0/24",
			VPCID:          "vpc-" + randomHex(17),
			VPCIPv4CIDRs:   []string{"192.0.2.0/24"},
			PrivateIPv4s:   []string{"192.0.2.10"},
			LocalHostname:  "ip-192-0-2-10." + domain,
			SecurityGroups: []imds.SecurityGroup{{ID: "sg-" + randomHex(17), Name: "default"}},
		}},
		UserData:        c.userData,
		MetadataOptions: opts,
	}
	keys := make([]string, 0, len(c.tags))
	for k := range c.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in.Tags = append(in.Tags, imds.Tag{Key: k, Value: c.tags[k]})
	}
	if c.role != "" {
		if strings.ContainsAny(c.role, "/ ") {
			return nil, fmt.Errorf("role name %q contains a slash or a space", c.role)
		}
		in.IAMInstanceProfile = &imds.IAMInstanceProfile{
			Arn:  "arn:aws:iam::" + account + ":instance-profile/" + c.role,
			ID:   "AIPA" + strings.ToUpper(randomHex(8)),
			Role: c.role,
		}
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	return in, nil
}

func (o MetadataOptions) request() imds.OptionsRequest {
	var r imds.OptionsRequest
	if o.HttpTokens != "" {
		r.HttpTokens = ptr(o.HttpTokens)
	}
	if o.HttpEndpoint != "" {
		r.HttpEndpoint = ptr(o.HttpEndpoint)
	}
	if o.HttpPutResponseHopLimit != 0 {
		r.HttpPutResponseHopLimit = ptr(o.HttpPutResponseHopLimit)
	}
	if o.HttpProtocolIPv6 != "" {
		r.HttpProtocolIPv6 = ptr(o.HttpProtocolIPv6)
	}
	if o.InstanceMetadataTags != "" {
		r.InstanceMetadataTags = ptr(o.InstanceMetadataTags)
	}
	return r
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)[:n]
}

func ptr[T any](v T) *T { return &v }
