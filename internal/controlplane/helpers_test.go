package controlplane

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

// testCreds are fixed admin credentials for tests (not a real AWS key).
var testCreds = AdminCredentials{
	AccessKeyID:     "AKIAFRONTDESKTEST000",
	SecretAccessKey: "frontdesk/test/secret/key/0123456789abcdefg",
}

// env is one control plane behind httptest with a real EC2 client.
type env struct {
	t       *testing.T
	srv     *Server
	store   *memstore.Store
	url     string
	client  *ec2.Client
	applied atomic.Int64
}

// revisionOnly is a data plane that serves no instance and has reached a
// store revision.
type revisionOnly struct{ rev *atomic.Int64 }

func (r revisionOnly) Applied() int64                      { return r.rev.Load() }
func (r revisionOnly) AppliedOptions(string) (int64, bool) { return 0, false }

// healthFuncs is a Health made of two functions; a nil components lists none.
type healthFuncs struct {
	ready      func() error
	components func() map[string]error
}

func (h healthFuncs) Ready() error { return h.ready() }

func (h healthFuncs) Components() map[string]error {
	if h.components == nil {
		return nil
	}
	return h.components()
}

// newEnv starts a control plane; tweak adjusts the options first.
func newEnv(t *testing.T, tweak func(*Options)) *env {
	t.Helper()
	e := &env{t: t, store: memstore.New()}
	t.Cleanup(func() { _ = e.store.Close() })
	opts := Options{DataPlane: revisionOnly{&e.applied}}
	if tweak != nil {
		tweak(&opts)
	}
	e.srv = New(e.store, testCreds, opts)
	hs := httptest.NewServer(e.srv.Handler())
	t.Cleanup(hs.Close)
	e.url = hs.URL
	e.client = newClient(hs.URL, testCreds)
	return e
}

func newClient(url string, c AdminCredentials) *ec2.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:  &http.Client{Transport: readOnlyBodyTransport{http.DefaultTransport}},
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(url) })
}

// readOnlyBodyTransport hides the WriterTo of the SDK's request body.
// smithy-go closes the request body as soon as the response headers arrive,
// and its closed body's WriteTo returns io.EOF; net/http's write loop, still
// making its final read of the body, takes that EOF for a write error and
// closes the connection under the response being read ("use of closed
// network connection"). On loopback a fast answer hits this often. With Read
// only, the closed body reports a clean EOF.
type readOnlyBodyTransport struct{ rt http.RoundTripper }

func (t readOnlyBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = struct{ io.ReadCloser }{req.Body}
	}
	return t.rt.RoundTrip(req)
}

// code returns the EC2 error code of err ("" for nil).
func code(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorCode()
}

func message(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorMessage()
}

// launch runs one instance at addr and returns it.
func (e *env) launch(addr string, mod func(*ec2.RunInstancesInput)) types.Instance {
	e.t.Helper()
	in := &ec2.RunInstancesInput{
		ImageId:          aws.String("ami-0123456789abcdef0"),
		MinCount:         aws.Int32(1),
		MaxCount:         aws.Int32(1),
		PrivateIpAddress: aws.String(addr),
	}
	if mod != nil {
		mod(in)
	}
	out, err := e.client.RunInstances(context.Background(), in)
	if err != nil {
		e.t.Fatalf("RunInstances: %v", err)
	}
	if len(out.Instances) != 1 {
		e.t.Fatalf("RunInstances returned %d instances", len(out.Instances))
	}
	return out.Instances[0]
}

// stored reads an instance straight from the store.
func (e *env) stored(id string) *imds.Instance {
	e.t.Helper()
	var in *imds.Instance
	err := e.store.View(context.Background(), func(tx imds.Tx) error {
		var err error
		in, err = imds.GetInstance(tx, id)
		return err
	})
	if err != nil {
		e.t.Fatalf("GetInstance %s: %v", id, err)
	}
	return in
}

// revision returns the store's current revision.
func (e *env) revision() int64 {
	e.t.Helper()
	var rev int64
	_ = e.store.View(context.Background(), func(tx imds.Tx) error {
		rev = tx.Revision()
		return nil
	})
	return rev
}
