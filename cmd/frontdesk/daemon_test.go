package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// daemon is a frontdesk started in-process through run(), as main would.
type daemon struct {
	dataURL  string
	data6URL string // the --listen-ipv6 data plane, if any
	apiURL   string
	dataDir  string
	logs     *syncBuffer // what the daemon logged (stderr)
	stop     func() error
}

// syncBuffer is a log sink the daemon writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startDaemon runs `frontdesk serve` with the given extra flags (a later
// flag overrides an earlier one) on loopback ports chosen by the kernel, and
// waits until it prints "ready". The log is kept and shown if tb fails.
func startDaemon(tb testing.TB, dataDir string, extra ...string) *daemon {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	args := append([]string{"frontdesk", "serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, extra...)
	seedIdentityKeys(tb, dataDir, extra)
	d := &daemon{dataDir: dataDir, logs: &syncBuffer{}}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, func(string) string { return "" }, strings.NewReader(""), pw, d.logs)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	var once sync.Once
	d.stop = func() error {
		var err error
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				tb.Error("daemon did not stop within 20s")
			}
		})
		return err
	}
	tb.Cleanup(func() {
		if err := d.stop(); err != nil {
			tb.Errorf("daemon: %v", err)
		}
		if tb.Failed() {
			tb.Logf("daemon log (tail):\n%s", tailString(d.logs.String(), 6000))
		}
	})
	var mu sync.Mutex
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			switch {
			case strings.HasPrefix(line, "data plane: "):
				d.dataURL = strings.TrimPrefix(line, "data plane: ")
			case strings.HasPrefix(line, "data plane (IPv6): "):
				d.data6URL = strings.TrimPrefix(line, "data plane (IPv6): ")
			case strings.HasPrefix(line, "control plane: "):
				d.apiURL = strings.TrimPrefix(line, "control plane: ")
			case line == "ready":
				close(ready)
			}
			mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		tb.Fatalf("daemon exited before ready: %v\n%s", err, tailString(d.logs.String(), 4000))
	case <-time.After(30 * time.Second):
		tb.Fatal("daemon not ready within 30s")
	}
	mu.Lock()
	defer mu.Unlock()
	return d
}

// do does one plain HTTP request against the data plane.
func (d *daemon) do(t *testing.T, method, path string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	return d.doWith(t, http.DefaultClient, method, path, hdr)
}

// doWith does one HTTP request against the data plane through c (e.g. a
// guest's client, see opsClient) and returns the status, the headers and
// the whole body.
func (d *daemon) doWith(t *testing.T, c *http.Client, method, path string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, d.dataURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (d *daemon) token(t *testing.T, ttl string) string {
	t.Helper()
	status, _, body := d.do(t, http.MethodPut, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl})
	if status != 200 {
		t.Fatalf("token PUT: %d", status)
	}
	return body
}

// noEnv is an empty environment: credentials then come only from a data
// dir, never from the machine running the tests.
func noEnv(string) string { return "" }

// adminKey reads the access key pair from the admin.credentials a daemon
// wrote into dataDir.
func adminKey(tb testing.TB, dataDir string) (id, secret string) {
	tb.Helper()
	p, _, err := apiclient.LoadCredentials(context.Background(), dataDir, noEnv)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := p.Retrieve(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return c.AccessKeyID, c.SecretAccessKey
}

// apiFor is an SDK EC2 client for the control plane at apiURL, signed with
// the admin credentials in dataDir and built without reading the
// environment. It is apiclient's: the transport fix for the SDK's
// client-side race and the standard retryer, unless an option says
// otherwise (noRetries).
func apiFor(tb testing.TB, dataDir, apiURL string, opts ...func(*apiclient.Options)) *ec2.Client {
	tb.Helper()
	creds, _, err := apiclient.LoadCredentials(context.Background(), dataDir, noEnv)
	if err != nil {
		tb.Fatal(err)
	}
	var o apiclient.Options
	for _, opt := range opts {
		opt(&o)
	}
	return apiclient.New(apiURL, creds, o).EC2()
}

// launch registers one instance at addr through RunInstances, the request
// adjusted by mods (nil ones are skipped), and returns its id.
func launch(ctx context.Context, tb testing.TB, c *ec2.Client, addr string, mods ...func(*ec2.RunInstancesInput)) string {
	tb.Helper()
	in := &ec2.RunInstancesInput{
		ImageId:          aws.String("ami-0abcdef1234567890"),
		MinCount:         aws.Int32(1),
		MaxCount:         aws.Int32(1),
		PrivateIpAddress: aws.String(addr),
	}
	for _, mod := range mods {
		if mod != nil {
			mod(in)
		}
	}
	out, err := c.RunInstances(ctx, in)
	if err != nil {
		tb.Fatalf("RunInstances %s: %v", addr, err)
	}
	if len(out.Instances) != 1 || aws.ToString(out.Instances[0].InstanceId) == "" {
		tb.Fatalf("RunInstances %s returned %d instances", addr, len(out.Instances))
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// httpTokens launches an instance with HttpTokens v.
func httpTokens(v types.HttpTokensState) func(*ec2.RunInstancesInput) {
	return func(in *ec2.RunInstancesInput) {
		if in.MetadataOptions == nil {
			in.MetadataOptions = &types.InstanceMetadataOptionsRequest{}
		}
		in.MetadataOptions.HttpTokens = v
	}
}

// waitApplied waits until c's DescribeInstances reports the metadata
// options of every instance in ids applied, i.e. the data plane has reached
// the revision of the last modification, and fails the test after within.
func waitApplied(ctx context.Context, tb testing.TB, c *ec2.Client, within time.Duration, ids ...string) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			tb.Fatalf("DescribeInstances: %v", err)
		}
		applied := 0
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				if in.MetadataOptions != nil && in.MetadataOptions.State == types.InstanceMetadataOptionsStateApplied {
					applied++
				}
			}
		}
		if applied == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d instances applied after %s", applied, len(ids), within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noRetries makes apiFor's client send every call once, so that the test
// sees every failure the control plane answers (and, for writes, knows
// exactly which were acknowledged).
func noRetries(o *apiclient.Options) { o.MaxAttempts = 1 }
