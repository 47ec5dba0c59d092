package controlplane

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/region"
	"golang.org/x/net/netutil"
)

// DefaultMaxBodyBytes bounds a request body, sized to the largest
// legitimate request: RunInstances (or ModifyInstanceAttribute) with the
// largest user data, 16 KiB raw, is about 22 KiB in base64 and at most
// 66 KiB form-encoded; 50 tags of the longest keys and values add at most
// 58 KiB more. 256 KiB leaves room for the rest of the parameters while a
// caller without credentials cannot make the server buffer more (and such
// a caller is refused before its body is read at all).
const DefaultMaxBodyBytes = 256 << 10

// DefaultMaxConns is the default cap on concurrent control-plane
// connections (see LimitListener).
const DefaultMaxConns = 128

// apiVersion is the only EC2 API version frontdesk speaks; every current SDK
// and the AWS CLI send it.
const apiVersion = "2016-11-15"

// Options are the optional knobs of a Server; the zero value works.
type Options struct {
	// Now is the clock (signature skew, launch times, event defaults).
	Now func() time.Time
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Region is the region frontdesk pretends to be (default us-east-1).
	// Signatures must be scoped to it.
	Region string
	// AccountID owns every instance (default 123456789012).
	AccountID string
	// Zones are the region's availability zones (default the region's a, b
	// and c); the first is where an instance without one is placed.
	Zones []string
	// DataPlane tells whether a metadata-options change has reached the
	// local data plane; nil reports every change applied.
	DataPlane DataPlane
	// Health answers /readyz; nil is always ready and lists no components.
	Health Health
	// Observer hears every request and every committed change; nil hears
	// nothing.
	Observer Observer
	// V1Usage reports the fleet's tokenless (IMDSv1) traffic per instance
	// over a window, for FrontdeskDescribeImdsUsage; nil answers
	// UnsupportedOperation (an empty set would read as "no calls").
	V1Usage UsageReporter
	// PublicIPv4Pool, when valid, is the IPv4 block AllocateAddress and
	// RunInstances AssociatePublicIpAddress take public addresses from.
	// Without it neither can give out an address.
	PublicIPv4Pool netip.Prefix
	// KeyPairs looks up the OpenSSH public key of a key-pair name given as
	// RunInstances KeyName; an unknown name is InvalidKeyPair.NotFound. Nil
	// looks the name up among the stored key pairs (ImportKeyPair,
	// CreateKeyPair) in the launch's transaction.
	KeyPairs func(name string) (openssh string, ok bool)
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// ExtraRoutes are added to the mux (pattern → handler), e.g.
	// "GET /metrics". They are not authenticated by the control plane.
	ExtraRoutes map[string]http.Handler
}

// Server is the control plane: the EC2 Query API subset, frontdesk's
// extension actions, and health endpoints.
type Server struct {
	store    imds.Store
	admin    AdminCredentials
	opts     Options
	log      *slog.Logger
	verifier *verifier
	actions  map[string]action
	mux      *http.ServeMux
}

// action handles one EC2 action: it parses p, does at most one store Update,
// and returns the answer.
type action func(ctx context.Context, p params) (response, error)

// New returns a control plane over store whose requests must be signed with
// the admin key (see LoadOrCreateAdmin).
func New(store imds.Store, admin AdminCredentials, opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "123456789012"
	}
	if len(opts.Zones) == 0 {
		opts.Zones = region.DefaultZones(opts.Region)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{
		store:    store,
		admin:    admin,
		opts:     opts,
		log:      opts.Logger,
		verifier: newVerifier(admin, opts.Region, opts.Now),
	}
	s.actions = s.actionTable()
	s.mux = s.routes()
	return s
}

// Handler returns the HTTP handler of the control plane.
func (s *Server) Handler() http.Handler { return s.mux }

