package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawGet makes one request on a new connection, as the SDKs do against
// IMDS, without an HTTP client that might retry and hide a transport error.
func rawGet(addr, path, token string) (int, error) {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	head := "GET " + path + " HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: bounds-test\r\n"
	if token != "" {
		head += "X-aws-ec2-metadata-token: " + token + "\r\n"
	}
	if _, err := io.WriteString(c, head+"\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// With default flags, 256 concurrent clients of one instance (a new
// connection per request, one token reused) see only 200 and 429: never a
// reset, an EOF or an empty reply.
func TestDefaultFlagsAnswerEveryConcurrentClient(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo")
	tok := d.token(t, "300")
	addr := opsHostOf(t, d.dataURL)
	const clients, each = 256, 12
	var mu sync.Mutex
	statuses := map[int]int{}
	var errs []error
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range each {
				status, err := rawGet(addr, "/latest/meta-data/instance-id", tok)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					statuses[status]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d clients × %d requests: statuses %v, transport errors %d", clients, each, statuses, len(errs))
	if len(errs) > 0 {
		t.Fatalf("%d transport errors, first: %v", len(errs), errs[0])
	}
	for s := range statuses {
		if s != http.StatusOK && s != http.StatusTooManyRequests {
			t.Fatalf("status %d among the answers %v; want only 200 and 429", s, statuses)
		}
	}
	if statuses[http.StatusOK] == 0 {
		t.Fatal("no request was served")
	}
}

// --listen binds IPv4 only: a wildcard address does not open a dual-stack
// socket that would serve IPv6 callers without the IPv6 rules, and an IPv6
// address is refused with a pointer to --listen-ipv6; --listen-ipv6 binds
// IPv6 only.
func TestListenIsIPv4Only(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional", "--listen", "0.0.0.0:0")
	_, port, err := net.SplitHostPort(opsHostOf(t, d.dataURL))
	if err != nil {
		t.Fatal(err)
	}
	if status, err := rawGet("127.0.0.1:"+port, "/latest/meta-data/instance-id", ""); err != nil || status != 200 {
		t.Fatalf("over IPv4: %d %v", status, err)
	}
	if c, err := net.DialTimeout("tcp6", "[::1]:"+port, 2*time.Second); err == nil {
		c.Close()
		t.Fatal("the --listen port accepted an IPv6 connection")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// And --listen-ipv6 is IPv6 only: its wildcard takes no IPv4 caller.
	d6 := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional", "--listen-ipv6", "[::]:0")
	u, err := url.Parse(d6.data6URL)
	if err != nil || u.Port() == "" {
		t.Fatalf("IPv6 data plane URL %q: %v", d6.data6URL, err)
	}
	if c, err := net.DialTimeout("tcp4", "127.0.0.1:"+u.Port(), 2*time.Second); err == nil {
		c.Close()
		t.Fatal("the --listen-ipv6 port accepted an IPv4 connection")
	}
	if c, err := net.DialTimeout("tcp6", "[::1]:"+u.Port(), 2*time.Second); err != nil {
		t.Fatalf("the --listen-ipv6 port refused an IPv6 connection: %v", err)
	} else {
		c.Close()
	}
	var out, errOut strings.Builder
	err = run(ctx, []string{"frontdesk", "serve", "--store", "memory", "--data-dir", t.TempDir(), "--listen", "[::1]:0", "--api-listen", "127.0.0.1:0"},
		noEnv, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--listen-ipv6") {
		t.Fatalf("serve --listen [::1]:0: %v, want an error pointing to --listen-ipv6", err)
	}
}
