package credentials

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults the fake STS endpoint can inject.
const (
	faultNone = iota
	fault500
	faultThrottle
	faultSlow // answers correctly after stsSlowDelay
	faultDenied
)

const stsSlowDelay = 3 * time.Second

// fakeSTS is an STS-compatible endpoint: it answers AssumeRole with the XML
// real STS sends, so the SDK's own client and parser are what is tested.
type fakeSTS struct {
	srv   *httptest.Server
	now   func() time.Time
	fault atomic.Int32
	delay atomic.Int64 // extra latency for every call, in ns

	mu        sync.Mutex
	calls     []url.Values
	auth      []string
	bySession map[string]int
}

func newFakeSTS(t testing.TB, now func() time.Time) *fakeSTS {
	t.Helper()
	f := &fakeSTS{now: now, bySession: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSTS) URL() string { return f.srv.URL }

func (f *fakeSTS) Calls() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.calls...)
}

func (f *fakeSTS) SessionCalls(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bySession[name]
}

func (f *fakeSTS) Auth() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...)
}

func (f *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost ||
		r.PostForm.Get("Action") != "AssumeRole" || r.PostForm.Get("Version") != "2011-06-15" {
		stsError(w, http.StatusBadRequest, "Sender", "InvalidAction", "Could not find operation")
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, r.PostForm)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.bySession[r.PostForm.Get("RoleSessionName")]++
	f.mu.Unlock()

	delay := time.Duration(f.delay.Load())
	fault := f.fault.Load()
	if fault == faultSlow {
		delay += stsSlowDelay
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	switch fault {
	case fault500:
		stsError(w, http.StatusInternalServerError, "Receiver", "InternalFailure", "An internal error occurred.")
		return
	case faultThrottle:
		stsError(w, http.StatusBadRequest, "Sender", "Throttling", "Rate exceeded")
		return
	case faultDenied:
		stsError(w, http.StatusForbidden, "Sender", "AccessDenied",
			"User: arn:aws:iam::123456789012:user/host is not authorized to perform: sts:AssumeRole on resource: "+r.PostForm.Get("RoleArn"))
		return
	}

	secs, _ := strconv.Atoi(r.PostForm.Get("DurationSeconds"))
	if secs == 0 {
		secs = 3600
	}
	var b [40]byte
	_, _ = rand.Read(b[:])
	key := "ASIA" + base32.StdEncoding.EncodeToString(b[:10])
	session := r.PostForm.Get("RoleSessionName")
	srcID := ""
	if s := r.PostForm.Get("SourceIdentity"); s != "" {
		srcID = "\n    <SourceIdentity>" + s + "</SourceIdentity>"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", "c6104cbe-af31-11e0-8154-cbc7ccf896c7")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>%s
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/%s</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:%s</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>%s</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2luX2VjEF%s</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
`, srcID, session, session, key, base32.StdEncoding.EncodeToString(b[10:35]), base32.StdEncoding.EncodeToString(b[:]),
		f.now().UTC().Add(time.Duration(secs)*time.Second).Format(time.RFC3339))
}

func stsError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>%s</Type>
    <Code>%s</Code>
    <Message>%s</Message>
  </Error>
  <RequestId>4b1b3d3e-a3b4-4c7a-9c1e-0d2f3e4a5b6c</RequestId>
</ErrorResponse>
`, typ, code, msg)
}