// serveQuery answers one EC2 Query API request. The order of checks follows
// EC2: size, then signature, then parameters.
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("X-Amzn-Requestid", reqID)
	var actionName string
	rec := &changeRecord{}
	ctx := context.WithValue(r.Context(), changeKey{}, rec)
	resp, err := s.handleQuery(ctx, w, r, &actionName)
	logName := actionName
	if logName == "" {
		logName = "-"
	}
	if err != nil {
		ae := toAPIError(err)
		level := slog.LevelInfo
		switch {
		case ae.Status >= 500:
			level = slog.LevelError
		case unauthenticated(ae):
			// Anyone who can reach the port can send these: at INFO they
			// would let a stranger write the log.
			level = slog.LevelDebug
		}
		s.log.Log(r.Context(), level, "ec2 request failed", "action", logName, "code", ae.Code, "requestId", reqID, "err", err)
		s.writeError(w, reqID, ae)
		if s.opts.Observer != nil {
			s.opts.Observer.Request(actionName, ae.Code)
		}
		return
	}
	// Changes are logged at INFO with what they touched; reads (every
	// Describe*, a monitoring loop's polling) only at DEBUG.
	if rec.changed {
		s.log.Info("ec2 change", "action", logName, "requestId", reqID, "instances", rec.instanceIDs, "detail", rec.detail)
	} else {
		s.log.Debug("ec2 request", "action", logName, "requestId", reqID)
	}
	s.writeResponse(w, actionName, reqID, resp)
	if s.opts.Observer != nil {
		s.opts.Observer.Request(actionName, "")
		if rec.changed {
			// The verifier accepts only the admin key, so that is the key
			// that signed this request.
			s.opts.Observer.Change(s.admin.AccessKeyID, actionName, rec.instanceIDs, rec.detail)
		}
	}
}

func (s *Server) handleQuery(ctx context.Context, w http.ResponseWriter, r *http.Request, actionName *string) (response, error) {
	if r.ContentLength > s.opts.MaxBodyBytes {
		return nil, errTooLarge
	}
	// What the head tells about the signature is checked before the body
	// is read: a caller without the admin key never gets the server to
	// buffer its upload.
	sr, ae := s.verifier.claim(r)
	if ae != nil {
		// Closing after the answer spares reading (and discarding) the body
		// the caller may still be sending.
		w.Header().Set("Connection", "close")
		if name := r.URL.Query().Get("Action"); s.actions[name] != nil {
			*actionName = name
		}
		return nil, ae
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, newAPIError(http.StatusBadRequest, "InvalidParameterValue", "The request body could not be read.")
	}
	if ae := s.verifier.check(ctx, r, body, sr); ae != nil {
		// Name the action for metrics if it is a known one; an unsigned
		// request cannot make up label values.
		if p, err := parseRequest(r, body); err == nil {
			if name := p.str("Action"); s.actions[name] != nil {
				*actionName = name
			}
		}
		return nil, ae
	}
	p, err := parseRequest(r, body)
	if err != nil {
		return nil, err
	}
	name, err := p.required("Action")
	if err != nil {
		return nil, err
	}
	fn, ok := s.actions[name]
	if !ok {
		return nil, newAPIError(http.StatusBadRequest, "InvalidAction", "The action "+name+" is not valid for this web service.")
	}
	*actionName = name
	switch v, ok := p.get("Version"); {
	case !ok || v == "":
		return nil, errMissing("Version")
	case v != apiVersion:
		return nil, newAPIError(http.StatusBadRequest, "NoSuchVersion", "An invalid or unsupported Version ("+v+") was specified; frontdesk supports "+apiVersion+".")
	}
	return fn(ctx, p)
}

// unauthenticated reports whether ae refuses a request's credentials.
func unauthenticated(ae *apiError) bool {
	switch ae {
	case errAuthMissing, errAuthKey, errAuthScope, errIncomplete, errSignature, errExpired:
		return true
	}
	return false
}

