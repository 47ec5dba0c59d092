package controlplane

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// A request whose head cannot be authentic (no signature, an unknown key,
// a date outside the skew, a wrong scope) is answered before its body is
// read: the body announced here is never sent, yet the answer comes.
func TestRequestsThatCannotBeAuthenticAreRefusedBeforeTheBody(t *testing.T) {
	e := newEnv(t, nil)
	host := strings.TrimPrefix(e.url, "http://")
	now := time.Now().UTC()
	auth := func(key string, at time.Time, region string) string {
		d := at.Format(amzDateFormat)
		return "Authorization: AWS4-HMAC-SHA256 Credential=" + key + "/" + d[:8] + "/" + region + "/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=" +
			strings.Repeat("0", 64) + "\r\nX-Amz-Date: " + d + "\r\n"
	}
	for _, tt := range []struct {
		name, head, code string
	}{
		{"no_signature", "", "AuthFailure"},
		{"unknown_access_key", auth("AKIAUNKNOWN000000000", now, "us-east-1"), "AuthFailure"},
		{"date_outside_the_skew", auth(testCreds.AccessKeyID, now.Add(-time.Hour), "us-east-1"), "RequestExpired"},
		{"wrong_region", auth(testCreds.AccessKeyID, now, "eu-west-1"), "AuthFailure"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			head := "POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/x-www-form-urlencoded\r\n" + tt.head +
				"Content-Length: 200000\r\n\r\n"
			if _, err := io.WriteString(c, head); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer while the body is unsent: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), "<Code>"+tt.code+"</Code>") {
				t.Fatalf("answer %d %s, want %s", resp.StatusCode, b, tt.code)
			}
		})
	}
}

// The default body limit fits the largest legitimate request and nothing
// much bigger.
func TestDefaultBodyLimitFitsTheLargestRequest(t *testing.T) {
	e := newEnv(t, nil)
	// 16 KiB of user data whose base64 is all '+' and '/' (each
	// form-encoded as three bytes), and 50 tags of the longest keys and
	// values: the largest RunInstances there is.
	var kv []string
	for i := range 50 {
		kv = append(kv, fmt.Sprintf("%03d", i)+strings.Repeat("+", 125), strings.Repeat("+", 256))
	}
	launched := e.launch("192.0.2.50", func(in *ec2.RunInstancesInput) {
		in.UserData = aws.String(strings.Repeat("+/+/", 16383/3)) // 16,383 bytes raw
		in.TagSpecifications = tagSpec(kv...)
	})
	if launched.InstanceId == nil {
		t.Fatal("the largest legitimate RunInstances was refused")
	}
	if DefaultMaxBodyBytes > 512<<10 {
		t.Fatalf("DefaultMaxBodyBytes = %d: larger than anything legitimate needs", DefaultMaxBodyBytes)
	}
}

// Unauthenticated requests are logged at debug level only: a stranger who
// can reach the port cannot fill the log at the default level.
func TestUnauthenticatedRequestsAreLoggedAtDebug(t *testing.T) {
	var buf bytes.Buffer
	e := newEnv(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	for range 20 {
		resp, err := http.Post(e.url+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=DescribeInstances&Version=2016-11-15"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unsigned request: %d", resp.StatusCode)
		}
	}
	if buf.Len() != 0 {
		t.Fatalf("unsigned requests wrote at INFO:\n%s", buf.String())
	}
}

// The control plane's connections are capped: one over the cap waits until
// another closes.
func TestLimitListenerCapsConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Listener = LimitListener(l, 2)
	srv.Start()
	defer srv.Close()
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond) // let the server take both
	third := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := third.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("a third connection was served while two were held")
	}
	held[0].Close()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	resp.Body.Close()
}
