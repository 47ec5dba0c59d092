// Package console is frontdesk's web console for the move to IMDSv2, served
// at /console/ on the control-plane listener: the fleet's IMDSv1 usage over
// days, the instances still using it and who calls, and the switch to
// require IMDSv2, per instance or on every instance that is safe.
//
// Pages are rendered on the server with html/template; charts are inline
// SVG made on the server; there is no script and nothing is loaded from any
// other host. Browsers cannot sign SigV4, so a session starts from a login
// URL (`frontdesk console` prints one, signed with the admin credentials)
// or from a form taking the admin access key. Sessions and CSRF tokens are
// HMACs under keys derived from the admin secret (see auth.go). Every change
// goes through the control plane's action layer, the code the EC2 API runs,
// and is kept in the store's audit trail.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/usage"
)

// Actions are the control-plane actions the console runs
// (*controlplane.Server implements them).
type Actions interface {
	ModifyMetadataOptions(ctx context.Context, p controlplane.Principal, in controlplane.MetadataOptionsInput) (imds.MetadataOptions, error)
	ModifyMetadataDefaults(ctx context.Context, p controlplane.Principal, in controlplane.MetadataDefaultsInput) error
}

// Usage reads the fleet's IMDSv1 usage (*usage.Tracker implements it).
type Usage interface {
	Report(ctx context.Context, window time.Duration) (*usage.Report, error)
}

// Options are the optional knobs of New; the zero value works.
type Options struct {
	Now    func() time.Time
	Logger *slog.Logger
	// SessionTTL is a session's lifetime (DefaultSessionTTL).
	SessionTTL time.Duration
	// PageSize is the number of instances per list page (default 50).
	PageSize int
	// CacheFor is how long the instance list and usage are reused between
	// page views (default 2 s), so that a busy page does not read the
	// whole fleet per view.
	CacheFor time.Duration
}

// Console serves the web console.
type Console struct {
	store   imds.Store
	actions Actions
	usage   Usage
	creds   controlplane.AdminCredentials
	opts    Options
	log     *slog.Logger
	tmpl    *template.Template
	mux     *http.ServeMux

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	at  time.Time
	val any
}

//go:embed templates/*.html
var templateFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/console/"

const (
	sessionCookie = "frontdesk_console"
	principalPre  = "console:"
)

// New returns a console over store that changes things through actions,
// reads usage from u and accepts the admin credentials creds.
func New(store imds.Store, actions Actions, u Usage, creds controlplane.AdminCredentials, opts Options) *Console {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	if opts.CacheFor <= 0 {
		opts.CacheFor = 2 * time.Second
	}
	c := &Console{store: store, actions: actions, usage: u, creds: creds, opts: opts, log: opts.Logger, cache: map[string]cached{}}
	c.tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))
	c.mux = c.routes()
	return c
}

// Handler serves everything under Prefix.
func (c *Console) Handler() http.Handler { return c }

func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.loginForm)
	m.Handle("POST /console/logout", c.authed(c.logout))
	m.Handle("GET /console/{$}", c.authed(c.overview))
	m.Handle("GET /console/instances", c.authed(c.instances))
	m.Handle("GET /console/instances/{id}", c.authed(c.instance))
	m.Handle("GET /console/instances/{id}/require", c.authed(c.confirmRequire))
	m.Handle("POST /console/instances/{id}/require", c.authed(c.doRequire))
	m.Handle("GET /console/bulk", c.authed(c.confirmBulk))
	m.Handle("POST /console/bulk", c.authed(c.doBulk))
	m.Handle("POST /console/defaults", c.authed(c.setDefaults))
	m.Handle("GET /console/audit", c.authed(c.audit))
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := c.session(r); !ok {
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		}
		http.NotFound(w, r)
	})
	return m
}

// ServeHTTP sets the headers every page carries, then routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No script at all, styles inline, images only as data: URIs.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer") // login tokens travel in URLs
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// reqCtx is what a handler knows about the signed-in operator.
type reqCtx struct {
	principal controlplane.Principal
	csrf      string
}

// authed lets a request through only with a valid session, and a
// state-changing one only with the session's CSRF token. Without a session
// a page answers with the login page's address and nothing else.
func (c *Console) authed(h func(http.ResponseWriter, *http.Request, reqCtx)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := c.session(r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		rc := reqCtx{principal: controlplane.Principal{ID: principalPre + c.creds.AccessKeyID}, csrf: csrfToken(c.creds, sess)}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil || !hmacEqual(r.PostForm.Get("csrf"), rc.csrf) {
				c.log.Warn("console request refused: missing or wrong CSRF token", "path", r.URL.Path)
				http.Error(w, "invalid CSRF token", http.StatusForbidden)
				return
			}
		}
		h(w, r, rc)
	})
}

func hmacEqual(a, b string) bool {
	return a != "" && len(a) == len(b) && subtleEq(a, b)
}

func (c *Console) session(r *http.Request) (string, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return "", false
	}
	if verify(key(c.creds, "session"), ck.Value, c.opts.Now()) != nil {
		return "", false
	}
	return ck.Value, true
}

func (c *Console) startSession(w http.ResponseWriter, r *http.Request) {
	exp := c.opts.Now().Add(c.opts.SessionTTL)
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    mint(key(c.creds, "session"), exp),
		Path:     Prefix,
		Expires:  exp,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	c.log.Info("console session started", "principal", principalPre+c.creds.AccessKeyID, "remote", r.RemoteAddr)
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if tok := r.URL.Query().Get("token"); tok != "" {
		if err := verify(key(c.creds, "login"), tok, c.opts.Now()); err != nil {
			c.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "This login link is invalid or has expired. Run `frontdesk console` for a new one, or sign in with the admin access key."})
			return
		}
		c.startSession(w, r)
		// Redirect so the token leaves the address bar and the history.
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", page{Title: "Sign in"})
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !checkSecret(c.creds, strings.TrimSpace(r.PostForm.Get("access_key_id")), strings.TrimSpace(r.PostForm.Get("secret_access_key"))) {
		c.log.Warn("console sign-in refused", "remote", r.RemoteAddr)
		c.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "The access key id or secret is not the admin key."})
		return
	}
	c.startSession(w, r)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ reqCtx) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := c.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		c.log.Error("console template failed", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (c *Console) fail(w http.ResponseWriter, err error) {
	c.log.Error("console page failed", "err", err)
	status := http.StatusInternalServerError
	if errors.Is(err, imds.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	http.Error(w, "the console could not read the store; see the daemon's log", status)
}

// redirect answers a form with 303 to path, adding a notice.
func redirect(w http.ResponseWriter, r *http.Request, path, notice string) {
	if notice != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "notice=" + url.QueryEscape(notice)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// memo returns the cached value of key if younger than CacheFor, or
// computes it.
func (c *Console) memo(key string, fn func() (any, error)) (any, error) {
	now := c.opts.Now()
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && now.Sub(e.at) < c.opts.CacheFor && now.Sub(e.at) >= 0 {
		c.mu.Unlock()
		return e.val, nil
	}
	c.mu.Unlock()
	v, err := fn()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cache[key] = cached{at: now, val: v}
	c.mu.Unlock()
	return v, nil
}

// forget drops the caches after a change made here, so the next page shows it.
func (c *Console) forget() {
	c.mu.Lock()
	clear(c.cache)
	c.mu.Unlock()
}
