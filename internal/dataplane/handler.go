package dataplane

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/mdtree"
)

// Tokens mints and verifies IMDSv2 session tokens (internal/token's Ring).
type Tokens interface {
	Mint(instanceID string, generation uint64, ttl time.Duration, now time.Time) (string, time.Time, error)
	Verify(token, instanceID string, generation uint64, now time.Time) (time.Duration, error)
}

// Signer signs identity documents (internal/identity).
type Signer interface {
	Sign(doc []byte) (signature, pkcs7, rsa2048 []byte, err error)
}

// Credentials reads the credential cache. role "" is the instance identity
// role. version changes whenever the entry does.
type Credentials interface {
	Credentials(instanceID, role string) (c mdtree.Credentials, version uint64, ok bool)
}

// Options are the optional knobs of the data plane handler.
type Options struct {
	Now    func() time.Time
	Logger *slog.Logger
	// Observer receives one event per answered request (metrics, audit).
	Observer Observer
	// IPv6Endpoint marks the handler behind the [fd00:ec2::254] listener:
	// it serves only instances with HttpProtocolIpv6=enabled.
	IPv6Endpoint bool
	// Limits are the per-instance request rate limits, used when
	// RateLimiter is nil.
	Limits Limits
	// RateLimiter, when set, is shared with other handlers (see
	// NewRateLimiter); it takes precedence over Limits.
	RateLimiter *RateLimiter
	// Trees renders and keeps the instances' trees; nil makes a
	// TreeCache of DefaultMaxTrees for this handler alone.
	Trees *TreeCache
	// Pending, when set, lets a caller the snapshot does not know yet wait
	// briefly for it while a source is bringing its instance (see Pending).
	Pending *Pending
	// Callers answers for callers whose address no instance holds: the
	// first range that contains the address names the instance to serve.
	// An instance holding the exact address always wins. It exists for
	// test set-ups (a container reached through a bridge, an in-process
	// test server), never for production fleets, where it would hand one
	// instance's credentials to whole networks.
	Callers []CallerRange
}

// CallerRange serves the instance InstanceID to callers in Prefix.
type CallerRange struct {
	Prefix     netip.Prefix
	InstanceID string
}

// Handler is the 169.254.169.254 HTTP surface.
type Handler struct {
	snap   func() *Snapshot
	tokens Tokens
	signer Signer
	creds  Credentials
	now    func() time.Time
	log    *slog.Logger
	obs    Observer
	ipv6   bool
	limit  *RateLimiter
	root   []byte   // the version listing at "/"
	strays strayLog // sampled log of unknown callers
	trees  *TreeCache
	wait   *Pending
	ranges []CallerRange
	events sync.Pool                 // *RequestEvent
	ttls   [maxTokenTTL + 1][]string // pre-formatted TTL header values
}

// maxTokenTTL is EC2's longest token lifetime, in seconds.
const maxTokenTTL = 21600

// Header names as EC2 spells them.
const (
	hdrToken    = "X-Aws-Ec2-Metadata-Token"
	hdrTokenTTL = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	hdrXFF      = "X-Forwarded-For"
	tokenPath   = "/latest/api/token"
)

// Pre-allocated header values: net/http only reads them, so sharing them
// keeps the hot path free of allocations.
var (
	hvServer      = []string{"EC2ws"}
	hvClose       = []string{"close"}
	hvText        = []string{"text/plain"}
	hvHTML        = []string{"text/html"}
	hvOctet       = []string{"application/octet-stream"}
	hvNone        = []string{"none"}
	hvZero        = []string{"0"}
	hvAllowGet    = []string{"GET, HEAD"}
	hvAllowToken  = []string{"OPTIONS, PUT"}
	notFoundBody  = xhtmlPage("404 - Not Found")
	forbiddenBody = xhtmlPage("403 - Forbidden")
	hvNotFoundLen = []string{strconv.Itoa(len(notFoundBody))}
	hvForbidLen   = []string{strconv.Itoa(len(forbiddenBody))}
)

