package main

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// 64 clients doing the IMDSv2 dance (token PUT, then GET) at once for a few
// seconds: every request must succeed. The best-known mock crashes here.
func TestConcurrentIMDSv2Clients(t *testing.T) {
	// One instance makes all the calls: lift the per-instance rate limit,
	// which has its own tests.
	d := startDaemon(t, t.TempDir(), "--demo", "--rate-limit", "0", "--max-conns-per-instance", "0")
	const clients = 64
	stopAt := time.Now().Add(3 * time.Second)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second}
			for time.Now().Before(stopAt) {
				if err := dance(c, d.dataURL); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d iterations failed; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() < clients {
		t.Fatalf("only %d iterations completed", ok.Load())
	}
	t.Logf("%d token+GET iterations, no errors", ok.Load())
}

func dance(c *http.Client, base string) error {
	req, _ := http.NewRequest(http.MethodPut, base+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return &statusError{resp.StatusCode}
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/latest/meta-data/instance-id", nil)
	req.Header.Set("X-aws-ec2-metadata-token", string(tok))
	resp, err = c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != demoInstanceID {
		return &statusError{resp.StatusCode}
	}
	return nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }
