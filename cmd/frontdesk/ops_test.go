package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// opsClient is an HTTP client for the data plane whose connections come
// from src (an address of 127.0.0.0/8), i.e. from the guest bound to it.
func opsClient(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil},
		Timeout:   10 * time.Second,
	}
}

// opsGet does one GET and returns the status, the whole body and how long
// it took.
func opsGet(c *http.Client, u string) (int, string, time.Duration, error) {
	start := time.Now()
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(start), err
}

// opsPercentile returns the p-th percentile (0 < p ≤ 100) of ds.
func opsPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// opsStatusLine reads the status line of the answer on conn.
func opsStatusLine(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the status line: %v", err)
	}
	return strings.TrimSpace(line)
}

func opsHostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestOpsSlowLorisIsDropped(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional", "--rate-limit", "0")
	addr := opsHostOf(t, d.dataURL)
	const loris = 8

	type result struct {
		held time.Duration
		err  error
	}
	results := make(chan result, loris)
	start := time.Now()
	for range loris {
		go func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nX-Slow: "); err != nil {
				results <- result{err: err}
				return
			}
			// One byte every 100 ms: the headers never end. The reader
			// sees the server close the connection.
			closed := make(chan time.Duration, 1)
			go func() {
				_, _ = io.Copy(io.Discard, conn)
				closed <- time.Since(start)
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case held := <-closed:
					results <- result{held: held}
					return
				case <-tick.C:
					_, _ = conn.Write([]byte("a"))
				case <-time.After(10 * time.Second):
					results <- result{err: errors.New("still open after 10s")}
					return
				}
			}
		}()
	}

	// Meanwhile an ordinary client is served.
	c := opsClient("127.0.0.1")
	var lat []time.Duration
	for time.Since(start) < 2500*time.Millisecond {
		status, body, took, err := opsGet(c, d.dataURL+"/latest/meta-data/instance-id")
		if err != nil || status != 200 || body != demoInstanceID {
			t.Fatalf("an ordinary request during the slow loris: %d %q %v", status, body, err)
		}
		lat = append(lat, took)
		time.Sleep(20 * time.Millisecond)
	}
	for range loris {
		r := <-results
		if r.err != nil {
			t.Errorf("slow loris: %v", r.err)
			continue
		}
		// ReadHeaderTimeout is 2 s.
		if r.held < 1500*time.Millisecond || r.held > 4*time.Second {
			t.Errorf("the slow loris held its connection %v, want about 2s", r.held)
		}
	}
	// Every ordinary request above was answered; how fast is a figure for
	// the log, not a bound (timing claims are benchmarks, not unit tests).
	t.Logf("%d ordinary requests during the slow loris: p50 %v, p99 %v", len(lat), opsPercentile(lat, 50), opsPercentile(lat, 99))
}