func xhtmlPage(title string) []byte {
	return []byte(`<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
	"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>` + title + `</title>
 </head>
 <body>
  <h1>` + title + `</h1>
 </body>
</html>
`)
}

// New returns the data plane handler. snap returns the current snapshot.
func New(snap func() *Snapshot, tokens Tokens, signer Signer, creds Credentials, opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.Trees == nil {
		opts.Trees = NewTreeCache(0)
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = NewRateLimiter(opts.Limits)
	}
	h := &Handler{snap: snap, tokens: tokens, signer: signer, creds: creds, now: opts.Now, log: opts.Logger, obs: opts.Observer, ipv6: opts.IPv6Endpoint, limit: opts.RateLimiter, root: mdtree.RootListing(), trees: opts.Trees, wait: opts.Pending, ranges: opts.Callers}
	for i := range h.ttls {
		h.ttls[i] = []string{strconv.Itoa(i)}
	}
	h.events.New = func() any { return new(RequestEvent) }
	return h
}

// ServeHTTP answers one metadata request. The order of the checks follows
// docs/behaviour.md, "How a request is answered": caller, endpoint, method and path, token rules, tree.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	hdr := w.Header()
	hdr["Server"] = hvServer
	hdr["Connection"] = hvClose

	// The event comes from a pool: handed to an interface it would escape
	// to the heap, one allocation on every request.
	ev := h.events.Get().(*RequestEvent)
	*ev = RequestEvent{Method: r.Method, Start: start}
	ev.Status = h.serve(w, r, hdr, ev)
	ev.Duration = h.now().Sub(start)
	h.obs.Request(r, ev)
	*ev = RequestEvent{}
	h.events.Put(ev)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, hdr http.Header, ev *RequestEvent) int {
	g, native6 := h.caller(r)
	if g == nil {
		// Callers of no instance share one rate budget, so that they
		// cannot make the server log and answer without bound either.
		if h.limit != nil {
			if ok, wait := h.limit.allow(unknownKey, ev.Start); !ok {
				ev.Outcome = OutcomeThrottled
				hdr["Retry-After"] = h.ttls[min(int(wait/time.Second)+1, maxTokenTTL)]
				return empty(w, hdr, http.StatusTooManyRequests)
			}
		}
		ev.Outcome = OutcomeUnknownCaller
		h.strays.note(h.log, r.RemoteAddr, ev.Start)
		return notFound(w, hdr)
	}
	in := g.Instance
	ev.InstanceID = in.InstanceID
	if h.limit != nil {
		if ok, wait := h.limit.allow(in.InstanceID, ev.Start); !ok {
			ev.Outcome = OutcomeThrottled
			hdr["Retry-After"] = h.ttls[min(int(wait/time.Second)+1, maxTokenTTL)]
			return empty(w, hdr, http.StatusTooManyRequests)
		}
	}
	// The IPv6 endpoint exists only for instances that enabled it, and so
	// does any other path over native IPv6, whichever listener it reached.
	if (h.ipv6 || native6) && in.MetadataOptions.HttpProtocolIPv6 != imds.Enabled {
		// On EC2 the IPv6 endpoint does not exist for this instance: drop
		// the connection without an answer rather than invent one.
		ev.Outcome = OutcomeOther
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return 0
			}
		}
		return notFound(w, hdr)
	}
	if in.MetadataOptions.HttpEndpoint != imds.Enabled {
		ev.Outcome = OutcomeEndpointDisabled
		return forbiddenPage(w, hdr)
	}
	if r.RequestURI != "" && r.RequestURI[0] != '/' {
		// An absolute-form target ("GET http://host/latest/...") or "*":
		// IMDS is addressed by path only, so it is a wrong path.
		if r.Method == http.MethodPut {
			return empty(w, hdr, http.StatusForbidden)
		}
		return notFound(w, hdr)
	}
	if r.Method == http.MethodPut {
		return h.putToken(w, r, hdr, g, ev)
	}
	if r.URL.Path == tokenPath {
		if r.Method == http.MethodOptions {
			hdr["Allow"] = hvAllowToken
			return empty(w, hdr, http.StatusOK)
		}
		hdr["Allow"] = hvAllowToken
		return empty(w, hdr, http.StatusMethodNotAllowed)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr["Allow"] = hvAllowGet
		return empty(w, hdr, http.StatusMethodNotAllowed)
	}

	tok, hasToken := r.Header[hdrToken]
	if hasToken {
		ev.IMDSVersion = 2
		if _, xff := r.Header[hdrXFF]; xff {
			ev.Outcome = OutcomeForwarded
			return empty(w, hdr, http.StatusForbidden)
		}
		remaining, err := h.tokens.Verify(tok[0], in.InstanceID, in.Generation, h.now())
		if err != nil || len(tok) != 1 {
			ev.Outcome = OutcomeBadToken
			return empty(w, hdr, http.StatusUnauthorized)
		}
		secs := int(remaining / time.Second)
		hdr[hdrTokenTTL] = h.ttls[min(max(secs, 0), maxTokenTTL)]
	} else {
		ev.IMDSVersion = 1
		if in.MetadataOptions.HttpTokens == imds.Required {
			ev.Outcome = OutcomeNoTokenRejected
			return empty(w, hdr, http.StatusUnauthorized)
		}
	}

	version, rest, ok := splitPath(r.URL.Path)
	if !ok {
		return notFound(w, hdr)
	}
	if version == "" {
		ev.Outcome = OutcomeServed
		return h.body(w, r, hdr, g, hvText, h.root)
	}
	if !mdtree.KnownVersion(version) {
		return notFound(w, hdr)
	}
	tree := h.trees.tree(g)
	node, ok := tree.Lookup(version, rest)
	if !ok {
		return notFound(w, hdr)
	}
	switch node.Kind {
	case mdtree.Static, mdtree.Listing:
		ev.Outcome = OutcomeServed
		return h.body(w, r, hdr, g, hvText, node.Body)
	case mdtree.UserData:
		ev.Outcome = OutcomeServed
		return h.body(w, r, hdr, g, hvOctet, node.Body)
	case mdtree.IdentitySignature, mdtree.IdentityPKCS7, mdtree.IdentityRSA2048:
		sigs, err := g.signatures(h.signer, tree)
		if err != nil {
			h.log.Error("signing the identity document failed", "instance", in.InstanceID, "err", err)
			return empty(w, hdr, http.StatusInternalServerError)
		}
		ev.Outcome = OutcomeServed
		switch node.Kind {
		case mdtree.IdentitySignature:
			return h.body(w, r, hdr, g, hvText, sigs.signature)
		case mdtree.IdentityPKCS7:
			return h.body(w, r, hdr, g, hvText, sigs.pkcs7)
		default:
			return h.body(w, r, hdr, g, hvText, sigs.rsa2048)
		}
	case mdtree.RoleCredentials, mdtree.IdentityCredentials:
		role := node.Role
		if node.Kind == mdtree.IdentityCredentials {
			role = ""
		}
		body, c, ok := g.credentialsBody(h.creds, role)
		if !ok {
			// Not fetched yet (a launch or association moments ago): EC2 also
			// answers 404 until the first credentials exist.
			return notFound(w, hdr)
		}
		ev.Outcome = OutcomeServed
		ev.delivery = Delivery{Role: node.Role, AccessKeyID: c.AccessKeyID, Code: c.Code}
		ev.Delivery = &ev.delivery
		return h.body(w, r, hdr, g, hvText, body)
	case mdtree.RoleInfo:
		c, _, ok := h.creds.Credentials(in.InstanceID, node.Role)
		code, updated := "Success", in.LaunchTime
		if ok {
			code, updated = c.Code, c.LastUpdated
		}
		p := in.IAMInstanceProfile
		ev.Outcome = OutcomeServed
		return h.body(w, r, hdr, g, hvText, mdtree.IAMInfoJSON(code, updated, p.Arn, p.ID))
	case mdtree.IdentityCredentialsInfo:
		c, _, ok := h.creds.Credentials(in.InstanceID, "")
		updated := in.LaunchTime
		if ok {
			updated = c.LastUpdated
		}
		ev.Outcome = OutcomeServed
		return h.body(w, r, hdr, g, hvText, mdtree.IdentityCredentialsInfoJSON(updated, in.AccountID))
	}
	return notFound(w, hdr)
}

