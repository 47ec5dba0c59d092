package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/console"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
	"github.com/frontdesk-imds/frontdesk/internal/usage"
)

var creds = controlplane.AdminCredentials{AccessKeyID: "AKIAEXAMPLEEXAMPLE00", SecretAccessKey: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYw"}

type env struct {
	store  imds.Store
	srv    *httptest.Server
	usage  *usage.Tracker
	ids    []string
	client *http.Client
}

func newEnv(t *testing.T, n int) *env {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	var ids []string
	if err := st.Update(t.Context(), func(tx imds.Tx) error {
		for i := 1; i <= n; i++ {
			in := storetest.NewInstance(t, i)
			in.MetadataOptions.HttpTokens = imds.Optional
			in.Tags = append(in.Tags, imds.Tag{Key: "Name", Value: "web-" + in.InstanceID[len(in.InstanceID)-2:]}, imds.Tag{Key: "team", Value: "blue"})
			ids = append(ids, in.InstanceID)
			if err := imds.PutInstance(tx, in); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tr := usage.New(st, usage.Options{Node: "n1"})
	cp := controlplane.New(st, creds, controlplane.Options{Observer: changeTrail(console.ChangeRecorder(st, nil, nil))})
	con := console.New(st, cp, tr, creds, console.Options{CacheFor: time.Nanosecond})
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &env{store: st, srv: srv, usage: tr, ids: ids, client: &http.Client{Jar: jar}}
}

func (e *env) v1Call(id, ua string) {
	r := httptest.NewRequest("GET", "http://169.254.169.254/latest/meta-data/iam/info", nil)
	r.Header.Set("User-Agent", ua)
	e.usage.Request(r, &dataplane.RequestEvent{InstanceID: id, IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: time.Now()})
}

func (e *env) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := e.client.Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) post(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := e.client.PostForm(e.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) tokens(t *testing.T, id string) string {
	t.Helper()
	var in *imds.Instance
	if err := e.store.View(t.Context(), func(tx imds.Tx) error { var err error; in, err = imds.GetInstance(tx, id); return err }); err != nil {
		t.Fatal(err)
	}
	return in.MetadataOptions.HttpTokens
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestWithoutASessionOnlyTheLoginPageIsShown(t *testing.T) {
	e := newEnv(t, 2)
	e.v1Call(e.ids[0], "legacy-app/1.0")
	for _, p := range []string{"/console/", "/console/instances", "/console/instances/" + e.ids[0], "/console/audit", "/console/nothing"} {
		status, body := e.get(t, p)
		if status != 200 || !strings.Contains(body, "Sign in") || strings.Contains(body, e.ids[0]) || strings.Contains(body, "legacy-app") {
			t.Errorf("GET %s without a session: %d, shows more than the login page", p, status)
		}
	}
	if status, _ := e.post(t, "/console/instances/"+e.ids[0]+"/require", url.Values{"confirm": {"yes"}}); status != http.StatusUnauthorized {
		t.Errorf("POST without a session = %d, want 401", status)
	}
	if status, body := e.get(t, "/console/login?token=forged.token.x"); status != http.StatusUnauthorized || !strings.Contains(body, "invalid or has expired") {
		t.Errorf("forged token = %d", status)
	}
	expired := console.LoginURL(e.srv.URL, creds, time.Now().Add(-time.Hour), time.Minute)
	if status, _ := e.get(t, strings.TrimPrefix(expired, e.srv.URL)); status != http.StatusUnauthorized {
		t.Errorf("expired login URL = %d, want 401", status)
	}
	other := controlplane.AdminCredentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: strings.Repeat("x", 40)}
	if status, _ := e.get(t, strings.TrimPrefix(console.LoginURL(e.srv.URL, other, time.Now(), 0), e.srv.URL)); status != http.StatusUnauthorized {
		t.Errorf("login URL signed with another secret = %d, want 401", status)
	}
	if status, _ := e.post(t, "/console/login", url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {"wrong"}}); status != http.StatusUnauthorized {
		t.Errorf("wrong secret = %d, want 401", status)
	}
}

func TestLoginRequireWithCSRFAndAuditTrail(t *testing.T) {
	e := newEnv(t, 3)
	e.v1Call(e.ids[0], "legacy-app/1.0")
	resp, err := e.client.Get(console.LoginURL(e.srv.URL, creds, time.Now(), 0))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(e.srv.URL + "/console/")
	var sess *http.Cookie
	for _, c := range e.client.Jar.Cookies(u) {
		if c.Name == "frontdesk_console" {
			sess = c
		}
	}
	if sess == nil || resp.Request.URL.Path != "/console/" || resp.Request.URL.RawQuery != "" {
		t.Fatalf("login URL did not start a session and land on the overview (at %s)", resp.Request.URL)
	}
	status, body := e.get(t, "/console/")
	if status != 200 || !strings.Contains(body, e.ids[0]) || !strings.Contains(body, "legacy-app/1.0") || !strings.Contains(body, "<svg") {
		t.Fatalf("overview %d does not show the caller and a chart:\n%s", status, body)
	}
	_, body = e.get(t, "/console/instances/"+e.ids[0]+"/require")
	if !strings.Contains(body, "legacy-app/1.0") || !strings.Contains(body, "401") {
		t.Fatalf("confirmation does not list the caller it would break:\n%s", body)
	}
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token in the confirmation form")
	}
	if status, _ := e.post(t, "/console/instances/"+e.ids[0]+"/require", url.Values{"confirm": {"yes"}}); status != http.StatusForbidden || e.tokens(t, e.ids[0]) != imds.Optional {
		t.Fatalf("POST without the CSRF token = %d and tokens %s; want 403 and no change", status, e.tokens(t, e.ids[0]))
	}
	if status, _ := e.post(t, "/console/instances/"+e.ids[0]+"/require", url.Values{"confirm": {"yes"}, "csrf": {m[1] + "x"}}); status != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token = %d, want 403", status)
	}
	status, body = e.post(t, "/console/instances/"+e.ids[0]+"/require", url.Values{"confirm": {"yes"}, "csrf": {m[1]}})
	if status != 200 || e.tokens(t, e.ids[0]) != imds.Required || !strings.Contains(body, "IMDSv2 is now required") {
		t.Fatalf("confirmed require: %d, tokens %s", status, e.tokens(t, e.ids[0]))
	}
	_, body = e.get(t, "/console/audit")
	if !strings.Contains(body, "console:"+creds.AccessKeyID) || !strings.Contains(body, "ModifyInstanceMetadataOptions") || !strings.Contains(body, e.ids[0]) {
		t.Fatalf("audit trail lacks the change:\n%s", body)
	}

	// Filters and paging.
	_, body = e.get(t, "/console/instances?tokens=required")
	if !strings.Contains(body, e.ids[0]) || strings.Contains(body, e.ids[1]) {
		t.Errorf("tokens=required filter wrong")
	}
	_, body = e.get(t, "/console/instances?tag=team%3Dred")
	if strings.Contains(body, e.ids[1]) {
		t.Errorf("tag filter let through an instance without the tag")
	}
	// Bulk: safe needs the window observed whole; a fresh tracker has not.
	_, body = e.get(t, "/console/bulk?window=1h")
	if !strings.Contains(body, "No instance is safe") {
		t.Errorf("bulk claims safe instances on an empty history:\n%s", body)
	}
	// Logout ends the session.
	if status, _ := e.post(t, "/console/logout", url.Values{"csrf": {m[1]}}); status != 200 {
		t.Errorf("logout = %d", status)
	}
	if _, body := e.get(t, "/console/"); !strings.Contains(body, "Sign in") {
		t.Errorf("still signed in after logout")
	}
	// The login form takes the admin key.
	if status, body := e.post(t, "/console/login", url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {creds.SecretAccessKey}}); status != 200 || !strings.Contains(body, "IMDSv2 migration") {
		t.Errorf("login form = %d", status)
	}
}

// changeTrail is a control-plane observer that keeps only the changes.
type changeTrail func(accessKeyID, action string, instanceIDs []string, detail map[string]string)

func (changeTrail) Request(string, string) {}

func (c changeTrail) Change(accessKeyID, action string, instanceIDs []string, detail map[string]string) {
	c(accessKeyID, action, instanceIDs, detail)
}
