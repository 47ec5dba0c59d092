package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawRequest writes bytes as they are (no client-side cleaning) and returns
// the status code of the answer.
func rawRequest(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Whatever a guest sends, the data plane answers with a clean 4xx: never a
// 5xx, never a panic, and it keeps serving.
func TestBadInputGetsClean4xx(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo")
	addr := strings.TrimPrefix(d.dataURL, "http://")
	tok := d.token(t, "60")
	const host = "Host: 169.254.169.254\r\n"
	cases := []struct {
		name string
		req  string
		want int
	}{
		{"malformed_token_returns_401", "GET /latest/meta-data/instance-id HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: not-a-token\r\n\r\n", 401},
		{"truncated_token_returns_401", "GET /latest/meta-data/instance-id HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: " + tok[:len(tok)-3] + "\r\n\r\n", 401},
		{"overlong_token_returns_401", "GET /latest/meta-data/instance-id HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: " + strings.Repeat(tok, 100) + "\r\n\r\n", 401},
		{"token_with_binary_garbage_returns_401", "GET /latest/meta-data/instance-id HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: \x80\x81\xfe\xff\r\n\r\n", 401},
		{"two_token_headers_return_401", "GET /latest/meta-data/instance-id HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: " + tok + "\r\nX-aws-ec2-metadata-token: " + tok + "\r\n\r\n", 401},
		{"huge_headers_return_431", "GET /latest/meta-data/ HTTP/1.1\r\n" + host + "X-Junk: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431},
		{"dot_dot_segment_returns_404", "GET /latest/meta-data/../user-data HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: " + tok + "\r\n\r\n", 404},
		{"encoded_dot_dot_returns_404", "GET /latest/meta-data/%2e%2e/user-data HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: " + tok + "\r\n\r\n", 404},
		{"non_utf8_path_returns_404", "GET /latest/meta-data/%ff%fe HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: " + tok + "\r\n\r\n", 404},
		{"nul_in_path_returns_404", "GET /latest/meta-data/a%00b HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token: " + tok + "\r\n\r\n", 404},
		{"odd_method_returns_405", "BREW /latest/meta-data/ HTTP/1.1\r\n" + host + "\r\n", 405},
		{"options_on_metadata_returns_405", "OPTIONS /latest/meta-data/ HTTP/1.1\r\n" + host + "\r\n", 405},
		{"ttl_with_spaces_and_garbage_returns_400", "PUT /latest/api/token HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token-ttl-seconds: 12abc\r\nContent-Length: 0\r\n\r\n", 400},
		{"huge_ttl_returns_400", "PUT /latest/api/token HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token-ttl-seconds: 99999999999999999999999\r\nContent-Length: 0\r\n\r\n", 400},
		{"put_with_a_body_still_needs_the_exact_path", "PUT /latest/api/token/../token HTTP/1.1\r\n" + host + "X-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 3\r\n\r\nabc", 403},
		{"malformed_request_line_returns_400", "GET\r\n\r\n", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := rawRequest(t, addr, c.req); got != c.want {
				t.Fatalf("status %d, want %d", got, c.want)
			}
		})
	}
	// Still serving.
	if status, _, body := d.do(t, "GET", "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": tok}); status != 200 || body != demoInstanceID {
		t.Fatalf("after bad input: %d %q", status, body)
	}
}