// Forget drops per-instance state (rate-limit buckets) of instances that are
// no longer in s.
func (h *Handler) Forget(s *Snapshot) {
	if h.limit != nil {
		h.limit.forget(s)
	}
}

// Release drops at once what the handler keeps for instances that s no
// longer serves, among those named in changed (all, when nil): their
// rendered trees and rate-limit buckets. The daemon calls it after every
// snapshot swap; handlers sharing a TreeCache and RateLimiter need it once.
func (h *Handler) Release(s *Snapshot, changed map[string]struct{}) {
	h.trees.Release(s, changed)
	if h.limit == nil {
		return
	}
	if changed == nil {
		h.limit.forget(s)
		return
	}
	for id := range changed {
		if s.GuestByID(id) == nil {
			h.limit.Forget(id)
		}
	}
}

// ForgetInstances drops the per-instance state of the given instances at
// once (their rate-limit buckets); the daemon calls it for every instance a
// snapshot swap removed.
func (h *Handler) ForgetInstances(ids ...string) {
	if h.limit != nil {
		h.limit.Forget(ids...)
	}
}

// caller finds the instance by the connection's source address, and
// whether that address is native IPv6 (not an IPv4-mapped one). Headers
// never change who the caller is.
func (h *Handler) caller(r *http.Request) (*Guest, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil, false
	}
	a := ap.Addr()
	native6 := a.Is6() && !a.Is4In6()
	g := h.guestAt(h.snap(), a)
	if h.wait == nil || (g != nil && !h.wait.Revoked(g.Instance)) {
		return g, native6
	}
	return h.wait.Wait(r.Context(), a, h.snap), native6
}

