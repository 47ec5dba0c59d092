package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

// countInstances returns how many instances DescribeInstances lists.
func (e *env) countInstances() int {
	e.t.Helper()
	out, err := e.client.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ids(out))
}

func TestRunInstancesWithSameClientTokenReturnsSameReservation(t *testing.T) {
	e := newEnv(t, nil)
	run := func(addr string) (*ec2.RunInstancesOutput, error) {
		return e.client.RunInstances(context.Background(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			PrivateIpAddress: aws.String(addr), ClientToken: aws.String("launch-web-1"),
		})
	}
	first, err := run("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := run("192.0.2.1")
	if err != nil {
		t.Fatalf("repeated RunInstances with the same token: %v", err)
	}
	if *again.Instances[0].InstanceId != *first.Instances[0].InstanceId || *again.ReservationId != *first.ReservationId {
		t.Fatalf("repeat answered %s/%s, first %s/%s", *again.Instances[0].InstanceId, *again.ReservationId, *first.Instances[0].InstanceId, *first.ReservationId)
	}
	if n := e.countInstances(); n != 1 {
		t.Fatalf("%d instances after two identical launches", n)
	}

	_, err = run("192.0.2.2")
	if c := code(t, err); c != "IdempotentParameterMismatch" {
		t.Fatalf("same token, other parameters: %q", c)
	}
	if n := e.countInstances(); n != 1 {
		t.Fatalf("%d instances after a mismatching token", n)
	}

	// A different token is a different launch (the SDK fills a fresh one
	// in every call).
	e.launch("192.0.2.2", nil)
	if n := e.countInstances(); n != 2 {
		t.Fatalf("%d instances after a second launch", n)
	}

	_, err = e.client.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		PrivateIpAddress: aws.String("192.0.2.3"), ClientToken: aws.String(strings.Repeat("a", 65)),
	})
	if c := code(t, err); c != "InvalidParameterValue" {
		t.Fatalf("65-character token: %q", c)
	}
}

// losingTransport forwards every request but drops the answer of the first
// one, failing it the way a connection closed under the response does, so
// the SDK retries a RunInstances the server already carried out.
type losingTransport struct {
	rt    http.RoundTripper
	calls atomic.Int32
}

func (l *losingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if l.calls.Add(1) > 1 || err != nil {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
}

func TestRetriedRunInstancesLaunchesOnce(t *testing.T) {
	e := newEnv(t, nil)
	lt := &losingTransport{rt: readOnlyBodyTransport{http.DefaultTransport}}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(testCreds.AccessKeyID, testCreds.SecretAccessKey, ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.RateLimiter = ratelimit.None
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
		HTTPClient: &http.Client{Transport: lt},
	}
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(e.url) })
	out, err := client.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		PrivateIpAddress: aws.String("192.0.2.1"),
	})
	if err != nil {
		t.Fatalf("RunInstances retried after a lost answer: %v", err)
	}
	if lt.calls.Load() != 2 {
		t.Fatalf("%d attempts, want 2 (the test did not exercise a retry)", lt.calls.Load())
	}
	if n := e.countInstances(); n != 1 {
		t.Fatalf("%d instances after a retried launch", n)
	}
	if e.stored(*out.Instances[0].InstanceId).State != imds.StateRunning {
		t.Fatal("the answered instance is not the launched one")
	}
}

// tokenWithHash returns a token whose hash does (sweep) or does not make
// its launch sweep expired records.
func tokenWithHash(t *testing.T, sweep bool) string {
	t.Helper()
	for i := range 100000 {
		tok := "tok-" + strconv.Itoa(i)
		sum := sha256.Sum256([]byte(tok))
		if (sum[0]&clientTokenSweepMask == 0) == sweep {
			return tok
		}
	}
	t.Fatal("no token found")
	return ""
}

func TestClientTokenRecordsExpireAndAreSwept(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	old, fresh := "old", "fresh"
	err := st.Update(ctx, func(tx imds.Tx) error {
		if err := putClientToken(tx, old, clientTokenRecord{Params: "p", ReservationID: "r-old", Created: t0}); err != nil {
			return err
		}
		return putClientToken(tx, fresh, clientTokenRecord{Params: "p", ReservationID: "r-fresh", Created: t0.Add(20 * time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		_ = st.View(ctx, func(tx imds.Tx) error {
			return tx.Scan(clientTokenPrefix, func(string, []byte) error { n++; return nil })
		})
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("%d records stored, want 2", n)
	}
	now := t0.Add(clientTokenTTL + time.Hour)
	_ = st.View(ctx, func(tx imds.Tx) error {
		if rec, err := getClientToken(tx, old, now); err != nil || rec != nil {
			t.Errorf("expired token still honoured: %+v %v", rec, err)
		}
		if rec, err := getClientToken(tx, fresh, now); err != nil || rec == nil || rec.ReservationID != "r-fresh" {
			t.Errorf("live token not honoured: %+v %v", rec, err)
		}
		return nil
	})

	// A launch that does not sweep keeps the expired record ...
	if err := st.Update(ctx, func(tx imds.Tx) error {
		return putClientToken(tx, tokenWithHash(t, false), clientTokenRecord{Params: "p", Created: now})
	}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d records after a non-sweeping launch, want 3", n)
	}
	// ... and one that sweeps deletes exactly the expired one.
	if err := st.Update(ctx, func(tx imds.Tx) error {
		return putClientToken(tx, tokenWithHash(t, true), clientTokenRecord{Params: "p", Created: now})
	}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d records after a sweeping launch, want 3", n)
	}
	key, _ := clientTokenKey(old)
	_ = st.View(ctx, func(tx imds.Tx) error {
		if _, err := tx.Get(key); !errors.Is(err, imds.ErrNotFound) {
			t.Errorf("expired record survived the sweep: %v", err)
		}
		return nil
	})
	// Records are JSON the next version can read.
	_ = st.View(ctx, func(tx imds.Tx) error {
		k, _ := clientTokenKey(fresh)
		b, err := tx.Get(k)
		var rec clientTokenRecord
		if err != nil || json.Unmarshal(b, &rec) != nil || rec.ReservationID != "r-fresh" {
			t.Errorf("record %s: %v", b, err)
		}
		return nil
	})
}