func TestOpsOversizedRequests(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional", "--rate-limit", "0")

	t.Run("data-plane headers over 16 KiB get 431", func(t *testing.T) {
		conn, err := net.Dial("tcp", opsHostOf(t, d.dataURL))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// net/http allows 4 KiB of slack above MaxHeaderBytes.
		big := strings.Repeat("a", 32<<10)
		go func() {
			_, _ = io.WriteString(conn, "GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nX-Big: "+big+"\r\n\r\n")
		}()
		if got := opsStatusLine(t, conn); got != "HTTP/1.1 431 Request Header Fields Too Large" {
			t.Errorf("status line %q, want 431", got)
		}
		status, body, _, err := opsGet(opsClient("127.0.0.1"), d.dataURL+"/latest/meta-data/instance-id")
		if err != nil || status != 200 || body != demoInstanceID {
			t.Errorf("after the oversized request: %d %q %v", status, body, err)
		}
	})

	t.Run("a declared control-plane body over 1 MiB is refused before it is sent", func(t *testing.T) {
		conn, err := net.Dial("tcp", opsHostOf(t, d.apiURL))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Only 64 KiB of the 2 MiB announced are ever sent: the answer
		// must come anyway.
		head := "POST / HTTP/1.1\r\nHost: frontdesk\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2097152\r\n\r\n"
		if _, err := io.WriteString(conn, head+"Action=DescribeInstances&X="+strings.Repeat("a", 64<<10)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer while the body was still being sent: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "<Code>RequestEntityTooLarge</Code>") {
			t.Errorf("answer %d %s, want 413 RequestEntityTooLarge", resp.StatusCode, b)
		}
	})

	// A body is read only for a request that claims the admin key, a
	// current date and the right scope; such a body over the limit is cut
	// off, and one without is refused before any of it is read.
	keyID, _ := adminKey(t, d.dataDir)
	amzDate := time.Now().UTC().Format("20060102T150405Z")
	claim := "Authorization: AWS4-HMAC-SHA256 Credential=" + keyID + "/" + amzDate[:8] + "/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64) + "\r\nX-Amz-Date: " + amzDate + "\r\n"
	for _, tt := range []struct {
		name, claim, code string
		status            int
	}{
		{"a chunked control-plane body over the limit is cut off", claim, "RequestEntityTooLarge", http.StatusRequestEntityTooLarge},
		{"an unsigned chunked body is refused before it is read", "", "AuthFailure", http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", opsHostOf(t, d.apiURL))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var sent sync.WaitGroup
			sent.Go(func() {
				w := bufio.NewWriter(conn)
				fmt.Fprint(w, "POST / HTTP/1.1\r\nHost: frontdesk\r\nContent-Type: application/x-www-form-urlencoded\r\n"+tt.claim+"Transfer-Encoding: chunked\r\n\r\n")
				chunk := strings.Repeat("a", 32<<10)
				for range 64 { // 2 MiB; the writes fail once the server hangs up
					if _, err := fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
						return
					}
				}
				fmt.Fprint(w, "0\r\n\r\n")
				_ = w.Flush()
			})
			defer sent.Wait()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), "<Code>"+tt.code+"</Code>") {
				t.Errorf("answer %d %s, want %d %s", resp.StatusCode, b, tt.status, tt.code)
			}
			conn.Close()
		})
	}

	resp, err := http.Get(d.apiURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("control plane after the oversized bodies: %d", resp.StatusCode)
	}
}

func TestOpsConnectionCap(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional", "--rate-limit", "0", "--max-conns-per-instance", "4")
	addr := opsHostOf(t, d.dataURL)
	second := launchOpsGuest(t, d.apiURL, d.dataDir, d.dataURL)

	// The demo guest holds its 4 connections, each with half a request
	// head (the kernel hands a connection over once data arrives; the
	// server closes them after ReadHeaderTimeout, 2 s).
	var held []net.Conn
	for range 4 {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET /latest/meta-data/ HTTP/1.1\r\n"); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		t.Cleanup(func() { c.Close() })
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them

	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(over, "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Logf("write on the fifth connection: %v", err)
	}
	// Over the cap the answer is a 429 with Retry-After, never a reset.
	if line := opsStatusLine(t, over); !strings.HasPrefix(line, "HTTP/1.1 429 ") {
		t.Errorf("the fifth connection of one guest: %q, want a 429 at once", line)
	}

	status, body, _, err := opsGet(opsClient("127.0.0.2"), d.dataURL+"/latest/meta-data/instance-id")
	if err != nil || status != 200 || body != second {
		t.Errorf("the other guest while the first is at its cap: %d %q %v", status, body, err)
	}
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		status, body, _, err := opsGet(opsClient("127.0.0.1"), d.dataURL+"/latest/meta-data/instance-id")
		if err == nil && status == 200 && body == demoInstanceID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo guest is not served again after closing its connections: %d %q %v", status, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// launchOpsGuest registers an instance at 127.0.0.2 (IMDSv1 allowed)
// through the control plane, signed with the admin credentials the daemon
// wrote, and waits until the data plane serves it. It returns its id.
func launchOpsGuest(t *testing.T, apiURL, dataDir, dataURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iid := launch(ctx, t, apiFor(t, dataDir, apiURL), "127.0.0.2", httpTokens(ec2types.HttpTokensStateOptional))
	c := opsClient("127.0.0.2")
	for {
		status, body, _, err := opsGet(c, dataURL+"/latest/meta-data/instance-id")
		if err == nil && status == 200 && body == iid {
			return iid
		}
		if ctx.Err() != nil {
			t.Fatalf("the data plane does not serve %s at 127.0.0.2: %d %q %v", iid, status, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