// guestAt is the instance serving addr: the one holding it, else the one
// named by the first caller range containing it.
func (h *Handler) guestAt(s *Snapshot, addr netip.Addr) *Guest {
	if g := s.Guest(addr); g != nil || len(h.ranges) == 0 {
		return g
	}
	addr = addr.Unmap()
	for _, cr := range h.ranges {
		if cr.Prefix.Contains(addr) {
			return s.GuestByID(cr.InstanceID)
		}
	}
	return nil
}

// putToken answers PUT: only /latest/api/token mints a token (docs/behaviour.md, "Tokens").
func (h *Handler) putToken(w http.ResponseWriter, r *http.Request, hdr http.Header, g *Guest, ev *RequestEvent) int {
	ev.IMDSVersion = 2
	if _, xff := r.Header[hdrXFF]; xff {
		ev.Outcome = OutcomeForwarded
		return empty(w, hdr, http.StatusForbidden)
	}
	// The raw target, not the decoded path: "/latest/api/%74oken" is not
	// the token path, and neither is anything with a query.
	if r.URL.Path != tokenPath || (r.RequestURI != "" && r.RequestURI != tokenPath) || r.URL.RawQuery != "" {
		return empty(w, hdr, http.StatusForbidden)
	}
	ttlHdr := r.Header[hdrTokenTTL]
	if len(ttlHdr) != 1 {
		return empty(w, hdr, http.StatusBadRequest)
	}
	ttl, ok := parseTTL(ttlHdr[0])
	if !ok {
		return empty(w, hdr, http.StatusBadRequest)
	}
	in := g.Instance
	tok, _, err := h.tokens.Mint(in.InstanceID, in.Generation, time.Duration(ttl)*time.Second, h.now())
	if err != nil {
		h.log.Error("minting a token failed", "instance", in.InstanceID, "err", err)
		return empty(w, hdr, http.StatusInternalServerError)
	}
	if err := setHopLimit(r.Context(), in.MetadataOptions.HttpPutResponseHopLimit); err != nil {
		// Never hand out a token whose reach we could not limit.
		h.log.Error("setting the hop limit failed", "instance", in.InstanceID, "err", err)
		return empty(w, hdr, http.StatusInternalServerError)
	}
	ev.Outcome = OutcomeTokenIssued
	hdr[hdrTokenTTL] = h.ttls[ttl]
	hdr["Content-Type"] = hvText
	hdr["Content-Length"] = h.ttls[min(len(tok), maxTokenTTL)] // the table holds every small number
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, tok)
	return http.StatusOK
}

