package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

const describeBody = "Action=DescribeInstances&Version=2016-11-15"

// signedPost builds a form POST signed like the SDKs sign it.
func signedPost(t *testing.T, endpoint, body string, c AdminCredentials, region string, at time.Time, signContentLength bool) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	n := req.ContentLength
	if !signContentLength {
		// botocore (the AWS CLI) does not sign Content-Length.
		req.ContentLength = 0
	}
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "ec2", region, at)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = n
	return req
}

// do sends req and returns status and the EC2 error code ("" on success).
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	var er struct {
		Code      string `xml:"Errors>Error>Code"`
		Message   string `xml:"Errors>Error>Message"`
		RequestID string `xml:"RequestID"`
	}
	if err := xml.Unmarshal(b, &er); err != nil {
		t.Fatalf("error body is not an EC2 error document: %v\n%s", err, b)
	}
	if er.RequestID == "" || er.Message == "" {
		t.Fatalf("error document lacks RequestID or Message:\n%s", b)
	}
	if strings.Contains(string(b), testCreds.SecretAccessKey) {
		t.Fatalf("error body contains the secret key")
	}
	return resp.StatusCode, er.Code
}

func TestSignatureChecks(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	wrongSecret := testCreds
	wrongSecret.SecretAccessKey = "another/secret/key/0123456789abcdefghijk"
	otherKey := testCreds
	otherKey.AccessKeyID = "AKIAOTHERKEY00000000"

	tamper := func(r *http.Request) *http.Request {
		r.Body = io.NopCloser(strings.NewReader("Action=DescribeInstances&Version=2016-11-15&DryRun=true"))
		r.ContentLength = int64(len("Action=DescribeInstances&Version=2016-11-15&DryRun=true"))
		return r
	}
	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantCode   string
	}{
		{"unsigned_request_is_auth_failure", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader(describeBody))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 401, "AuthFailure"},
		{"sdk_style_signature_is_accepted", func() *http.Request {
			return signedPost(t, e.url, describeBody, testCreds, "us-east-1", now, true)
		}, 200, ""},
		{"cli_style_signature_without_content_length_is_accepted", func() *http.Request {
			return signedPost(t, e.url, describeBody, testCreds, "us-east-1", now, false)
		}, 200, ""},
		{"wrong_secret_is_signature_mismatch", func() *http.Request {
			return signedPost(t, e.url, describeBody, wrongSecret, "us-east-1", now, true)
		}, 403, "SignatureDoesNotMatch"},
		{"unknown_access_key_is_auth_failure", func() *http.Request {
			return signedPost(t, e.url, describeBody, otherKey, "us-east-1", now, true)
		}, 401, "AuthFailure"},
		{"other_region_is_auth_failure", func() *http.Request {
			return signedPost(t, e.url, describeBody, testCreds, "eu-west-1", now, true)
		}, 401, "AuthFailure"},
		{"body_changed_after_signing_is_signature_mismatch", func() *http.Request {
			return tamper(signedPost(t, e.url, describeBody, testCreds, "us-east-1", now, false))
		}, 403, "SignatureDoesNotMatch"},
		{"stale_date_is_request_expired", func() *http.Request {
			return signedPost(t, e.url, describeBody, testCreds, "us-east-1", now.Add(-6*time.Minute), true)
		}, 400, "RequestExpired"},
		{"future_date_is_request_expired", func() *http.Request {
			return signedPost(t, e.url, describeBody, testCreds, "us-east-1", now.Add(6*time.Minute), true)
		}, 400, "RequestExpired"},
		{"date_within_skew_is_accepted", func() *http.Request {
			return signedPost(t, e.url, describeBody, testCreds, "us-east-1", now.Add(-4*time.Minute), true)
		}, 200, ""},
		{"garbled_authorization_is_incomplete_signature", func() *http.Request {
			r := signedPost(t, e.url, describeBody, testCreds, "us-east-1", now, true)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			return r
		}, 400, "IncompleteSignature"},
		{"changed_signed_header_is_signature_mismatch", func() *http.Request {
			r := signedPost(t, e.url, describeBody, testCreds, "us-east-1", now, true)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=latin1")
			return r
		}, 403, "SignatureDoesNotMatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, c := do(t, tt.req())
			if status != tt.wantStatus || c != tt.wantCode {
				t.Errorf("got %d %q, want %d %q", status, c, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestWrongSecretThroughSDKIsSignatureDoesNotMatch(t *testing.T) {
	e := newEnv(t, nil)
	bad := testCreds
	bad.SecretAccessKey = "not/the/right/secret/0123456789abcdefghi"
	_, err := newClient(e.url, bad).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if got := code(t, err); got != "SignatureDoesNotMatch" {
		t.Fatalf("got %q, want SignatureDoesNotMatch", got)
	}
}

func TestServerWithoutCredentialsRefusesEverything(t *testing.T) {
	srv := httptest.NewServer(New(memstore.New(), AdminCredentials{}, Options{}).Handler())
	t.Cleanup(srv.Close)
	_, err := newClient(srv.URL, testCreds).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if got := code(t, err); got != "AuthFailure" {
		t.Fatalf("got %q, want AuthFailure", got)
	}
}

func presign(t *testing.T, endpoint string, q url.Values, at time.Time, expires int) string {
	t.Helper()
	if expires > 0 {
		q.Set("X-Amz-Expires", strconv.Itoa(expires))
	}
	req, _ := http.NewRequest(http.MethodGet, endpoint+"/?"+q.Encode(), nil)
	sum := sha256.Sum256(nil)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: testCreds.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "ec2", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestPresignedGet(t *testing.T) {
	e := newEnv(t, nil)
	q := func() url.Values {
		return url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}
	}
	get := func(u string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		return r
	}
	now := time.Now()
	t.Run("valid_presigned_url_is_accepted", func(t *testing.T) {
		if status, c := do(t, get(presign(t, e.url, q(), now, 300))); status != 200 {
			t.Fatalf("got %d %s", status, c)
		}
	})
	t.Run("changed_parameter_is_signature_mismatch", func(t *testing.T) {
		u := strings.Replace(presign(t, e.url, q(), now, 300), "DescribeInstances", "TerminateInstances", 1)
		if _, c := do(t, get(u)); c != "SignatureDoesNotMatch" {
			t.Fatalf("got %q", c)
		}
	})
	t.Run("expired_presigned_url_is_request_expired", func(t *testing.T) {
		if _, c := do(t, get(presign(t, e.url, q(), now.Add(-10*time.Minute), 60))); c != "RequestExpired" {
			t.Fatalf("got %q", c)
		}
	})
	t.Run("presigned_url_within_expiry_is_accepted_after_skew", func(t *testing.T) {
		if status, c := do(t, get(presign(t, e.url, q(), now.Add(-10*time.Minute), 3600))); status != 200 {
			t.Fatalf("got %d %s", status, c)
		}
	})
}

func TestOversizedBodyIsRefusedBeforeReading(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	body := describeBody + "&Pad=" + strings.Repeat("x", 2048)
	t.Run("declared_length_over_limit", func(t *testing.T) {
		status, c := do(t, signedPost(t, e.url, body, testCreds, "us-east-1", time.Now(), true))
		if status != http.StatusRequestEntityTooLarge || c != "RequestEntityTooLarge" {
			t.Fatalf("got %d %q", status, c)
		}
	})
	t.Run("chunked_body_over_limit", func(t *testing.T) {
		r := signedPost(t, e.url, body, testCreds, "us-east-1", time.Now(), false)
		r.ContentLength = -1 // sent chunked: the limit is hit while reading
		r.Body = io.NopCloser(strings.NewReader(body))
		status, c := do(t, r)
		if status != http.StatusRequestEntityTooLarge || c != "RequestEntityTooLarge" {
			t.Fatalf("got %d %q", status, c)
		}
	})
}
