package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/mdtree"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/token"
)

// fakeTokens is a transparent token scheme for handler tests: the token
// names the instance, generation and expiry. The real sealed tokens are
// tested in internal/token and through the daemon.
type fakeTokens struct{}

func (fakeTokens) Mint(id string, gen uint64, ttl time.Duration, now time.Time) (string, time.Time, error) {
	exp := now.Add(ttl)
	return fmt.Sprintf("tok.%s.%d.%d", id, gen, exp.Unix()), exp, nil
}

func (fakeTokens) Verify(tok, id string, gen uint64, now time.Time) (time.Duration, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] != "tok" || parts[1] != id || parts[2] != strconv.FormatUint(gen, 10) {
		return 0, errors.New("invalid")
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return 0, errors.New("expired")
	}
	return time.Unix(exp, 0).Sub(now), nil
}

type fakeSigner struct{}

func (fakeSigner) Sign(doc []byte) ([]byte, []byte, []byte, error) {
	return []byte("sig"), []byte("p7"), []byte("rsa"), nil
}

type fakeCreds struct{ now time.Time }

func (f fakeCreds) Credentials(id, role string) (mdtree.Credentials, uint64, bool) {
	return mdtree.Credentials{Code: "Success", LastUpdated: f.now, Expiration: f.now.Add(6 * time.Hour),
		AccessKeyID: "ASIAFAKE" + role, SecretAccessKey: "secret", Token: "session"}, 1, true
}

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testInstance(id, addr, tokens string) *imds.Instance {
	opts, err := imds.LaunchOptions(imds.OptionsRequest{HttpTokens: &tokens}, imds.DefaultAccountDefaults(), false)
	if err != nil {
		panic(err)
	}
	return &imds.Instance{
		InstanceID: id, ReservationID: "r-0123456789abcdef0", AccountID: "123456789012", Generation: 7,
		State: imds.StateRunning, ImageID: "ami-0123456789abcdef0", InstanceType: "t3.micro", Architecture: "x86_64",
		LaunchTime: testNow.Add(-time.Hour), InstanceLifecycle: "on-demand",
		Placement: imds.Placement{Region: "us-east-1", AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az4"},
		NetworkInterfaces: []imds.NetworkInterface{{
			MAC: "02:00:00:00:00:01", InterfaceID: "eni-0123456789abcdef0", OwnerID: "123456789012",
			SubnetID: "subnet-01", VPCID: "vpc-01", PrivateIPv4s: []string{addr},
		}},
		IAMInstanceProfile: &imds.IAMInstanceProfile{Arn: "arn:aws:iam::123456789012:instance-profile/p", ID: "AIPAEXAMPLE", Role: "app-role"},
		MetadataOptions:    opts,
	}
}

type plane struct {
	t     *testing.T
	store *memstore.Store
	f     *Follower
	h     *Handler
}

func newPlane(t *testing.T, instances ...*imds.Instance) *plane {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	err := st.Update(context.Background(), func(tx imds.Tx) error {
		for _, in := range instances {
			if err := imds.PutInstance(tx, in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f := NewFollower(st, FollowerOptions{Now: func() time.Time { return testNow }})
	if _, err := f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := New(f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{Now: func() time.Time { return testNow }})
	return &plane{t: t, store: st, f: f, h: h}
}

type req struct {
	method, path, from string
	headers            map[string]string
}

func (p *plane) do(r req) *http.Response {
	p.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	hr := httptest.NewRequest(r.method, "http://169.254.169.254/", nil)
	hr.URL.Path = r.path
	hr.RequestURI = r.path
	hr.RemoteAddr = r.from + ":40000"
	if strings.Contains(r.from, ":") {
		hr.RemoteAddr = "[" + r.from + "]:40000"
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	p.h.ServeHTTP(w, hr)
	return w.Result()
}

func (p *plane) token(from, ttl string) string {
	p.t.Helper()
	resp := p.do(req{method: http.MethodPut, path: "/latest/api/token", from: from, headers: map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl}})
	if resp.StatusCode != 200 {
		p.t.Fatalf("token PUT: %d", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

const (
	addrA = "192.0.2.10"
	addrB = "192.0.2.11"
	idA   = "i-0aaaaaaaaaaaaaaa1"
	idB   = "i-0bbbbbbbbbbbbbbb2"
)

func TestTokenPUTStatusMatrix(t *testing.T) {
	p := newPlane(t, testInstance(idA, addrA, imds.Optional))
	ttl := "X-aws-ec2-metadata-token-ttl-seconds"
	cases := []struct {
		name    string
		r       req
		status  int
		ttlEcho string
	}{
		{"valid_ttl_returns_token_and_echo", req{method: "PUT", path: "/latest/api/token", headers: map[string]string{ttl: "21600"}}, 200, "21600"},
		{"lowest_ttl_is_accepted", req{method: "PUT", path: "/latest/api/token", headers: map[string]string{ttl: "1"}}, 200, "1"},
		{"missing_ttl_returns_400", req{method: "PUT", path: "/latest/api/token"}, 400, ""},
		{"non_numeric_ttl_returns_400", req{method: "PUT", path: "/latest/api/token", headers: map[string]string{ttl: "abc"}}, 400, ""},
		{"zero_ttl_returns_400", req{method: "PUT", path: "/latest/api/token", headers: map[string]string{ttl: "0"}}, 400, ""},
		{"negative_ttl_returns_400", req{method: "PUT", path: "/latest/api/token", headers: map[string]string{ttl: "-5"}}, 400, ""},
		{"ttl_above_21600_returns_400", req{method: "PUT", path: "/latest/api/token", headers: map[string]string{ttl: "21601"}}, 400, ""},
		{"versioned_token_path_returns_403", req{method: "PUT", path: "/2021-03-23/api/token", headers: map[string]string{ttl: "60"}}, 403, ""},
		{"trailing_slash_token_path_returns_403", req{method: "PUT", path: "/latest/api/token/", headers: map[string]string{ttl: "60"}}, 403, ""},
		{"put_on_metadata_path_returns_403", req{method: "PUT", path: "/latest/meta-data/", headers: map[string]string{ttl: "60"}}, 403, ""},
		{"x_forwarded_for_returns_403", req{method: "PUT", path: "/latest/api/token", headers: map[string]string{ttl: "60", "X-Forwarded-For": "203.0.113.9"}}, 403, ""},
		{"lower_case_x_forwarded_for_returns_403", req{method: "PUT", path: "/latest/api/token", headers: map[string]string{ttl: "60", "x-forwarded-for": "203.0.113.9"}}, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.r.from = addrA
			resp := p.do(c.r)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if got := resp.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != c.ttlEcho {
				t.Errorf("TTL header %q, want %q", got, c.ttlEcho)
			}
			assertEC2Headers(t, resp)
			if c.status != 200 && len(body) != 0 {
				t.Errorf("error body %q, want empty", body)
			}
			if c.status == 200 && (len(body) == 0 || strings.HasSuffix(string(body), "\n")) {
				t.Errorf("token body %q: want a token without trailing newline", body)
			}
		})
	}
}

func assertEC2Headers(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.Header.Get("Server") != "EC2ws" || resp.Header.Get("Connection") != "close" {
		t.Errorf("headers Server=%q Connection=%q, want EC2ws and close", resp.Header.Get("Server"), resp.Header.Get("Connection"))
	}
}

func TestGETMatrix(t *testing.T) {
	optional := testInstance(idA, addrA, imds.Optional)
	required := testInstance(idB, addrB, imds.Required)
	p := newPlane(t, optional, required)
	tokA := p.token(addrA, "300")
	tokB := p.token(addrB, "300")
	expired, _, _ := fakeTokens{}.Mint(idA, 7, time.Second, testNow.Add(-time.Minute))
	oldGen, _, _ := fakeTokens{}.Mint(idA, 6, time.Hour, testNow)

	cases := []struct {
		name    string
		from    string
		path    string
		token   string
		xff     bool
		status  int
		ttlHdr  string
		body    string
		noToken bool
	}{
		{"optional_without_token_serves_v1", addrA, "/latest/meta-data/instance-id", "", false, 200, "", idA, true},
		{"optional_with_valid_token_serves_and_echoes_remaining", addrA, "/latest/meta-data/instance-id", tokA, false, 200, "300", idA, false},
		{"optional_with_bad_token_returns_401", addrA, "/latest/meta-data/instance-id", "garbage", false, 401, "", "", false},
		{"optional_with_empty_token_returns_401", addrA, "/latest/meta-data/instance-id", "", false, 401, "", "", false},
		{"optional_with_expired_token_returns_401", addrA, "/latest/meta-data/instance-id", expired, false, 401, "", "", false},
		{"token_of_earlier_launch_returns_401", addrA, "/latest/meta-data/instance-id", oldGen, false, 401, "", "", false},
		{"token_of_other_instance_returns_401", addrA, "/latest/meta-data/instance-id", tokB, false, 401, "", "", false},
		{"required_without_token_returns_401", addrB, "/latest/meta-data/instance-id", "", false, 401, "", "", true},
		{"required_with_valid_token_serves", addrB, "/latest/meta-data/instance-id", tokB, false, 200, "300", idB, false},
		{"required_with_bad_token_returns_401", addrB, "/latest/meta-data/instance-id", "x", false, 401, "", "", false},
		{"token_with_x_forwarded_for_returns_403", addrB, "/latest/meta-data/instance-id", tokB, true, 403, "", "", false},
		{"tokenless_v1_with_x_forwarded_for_is_served", addrA, "/latest/meta-data/instance-id", "", true, 200, "", idA, true},
		{"token_valid_on_versioned_path", addrB, "/2021-03-23/meta-data/instance-id", tokB, false, 200, "300", idB, false},
		{"unknown_version_returns_404", addrA, "/1999-01-01/meta-data/instance-id", "", false, 404, "", "", true},
		{"doubled_slashes_collapse", addrA, "/latest//meta-data//instance-id", "", false, 200, "", idA, true},
		{"dot_dot_segment_returns_404", addrA, "/latest/meta-data/../user-data", "", false, 404, "", "", true},
		{"dot_segment_returns_404", addrA, "/latest/./meta-data/instance-id", "", false, 404, "", "", true},
		{"non_utf8_path_returns_404", addrA, "/latest/meta-data/\xff\xfe", "", false, 404, "", "", true},
		{"trailing_slash_on_leaf_serves_leaf", addrA, "/latest/meta-data/instance-id/", "", false, 200, "", idA, true},
		{"unknown_caller_returns_404", "198.51.100.99", "/latest/meta-data/instance-id", "", false, 404, "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{}
			if !c.noToken {
				h["X-aws-ec2-metadata-token"] = c.token
			}
			if c.xff {
				h["X-Forwarded-For"] = "203.0.113.7"
			}
			resp := p.do(req{path: c.path, from: c.from, headers: h})
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, c.status, body)
			}
			assertEC2Headers(t, resp)
			if got := resp.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != c.ttlHdr {
				t.Errorf("TTL header %q, want %q", got, c.ttlHdr)
			}
			switch c.status {
			case 200:
				if string(body) != c.body {
					t.Errorf("body %q, want %q", body, c.body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
					t.Errorf("Content-Type %q", ct)
				}
			case 401, 403:
				if len(body) != 0 || resp.Header.Get("Content-Length") != "0" {
					t.Errorf("error body %q, want empty with Content-Length 0", body)
				}
			case 404:
				if !strings.Contains(string(body), "<title>404 - Not Found</title>") {
					t.Errorf("404 body %q, want the XHTML page", body)
				}
			}
		})
	}
}

func TestEndpointDisabledForbidsEverything(t *testing.T) {
	in := testInstance(idA, addrA, imds.Optional)
	in.MetadataOptions.HttpEndpoint = imds.Disabled
	p := newPlane(t, in)
	for _, r := range []req{
		{method: "PUT", path: "/latest/api/token", headers: map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"}},
		{path: "/latest/meta-data/instance-id"},
		{path: "/latest/meta-data/instance-id", headers: map[string]string{"X-aws-ec2-metadata-token": "whatever"}},
		{method: "HEAD", path: "/latest/meta-data/"},
	} {
		t.Run(r.method+r.path, func(t *testing.T) {
			r.from = addrA
			resp := p.do(r)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 403 {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			if r.method != "HEAD" && !strings.Contains(string(body), "403 - Forbidden") {
				t.Errorf("body %q, want the XHTML 403 page", body)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	p := newPlane(t, testInstance(idA, addrA, imds.Optional))
	cases := []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"get_on_token_path_returns_405", "GET", "/latest/api/token", 405, "OPTIONS, PUT"},
		{"post_returns_405", "POST", "/latest/meta-data/", 405, "GET, HEAD"},
		{"delete_returns_405", "DELETE", "/latest/meta-data/instance-id", 405, "GET, HEAD"},
		{"patch_returns_405", "PATCH", "/latest/user-data", 405, "GET, HEAD"},
		{"head_is_served_without_body", "HEAD", "/latest/meta-data/instance-id", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := p.do(req{method: c.method, path: c.path, from: addrA})
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow {
				t.Fatalf("got %d Allow=%q, want %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"), c.status, c.allow)
			}
			if len(body) != 0 {
				t.Errorf("body %q, want none", body)
			}
		})
	}
}

func TestDynamicLeaves(t *testing.T) {
	p := newPlane(t, testInstance(idA, addrA, imds.Optional))
	cases := []struct{ path, want, ctype string }{
		{"/latest/dynamic/instance-identity/signature", "sig", "text/plain"},
		{"/latest/dynamic/instance-identity/pkcs7", "p7", "text/plain"},
		{"/latest/dynamic/instance-identity/rsa2048", "rsa", "text/plain"},
		{"/latest/meta-data/iam/security-credentials/app-role", `"AccessKeyId" : "ASIAFAKEapp-role"`, "text/plain"},
		{"/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", `"AccessKeyId" : "ASIAFAKE"`, "text/plain"},
		{"/latest/meta-data/iam/info", `"InstanceProfileArn" : "arn:aws:iam::123456789012:instance-profile/p"`, "text/plain"},
		{"/latest/meta-data/identity-credentials/ec2/info", `"AccountId" : "123456789012"`, "text/plain"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp := p.do(req{path: c.path, from: addrA})
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(body), c.want) || resp.Header.Get("Content-Type") != c.ctype {
				t.Fatalf("got %d %q %q, want 200 containing %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, c.want)
			}
		})
	}
}

func TestSnapshotFollowsStoreChanges(t *testing.T) {
	p := newPlane(t, testInstance(idA, addrA, imds.Optional))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.f.Run(ctx)

	get := func() int {
		return p.do(req{path: "/latest/meta-data/instance-id", from: addrA}).StatusCode
	}
	if s := get(); s != 200 {
		t.Fatalf("before: %d", s)
	}
	err := p.store.Update(ctx, func(tx imds.Tx) error {
		in, err := imds.GetInstance(tx, idA)
		if err != nil {
			return err
		}
		in.MetadataOptions.HttpTokens = imds.Required
		return imds.PutInstance(tx, in)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return get() == 401 })

	// Terminating releases the address: the caller becomes unknown at once.
	err = p.store.Update(ctx, func(tx imds.Tx) error {
		in, _ := imds.GetInstance(tx, idA)
		in.State = imds.StateTerminated
		return imds.PutInstance(tx, in)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return get() == 404 })
	if p.f.Snapshot().Len() != 0 {
		t.Fatalf("terminated instance still in the snapshot")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUnknownCallersAreLoggedWithoutFlooding(t *testing.T) {
	var buf strings.Builder
	p := newPlane(t, testInstance(idA, addrA, imds.Optional))
	now := testNow
	p.h = New(p.f.Snapshot, fakeTokens{}, fakeSigner{}, fakeCreds{testNow}, Options{
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&buf, nil)),
	})
	for range 100 {
		p.do(req{path: "/latest/meta-data/", from: "198.51.100.77"})
	}
	if n := strings.Count(buf.String(), "belongs to no instance"); n != 1 {
		t.Fatalf("%d log lines for 100 stray requests in one instant, want 1:\n%s", n, buf.String())
	}
	now = now.Add(strayLogEvery)
	p.do(req{path: "/latest/meta-data/", from: "198.51.100.77"})
	if n := strings.Count(buf.String(), "belongs to no instance"); n != 2 || !strings.Contains(buf.String(), "unlogged_since_last=99") {
		t.Fatalf("after the interval: want a second line counting 99 unlogged:\n%s", buf.String())
	}
}

// The GET path makes no allocation of its own: measured through ServeHTTP
// with a reusable ResponseWriter, so only the handler is counted.
func TestHandlerGETDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; scripts/test.sh runs this test without -race")
	}
	p := newPlane(t, testInstance(idA, addrA, imds.Optional))
	// The real sealed tokens (the test fake splits strings).
	k := token.NewKeeper(memstore.New(), token.KeeperOptions{Now: func() time.Time { return testNow }})
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.h = New(p.f.Snapshot, k.Ring(), fakeSigner{}, fakeCreds{testNow}, Options{Now: func() time.Time { return testNow }})
	tok := p.token(addrA, "300")
	for _, c := range []struct {
		name  string
		token string
		path  string
	}{
		{"v1_leaf", "", "/latest/meta-data/instance-id"},
		{"v2_leaf", tok, "/latest/meta-data/instance-id"},
		{"v2_listing", tok, "/latest/meta-data/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.path, nil)
			r.RemoteAddr = addrA + ":40000"
			if c.token != "" {
				r.Header.Set("X-aws-ec2-metadata-token", c.token)
			}
			w := &discardWriter{h: http.Header{}}
			p.h.ServeHTTP(w, r) // renders the tree once
			if n := testing.AllocsPerRun(200, func() {
				clear(w.h)
				p.h.ServeHTTP(w, r)
			}); n != 0 {
				t.Fatalf("%v allocations per request, want 0", n)
			}
			if w.status != 200 {
				t.Fatalf("status %d", w.status)
			}
		})
	}
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