// parseTTL reads a token TTL strictly: decimal digits only, no sign, no
// leading zero, no spaces, within 1..maxTokenTTL.
func parseTTL(v string) (int, bool) {
	if v == "" || len(v) > 5 || v[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, n >= 1 && n <= maxTokenTTL
}

func (h *Handler) body(w http.ResponseWriter, r *http.Request, hdr http.Header, g *Guest, ctype []string, b []byte) int {
	hdr["Content-Type"] = ctype
	hdr["Accept-Ranges"] = hvNone
	hdr["Last-Modified"] = g.lastModified
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return http.StatusOK
}

func empty(w http.ResponseWriter, hdr http.Header, status int) int {
	hdr["Content-Type"] = hvText
	hdr["Content-Length"] = hvZero
	w.WriteHeader(status)
	return status
}

func notFound(w http.ResponseWriter, hdr http.Header) int {
	hdr["Content-Type"] = hvHTML
	hdr["Content-Length"] = hvNotFoundLen
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(notFoundBody)
	return http.StatusNotFound
}

func forbiddenPage(w http.ResponseWriter, hdr http.Header) int {
	hdr["Content-Type"] = hvHTML
	hdr["Content-Length"] = hvForbidLen
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(forbiddenBody)
	return http.StatusForbidden
}

// signatures signs the identity document once per guest, on first use:
// signing every instance up front would make start-up with many instances slow.
func (g *Guest) signatures(s Signer, t *mdtree.Tree) (signatures, error) {
	g.sigOnce.Do(func() {
		sig, p7, rsa, err := s.Sign(t.Document())
		g.sigs, g.sigErr = signatures{sig, p7, rsa}, err
	})
	return g.sigs, g.sigErr
}

// credentialsBody renders a role's credentials JSON, once per credential
// version.
func (g *Guest) credentialsBody(src Credentials, role string) ([]byte, mdtree.Credentials, bool) {
	c, version, ok := src.Credentials(g.Instance.InstanceID, role)
	if !ok {
		return nil, c, false
	}
	if m := g.credCache.Load(); m != nil {
		if rc, ok := (*m)[role]; ok && rc.version == version {
			return rc.body, c, true
		}
	}
	body := mdtree.CredentialsJSON(c)
	g.credMu.Lock()
	defer g.credMu.Unlock()
	next := map[string]renderedCreds{}
	if m := g.credCache.Load(); m != nil {
		for k, v := range *m {
			next[k] = v
		}
	}
	next[role] = renderedCreds{version: version, body: body}
	g.credCache.Store(&next)
	return body, c, true
}

// strayLog logs callers that match no instance without letting them flood
// the log: at most one line per strayLogEvery, saying how many went unlogged.
type strayLog struct {
	next       atomic.Int64 // unix nanoseconds of the next allowed line
	suppressed atomic.Int64
}

const strayLogEvery = 10 * time.Second

func (s *strayLog) note(log *slog.Logger, remote string, now time.Time) {
	n := s.next.Load()
	if now.UnixNano() < n || !s.next.CompareAndSwap(n, now.Add(strayLogEvery).UnixNano()) {
		s.suppressed.Add(1)
		return
	}
	log.Warn("request from an address that belongs to no instance", "remote", remote, "unlogged_since_last", s.suppressed.Swap(0))
}

type connKey struct{}

// ConnContext records the accepted connection in the request context so the
// token handler can set the socket's hop limit. Set it as
// http.Server.ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}
