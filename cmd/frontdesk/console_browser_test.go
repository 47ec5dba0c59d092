//go:build integration

package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium is Debian's browser; the test never downloads one.
const chromium = "/usr/bin/chromium"

// newBrowser starts headless Chromium with a throw-away profile and every
// background fetch off, so the only traffic is to the console on loopback.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v (scripts/test.sh installs Debian's chromium)", chromium, err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// shots is where the screenshots go: the test's artifact directory
// (go test -artifacts keeps it).
func shot(t *testing.T, ctx context.Context, name string, width, height int64) []byte {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
	return png
}

func cookies() chromedp.Action[[]*network.Cookie] {
	return func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		return r.Cookies, err
	}
}

// The console in a real browser: the login URL signs in; the overview and
// the instance page show the non-compliant instance and its IMDSv1 caller;
// Require IMDSv2 asks for confirmation listing that caller, and once
// confirmed the data plane refuses the instance's IMDSv1 calls. A form
// post without the CSRF token is refused, and without a session nothing but
// the login page is shown.
func TestConsoleInBrowser(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional")
	d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.2", "--http-tokens", "required", "--tag", "Name=api")
	d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.3", "--http-tokens", "optional", "--tag", "Name=batch")
	for range 4 {
		if s, _, _ := d.do(t, "GET", "/latest/meta-data/iam/info", map[string]string{"User-Agent": "legacy-app/1.0"}); s != 200 && s != 404 {
			t.Fatalf("IMDSv1 GET: %d", s)
		}
	}
	if s, _, _ := d.do(t, "GET", "/latest/meta-data/instance-id", map[string]string{"User-Agent": "legacy-app/1.0"}); s != 200 {
		t.Fatalf("IMDSv1 GET: %d", s)
	}
	loginURL := strings.TrimSpace(d.cli(t, "console"))
	if !strings.HasPrefix(loginURL, d.apiURL+"/console/login?token=") {
		t.Fatalf("frontdesk console printed %q", loginURL)
	}

	ctx := newBrowser(t)
	var body string
	run := func(what string, acts ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, acts...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var err error
		if body, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"))); err != nil {
			t.Fatalf("%s: reading the page: %v", what, err)
		}
	}

	run("open the login URL", chromedp.Navigate(loginURL), chromedp.WaitVisible(chromedp.CSS("h1")))
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if loc != d.apiURL+"/console/" {
		t.Errorf("after login the browser is at %s, want the overview without the token", loc)
	}
	for _, want := range []string{"IMDSv2 migration", demoInstanceID, "legacy-app/1.0", "IMDSv1 calls per day"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q:\n%s", want, body)
		}
	}
	if svg, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("svg.chart"))); err != nil || !strings.Contains(svg, "<rect") {
		t.Errorf("overview chart: %v %.200s", err, svg)
	}
	ck, err := chromedp.Run(ctx, cookies())
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range ck {
		if c.Name == "frontdesk_console" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v: want HttpOnly and SameSite=Strict", session)
	}
	png := shot(t, ctx, "overview-desktop", 1400, 1000)
	if p := os.Getenv("FRONTDESK_CONSOLE_DOCS_IMG"); p != "" {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shot(t, ctx, "overview-phone", 390, 844)
	run("instance list", chromedp.EmulateViewport(1400, 1000), chromedp.Navigate(d.apiURL+"/console/instances"), chromedp.WaitVisible(chromedp.CSS("table")))
	if !strings.Contains(body, demoInstanceID) || !strings.Contains(body, "uses IMDSv1") {
		t.Errorf("instance list:\n%s", body)
	}
	shot(t, ctx, "instances-desktop", 1400, 1000)
	shot(t, ctx, "instances-phone", 390, 844)

	run("instance page", chromedp.EmulateViewport(1400, 1000), chromedp.Navigate(d.apiURL+"/console/instances/"+demoInstanceID), chromedp.WaitVisible(chromedp.CSS("h1")))
	if !strings.Contains(body, "legacy-app/1.0") || !strings.Contains(body, "/latest/meta-data/iam/info") {
		t.Errorf("instance page lacks the caller:\n%s", body)
	}
	shot(t, ctx, "instance-desktop", 1400, 1000)
	run("Require IMDSv2", chromedp.EmulateViewport(1400, 1000), chromedp.Click(chromedp.CSS(`a.primary[href*="/require"]`)), chromedp.WaitVisible(chromedp.CSS("button.danger")))
	if !strings.Contains(body, "legacy-app/1.0") || !strings.Contains(body, "401") {
		t.Errorf("confirmation does not list the caller it would break:\n%s", body)
	}
	shot(t, ctx, "confirm-desktop", 1400, 1000)
	shot(t, ctx, "confirm-phone", 390, 844)

	// Before confirming: the same form posted without the CSRF token, with
	// the browser's session cookie, is refused and changes nothing.
	form := url.Values{"confirm": {"yes"}}
	req, _ := http.NewRequest("POST", d.apiURL+"/console/instances/"+demoInstanceID+"/require", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || d.cliInstances(t)[demoInstanceID].HttpTokens != "optional" {
		t.Fatalf("POST without the CSRF token: %d, HttpTokens %s; want 403 and no change", resp.StatusCode, d.cliInstances(t)[demoInstanceID].HttpTokens)
	}

	run("confirm", chromedp.EmulateViewport(1400, 1000), chromedp.Click(chromedp.CSS("button.danger")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if !strings.Contains(body, "IMDSv2 is now required on "+demoInstanceID) {
		t.Errorf("after confirming:\n%s", body)
	}
	if got := d.cliInstances(t)[demoInstanceID].HttpTokens; got != "required" {
		t.Fatalf("HttpTokens after confirming = %s", got)
	}
	d.waitGuest(t, "127.0.0.1", "/latest/meta-data/instance-id", false, http.StatusUnauthorized)

	run("audit trail", chromedp.Navigate(d.apiURL+"/console/audit"), chromedp.WaitVisible(chromedp.CSS("table")))
	if !strings.Contains(body, "ModifyInstanceMetadataOptions") || !strings.Contains(body, "console:AKIA") || !strings.Contains(body, demoInstanceID) {
		t.Errorf("audit trail:\n%s", body)
	}
	shot(t, ctx, "audit-desktop", 1400, 1000)

	// Without a session: the browser's cookies cleared, every page is the
	// login page and shows nothing of the fleet.
	if err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/console/", "/console/instances", "/console/instances/" + demoInstanceID, "/console/audit"} {
		run("without a session: "+p, chromedp.Navigate(d.apiURL+p), chromedp.WaitVisible(chromedp.CSS("h1")))
		if !strings.Contains(body, "Sign in") || strings.Contains(body, demoInstanceID) || strings.Contains(body, "legacy-app") {
			t.Errorf("%s without a session shows more than the login page:\n%s", p, body)
		}
	}
	shot(t, ctx, "login-phone", 390, 844)
}
