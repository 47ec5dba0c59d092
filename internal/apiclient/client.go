// Package apiclient is the operator's client of frontdesk's control plane:
// an AWS SDK EC2 client for the EC2 actions frontdesk implements, plus
// SigV4-signed Query calls for frontdesk's extension actions, which the SDK
// cannot send because its models do not know them.
//
// Both halves sign with the same credentials and decode EC2 error documents:
// the SDK into smithy.APIError, the raw calls into *APIError, which also
// implements smithy.APIError, so callers check codes one way (ErrorCode).
package apiclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

// APIVersion is the EC2 Query API version frontdesk speaks.
const APIVersion = "2016-11-15"

// DefaultRegion is the region frontdesk pretends to be unless configured
// otherwise; signatures must be scoped to it.
const DefaultRegion = "us-east-1"

// DefaultEndpoint is where `frontdesk serve` listens for the control plane
// by default.
const DefaultEndpoint = "http://127.0.0.1:1339"

// maxResponseBytes bounds what a raw call reads: frontdesk's answers are
// small, and a misdirected endpoint must not make the client read forever.
const maxResponseBytes = 8 << 20

// Options are the optional knobs of a Client; the zero value works.
type Options struct {
	// Region scopes the signatures (default DefaultRegion).
	Region string
	// HTTPClient sends every request (default: a client over
	// http.DefaultTransport with a 30 s timeout). Its transport is wrapped
	// with ReadOnlyBodyTransport either way.
	HTTPClient *http.Client
	// Now is the signing clock (default time.Now).
	Now func() time.Time
	// MaxAttempts bounds the attempts of one call, the first included
	// (default 3, the SDK's standard).
	MaxAttempts int
}

// Client talks to one frontdesk control plane.
type Client struct {
	endpoint string
	creds    aws.CredentialsProvider
	opts     Options
	http     *http.Client
	ec2      *ec2.Client
	signer   *v4.Signer
	retryer  aws.Retryer
}

// New returns a client of the control plane at endpoint (e.g.
// http://127.0.0.1:1339) signing with creds.
func New(endpoint string, creds aws.CredentialsProvider, opts Options) *Client {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = retry.DefaultMaxAttempts
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		hc = &c
	}
	inner := hc.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	hc.Transport = ReadOnlyBodyTransport{Next: inner}

	newRetryer := func() aws.Retryer {
		// The standard retryer, not NopRetryer: it retries net.ErrClosed,
		// which the SDK's own client-side race produces now and then (see
		// ReadOnlyBodyTransport); RunInstances stays safe through the
		// ClientToken the SDK fills in.
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = opts.MaxAttempts
			// A control plane that refuses the connection is not running:
			// say so at once instead of after three attempts.
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(notRunning)}, o.Retryables...)
		})
	}
	cfg := aws.Config{
		Region:      opts.Region,
		Credentials: creds,
		HTTPClient:  hc,
		Retryer:     newRetryer,
	}
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.BaseEndpoint = aws.String(strings.TrimRight(endpoint, "/"))
	})
	return &Client{
		endpoint: strings.TrimRight(endpoint, "/") + "/",
		creds:    creds,
		opts:     opts,
		http:     hc,
		ec2:      client,
		signer:   v4.NewSigner(),
		retryer:  newRetryer(),
	}
}

