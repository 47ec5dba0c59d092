package dataplane_test

// Benchmarks of the data plane's hot paths, measured in process through a
// reusable ResponseWriter so that the figures exclude net/http (its own
// per-request cost is measured end to end by bench/cmd/benchrun). This is an
// external test package so that it can use the real token ring and the real
// metrics observer, which import dataplane.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/mdtree"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/metrics"
	"github.com/frontdesk-imds/frontdesk/internal/token"
)

var benchNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	benchAddr = "192.0.2.10"
	benchID   = "i-0aaaaaaaaaaaaaaa1"
	benchRole = "app-role"
)

// benchWriter is a ResponseWriter that keeps nothing but the status and the
// body length, and reuses its header map.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

type benchSigner struct{}

func (benchSigner) Sign([]byte) ([]byte, []byte, []byte, error) {
	return []byte("sig"), []byte("p7"), []byte("rsa"), nil
}

type benchCreds struct{}

func (benchCreds) Credentials(string, string) (mdtree.Credentials, uint64, bool) {
	return mdtree.Credentials{Code: "Success", LastUpdated: benchNow, Expiration: benchNow.Add(6 * time.Hour),
		AccessKeyID: "ASIABENCHMARK0000001", SecretAccessKey: "secret", Token: "session"}, 1, true
}

// ringTokens uses the real token ring, as the daemon does.
type ringTokens struct{ r *token.Ring }

func (t ringTokens) Mint(id string, gen uint64, ttl time.Duration, now time.Time) (string, time.Time, error) {
	return t.r.Mint(id, gen, ttl, now)
}

func (t ringTokens) Verify(tok, id string, gen uint64, now time.Time) (time.Duration, error) {
	return t.r.Verify(tok, id, gen, now)
}

func benchInstance(b *testing.B) *imds.Instance {
	b.Helper()
	tokens := imds.Optional
	opts, err := imds.LaunchOptions(imds.OptionsRequest{HttpTokens: &tokens}, imds.DefaultAccountDefaults(), false)
	if err != nil {
		b.Fatal(err)
	}
	return &imds.Instance{
		InstanceID: benchID, ReservationID: "r-0123456789abcdef0", AccountID: "123456789012", Generation: 7,
		State: imds.StateRunning, ImageID: "ami-0123456789abcdef0", InstanceType: "t3.micro", Architecture: "x86_64",
		LaunchTime: benchNow.Add(-time.Hour), InstanceLifecycle: "on-demand",
		Placement: imds.Placement{Region: "us-east-1", AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az4"},
		NetworkInterfaces: []imds.NetworkInterface{{
			MAC: "02:00:00:00:00:01", InterfaceID: "eni-0123456789abcdef0", OwnerID: "123456789012",
			SubnetID: "subnet-01", VPCID: "vpc-01", PrivateIPv4s: []string{benchAddr},
		}},
		IAMInstanceProfile: &imds.IAMInstanceProfile{Arn: "arn:aws:iam::123456789012:instance-profile/p", ID: "AIPAEXAMPLE", Role: benchRole},
		MetadataOptions:    opts,
	}
}

// benchPlane is a handler over a loaded snapshot and a real token ring.
type benchPlane struct {
	h   *dataplane.Handler
	tok string
}

// newBenchPlane builds the handler as the daemon does (daemon=true: the
// metrics observer and a rate limit that never triggers) or bare.
func newBenchPlane(b *testing.B, daemon bool) *benchPlane {
	b.Helper()
	ctx := context.Background()
	now := func() time.Time { return benchNow }
	st := memstore.New()
	b.Cleanup(func() { st.Close() })
	in := benchInstance(b)
	if err := st.Update(ctx, func(tx imds.Tx) error { return imds.PutInstance(tx, in) }); err != nil {
		b.Fatal(err)
	}
	keeper := token.NewKeeper(st, token.KeeperOptions{Now: now})
	if err := keeper.Load(ctx); err != nil {
		b.Fatal(err)
	}
	f := dataplane.NewFollower(st, dataplane.FollowerOptions{Now: now})
	if _, err := f.Load(ctx); err != nil {
		b.Fatal(err)
	}
	opts := dataplane.Options{Now: now}
	if daemon {
		opts.Observer = metrics.New(metrics.Options{Now: now})
		opts.Limits = dataplane.Limits{Rate: 1e9}
	}
	tokens := ringTokens{keeper.Ring()}
	tok, _, err := tokens.Mint(benchID, in.Generation, 6*time.Hour, benchNow)
	if err != nil {
		b.Fatal(err)
	}
	return &benchPlane{h: dataplane.New(f.Snapshot, tokens, benchSigner{}, benchCreds{}, opts), tok: tok}
}

func (p *benchPlane) request(method, path string, withToken bool) *http.Request {
	r := httptest.NewRequest(method, "http://169.254.169.254"+path, nil)
	r.RequestURI = path // origin form, as a guest sends it
	r.RemoteAddr = benchAddr + ":40000"
	if withToken {
		r.Header.Set("X-aws-ec2-metadata-token", p.tok)
	}
	return r
}

// run serves r b.N times and checks every answer.
func (p *benchPlane) run(b *testing.B, r *http.Request, wantStatus int) {
	b.Helper()
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		p.h.ServeHTTP(w, r)
		if w.status != wantStatus {
			b.Fatalf("status %d, want %d", w.status, wantStatus)
		}
	}
	if w.n == 0 && r.Method != http.MethodHead {
		b.Fatal("empty body")
	}
}