// LimitListener caps the control plane's concurrent connections at n
// (DefaultMaxConns when n <= 0); further connections wait in the kernel's
// backlog until one closes.
func LimitListener(l net.Listener, n int) net.Listener {
	if n <= 0 {
		n = DefaultMaxConns
	}
	return netutil.LimitListener(l, n)
}

// changeKey carries a request's *changeRecord in its context.
type changeKey struct{}

// changeRecord is what a state-changing action reports for OnChange. It is
// filled by noteChange after the action's Update committed, so a failure or
// a dry run leaves it empty.
type changeRecord struct {
	changed     bool
	instanceIDs []string
	detail      map[string]string
}

// noteChange records a committed change of the current request.
func noteChange(ctx context.Context, instanceIDs []string, detail map[string]string) {
	if rec, ok := ctx.Value(changeKey{}).(*changeRecord); ok {
		rec.changed = true
		rec.instanceIDs = instanceIDs
		rec.detail = detail
	}
}

// parseRequest merges the query string (without the SigV4 parameters of a
// presigned URL) and a form-encoded body.
func parseRequest(r *http.Request, body []byte) (params, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return params{}, errInvalid("The query string is not valid form encoding.")
	}
	for k := range q {
		if strings.HasPrefix(k, "X-Amz-") {
			delete(q, k)
		}
	}
	if len(body) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/x-www-form-urlencoded" {
				return params{}, errInvalid("The request body must be application/x-www-form-urlencoded.")
			}
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return params{}, errInvalid("The request body is not valid form encoding.")
		}
		for k, v := range form {
			q[k] = append(v, q[k]...)
		}
	}
	return newParams(q), nil
}

func (s *Server) writeResponse(w http.ResponseWriter, actionName, reqID string, resp response) {
	resp.setRequestID(reqID)
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{
		Name: xml.Name{Local: actionName + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ec2Namespace}},
	}
	if err := enc.EncodeElement(resp, start); err != nil {
		s.log.Error("encode ec2 response", "action", actionName, "requestId", reqID, "err", err)
		s.writeError(w, reqID, errInternal)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) writeError(w http.ResponseWriter, reqID string, ae *apiError) {
	b, err := xml.Marshal(errorResponse{Errors: []xmlErr{{Code: ae.Code, Message: ae.Message}}, RequestID: reqID})
	if err != nil {
		// Cannot happen with plain strings; keep a fixed body regardless.
		b = []byte("<Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred.</Message></Error></Errors></Response>")
	}
	body := append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(ae.Status)
	_, _ = w.Write(body)
}

// update runs fn in one store Update. With dryRun, fn runs (so every check
// is made) and then the transaction is abandoned with DryRunOperation, which
// is EC2's "would have succeeded".
func (s *Server) update(ctx context.Context, dryRun bool, fn func(imds.Tx) error) error {
	return s.store.Update(ctx, func(tx imds.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
}

// modifyLive runs one update (see update for dryRun) that changes the live
// instance id: fn changes it, and it is stored unless fn fails. Unknown ids
// and terminated instances are refused as getLiveInstance does.
func (s *Server) modifyLive(ctx context.Context, dryRun bool, id string, fn func(tx imds.Tx, in *imds.Instance) error) error {
	return s.update(ctx, dryRun, func(tx imds.Tx) error {
		in, err := getLiveInstance(tx, id)
		if err != nil {
			return err
		}
		if err := fn(tx, in); err != nil {
			return err
		}
		return imds.PutInstance(tx, in)
	})
}

// eachInstance reads every instance of ids in tx, in order, and hands it to
// fn, stopping at fn's first error. Ids that do not exist are skipped and
// then answered together as InvalidInstanceID.NotFound, as EC2 names every
// missing id of a multi-instance action at once.
func eachInstance(tx imds.Tx, ids []string, fn func(id string, in *imds.Instance) error) error {
	var missing []string
	for _, id := range ids {
		in, err := imds.GetInstance(tx, id)
		if errors.Is(err, imds.ErrNotFound) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(id, in); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return errInstanceNotFound(missing...)
	}
	return nil
}