// notRunning marks a refused or unroutable connection as not retryable.
func notRunning(err error) aws.Ternary {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && !oe.Timeout() {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// EC2 returns the SDK client for the EC2 actions frontdesk implements.
func (c *Client) EC2() *ec2.Client { return c.ec2 }

// Endpoint returns the control plane URL the client talks to.
func (c *Client) Endpoint() string { return strings.TrimSuffix(c.endpoint, "/") }

// ReadOnlyBodyTransport hides the io.WriterTo of request bodies from the
// transport it wraps.
//
// smithy-go closes the request body as soon as the response headers arrive
// (aws/aws-sdk-go-v2 #1825, #2737), and its closed body's WriteTo returns
// io.EOF; net/http's write loop, still making its final read of the body,
// takes that EOF for a write error and closes the connection under the
// response being read ("use of closed network connection"). On loopback a
// fast answer hits this often. With Read only, the closed body reports a
// clean EOF.
type ReadOnlyBodyTransport struct {
	// Next sends the request (nil: http.DefaultTransport).
	Next http.RoundTripper
}

// RoundTrip sends req with its body reduced to Read and Close.
func (t ReadOnlyBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = struct{ io.ReadCloser }{req.Body}
	}
	return next.RoundTrip(req)
}

// APIError is an EC2 error document answered to a raw call. It implements
// smithy.APIError so that SDK and raw errors are checked alike.
type APIError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code is EC2's error code, e.g. InvalidInstanceID.NotFound.
	Code string
	// Message is the human-readable explanation.
	Message string
	// RequestID identifies the request in the server's log.
	RequestID string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("api error %s: %s", e.Code, e.Message)
}

// ErrorCode implements smithy.APIError.
func (e *APIError) ErrorCode() string { return e.Code }

// ErrorMessage implements smithy.APIError.
func (e *APIError) ErrorMessage() string { return e.Message }

// HTTPStatusCode lets the SDK's retryer treat 5xx answers as retryable.
func (e *APIError) HTTPStatusCode() int { return e.StatusCode }

// ErrorFault implements smithy.APIError: 5xx answers are the server's fault.
func (e *APIError) ErrorFault() smithy.ErrorFault {
	if e.StatusCode >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// ErrorCode returns the EC2 error code carried by err, from the SDK or from
// a raw call, or "" when err is not an API error.
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// errorDocument is EC2's error body.
type errorDocument struct {
	XMLName xml.Name `xml:"Response"`
	Errors  []struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Errors>Error"`
	RequestID string `xml:"RequestID"`
}

// Call sends one signed Query request (Action, Version and params as a
// form POST) and decodes a successful XML answer into out (nil: ignore
// it). A non-200 answer is an *APIError. Calls whose repetition would do
// something twice must pass idempotent=false: they are then sent once.
func (c *Client) Call(ctx context.Context, action string, params url.Values, out any, idempotent bool) error {
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("Action", action)
	form.Set("Version", APIVersion)
	body := form.Encode()
	attempts := 1
	if idempotent {
		attempts = c.opts.MaxAttempts
	}
	var err error
	for i := range attempts {
		if i > 0 {
			d, derr := c.retryer.RetryDelay(i, err)
			if derr != nil {
				d = 100 * time.Millisecond
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w", action, ctx.Err())
			case <-time.After(d):
			}
		}
		err = c.send(ctx, body, out)
		if err == nil || !c.retryer.IsErrorRetryable(err) {
			break
		}
	}
	var ae *APIError
	if err != nil && !errors.As(err, &ae) {
		return fmt.Errorf("%s: %w", action, err)
	}
	return err
}

func (c *Client) send(ctx context.Context, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	sum := sha256.Sum256([]byte(body))
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ec2", c.opts.Region, c.opts.Now()); err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp, b)
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// decodeError turns a non-200 answer into an *APIError, whether or not the
// body is an EC2 error document (a proxy's page is not).
func decodeError(resp *http.Response, body []byte) error {
	ae := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-Requestid")}
	var doc errorDocument
	if err := xml.Unmarshal(body, &doc); err == nil && len(doc.Errors) > 0 {
		ae.Code = doc.Errors[0].Code
		ae.Message = doc.Errors[0].Message
		if doc.RequestID != "" {
			ae.RequestID = doc.RequestID
		}
		return ae
	}
	ae.Code = fmt.Sprintf("HTTP%d", resp.StatusCode)
	ae.Message = "unexpected answer: " + http.StatusText(resp.StatusCode)
	if s := strings.TrimSpace(string(bytes.ToValidUTF8(body, nil))); s != "" && len(s) <= 200 {
		ae.Message += ": " + s
	}
	return ae
}

// Region returns the region the client signs for.
func (c *Client) Region() string { return c.opts.Region }