// setups are the two handler configurations every benchmark runs under.
func setups() []struct {
	name   string
	daemon bool
} {
	return []struct {
		name   string
		daemon bool
	}{{"bare", false}, {"with_metrics_and_limiter", true}}
}

func BenchmarkHandlerLeafGET(b *testing.B) {
	for _, s := range setups() {
		for _, v := range []struct {
			name  string
			token bool
		}{{"v1", false}, {"v2_reused_token", true}} {
			b.Run(s.name+"/"+v.name, func(b *testing.B) {
				p := newBenchPlane(b, s.daemon)
				p.run(b, p.request(http.MethodGet, "/latest/meta-data/instance-id", v.token), http.StatusOK)
			})
		}
	}
}

func BenchmarkHandlerListing(b *testing.B) {
	for _, s := range setups() {
		b.Run(s.name, func(b *testing.B) {
			p := newBenchPlane(b, s.daemon)
			p.run(b, p.request(http.MethodGet, "/latest/meta-data/", true), http.StatusOK)
		})
	}
}

func BenchmarkHandlerRoleCredentials(b *testing.B) {
	for _, s := range setups() {
		b.Run(s.name, func(b *testing.B) {
			p := newBenchPlane(b, s.daemon)
			p.run(b, p.request(http.MethodGet, "/latest/meta-data/iam/security-credentials/"+benchRole, true), http.StatusOK)
		})
	}
}

func BenchmarkHandlerTokenPUT(b *testing.B) {
	for _, s := range setups() {
		b.Run(s.name, func(b *testing.B) {
			p := newBenchPlane(b, s.daemon)
			r := p.request(http.MethodPut, "/latest/api/token", false)
			r.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
			p.run(b, r, http.StatusOK)
		})
	}
}

// BenchmarkSnapshotGuest is the caller lookup in a 100,000-instance
// snapshot: the only part of a request whose cost depends on fleet size.
func BenchmarkSnapshotGuest(b *testing.B) {
	for _, n := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			st := memstore.New()
			b.Cleanup(func() { st.Close() })
			base := benchInstance(b)
			err := st.Update(context.Background(), func(tx imds.Tx) error {
				for k := range n {
					in := *base
					in.InstanceID = fmt.Sprintf("i-0%016x", k)
					ni := base.NetworkInterfaces[0]
					ni.MAC = fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(k>>24), byte(k>>16), byte(k>>8), byte(k))
					ni.PrivateIPv4s = []string{netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}).String()}
					in.NetworkInterfaces = []imds.NetworkInterface{ni}
					if err := imds.PutInstance(tx, &in); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			f := dataplane.NewFollower(st, dataplane.FollowerOptions{Now: func() time.Time { return benchNow }})
			if _, err := f.Load(context.Background()); err != nil {
				b.Fatal(err)
			}
			addrs := make([]netip.Addr, 1024)
			for i := range addrs {
				k := i * n / len(addrs)
				addrs[i] = netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})
			}
			s := f.Snapshot()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if s.Guest(addrs[i&1023]) == nil {
					b.Fatal("instance not found")
				}
				i++
			}
		})
	}
}
