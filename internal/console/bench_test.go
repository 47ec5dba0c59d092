package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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

// fleet builds a console over n instances, one in ten of which made IMDSv1
// calls (flushed to the store), and returns a signed-in request maker.
func fleet(tb testing.TB, n int, cacheFor time.Duration) (http.Handler, func(path string) *http.Request) {
	tb.Helper()
	st := memstore.New()
	tb.Cleanup(func() { _ = st.Close() })
	var ids []string
	for from := 0; from < n; from += 500 {
		if err := st.Update(tb.Context(), func(tx imds.Tx) error {
			for i := from; i < min(from+500, n); i++ {
				in := storetest.NewInstance(tb, i+1)
				in.MetadataOptions.HttpTokens = imds.Optional
				in.Tags = append(in.Tags, imds.Tag{Key: "Name", Value: fmt.Sprintf("web-%d", i)})
				ids = append(ids, in.InstanceID)
				if err := imds.PutInstance(tx, in); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	tr := usage.New(st, usage.Options{Node: "n1"})
	for i := 0; i < len(ids); i += 10 {
		r := httptest.NewRequest("GET", "http://169.254.169.254/latest/meta-data/", nil)
		r.Header.Set("User-Agent", "legacy/1")
		tr.Request(r, &dataplane.RequestEvent{InstanceID: ids[i], IMDSVersion: 1, Status: 200, Outcome: dataplane.OutcomeServed, Start: time.Now()})
	}
	if err := tr.Flush(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	cp := controlplane.New(st, creds, controlplane.Options{})
	h := console.New(st, cp, tr, creds, console.Options{CacheFor: cacheFor}).Handler()
	// Sign in once and reuse the cookie.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", strings.TrimPrefix(console.LoginURL("http://x", creds, time.Now(), 0), "http://x"), nil))
	cookie := w.Result().Cookies()[0]
	return h, func(path string) *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		r.AddCookie(cookie)
		return r
	}
}

// 10,000 instances are listed 50 to a page, filters apply to the whole
// fleet, and the last page is reachable.
func TestInstanceListPaginatesTenThousand(t *testing.T) {
	h, get := fleet(t, 10000, time.Minute)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, get("/console/instances?page=200"))
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, "10000 instances · page 200 of 200") || strings.Count(body, `<a class="mono" href="/console/instances/`) != 50 {
		t.Fatalf("page 200 of 10,000: %d\n%.2000s", w.Code, body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, get("/console/instances?tag=Name%3Dweb-9999"))
	if body := w.Body.String(); !strings.Contains(body, "1 instance · page 1 of 1") {
		t.Errorf("tag filter over 10,000: %.1500s", body)
	}
}

// BenchmarkInstanceListPage renders one list page: the baseline is a fleet
// of 100; the figure that matters is 10,000 instances, read from the store
// on every view (no cache) and from the short cache.
func BenchmarkInstanceListPage(b *testing.B) {
	for _, c := range []struct {
		name  string
		n     int
		cache time.Duration
	}{
		{"baseline_100_instances_uncached", 100, time.Nanosecond},
		{"10000_instances_uncached", 10000, time.Nanosecond},
		{"10000_instances_cached", 10000, time.Hour},
	} {
		b.Run(c.name, func(b *testing.B) {
			h, get := fleet(b, c.n, c.cache)
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, get("/console/instances?page=3"))
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
