//go:build integration

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// SIGKILL in the middle of a burst of control-plane writes: after a
// restart every acknowledged write is there, and nothing that was never
// sent. (A write in flight at the kill may land or not: it was not
// acknowledged, and EC2 gives no more.)
func TestDurabilityAcrossSIGKILL(t *testing.T) {
	bin := buildFrontdesk(t)
	dir := t.TempDir()
	p := startProc(t, bin, procOptions{dataDir: dir}, "--demo", "--log-level", "warn")
	// No retries: a retried write would blur which writes were acknowledged.
	api := apiFor(t, p.dataDir, p.apiURL, noRetries)

	// Each writer sets its own tag to 1, 2, 3, ...: EC2 allows 50 tags per
	// instance, so the burst rewrites values rather than adding keys.
	const writers = 4
	var (
		mu        sync.Mutex
		lastAcked [writers]int // highest value whose CreateTags returned OK
		lastSent  [writers]int // highest value ever sent
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 1; ctx.Err() == nil; i++ {
				mu.Lock()
				lastSent[w] = i
				mu.Unlock()
				_, err := api.CreateTags(ctx, &ec2.CreateTagsInput{
					Resources: []string{demoInstanceID},
					Tags:      []types.Tag{{Key: aws.String(fmt.Sprintf("writer-%d", w)), Value: aws.String(strconv.Itoa(i))}},
				})
				if err != nil {
					return // the daemon is gone
				}
				mu.Lock()
				lastAcked[w] = i
				mu.Unlock()
			}
		})
	}
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range lastAcked {
			n += v
		}
		return n
	}
	// Let the burst run, then kill without warning.
	deadline := time.Now().Add(10 * time.Second)
	for total() < 400 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	cancel()
	wg.Wait()
	acked := total()
	if acked < 50 {
		t.Fatalf("only %d writes acknowledged before the kill", acked)
	}

	p2 := startProc(t, bin, procOptions{dataDir: dir}, "--log-level", "warn")
	out, err := apiFor(t, p2.dataDir, p2.apiURL, noRetries).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{demoInstanceID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatal("the demo instance is gone after the restart")
	}
	stored := map[string]string{}
	for _, tag := range out.Reservations[0].Instances[0].Tags {
		stored[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	mu.Lock()
	defer mu.Unlock()
	landed := 0
	for w := range writers {
		v, err := strconv.Atoi(stored[fmt.Sprintf("writer-%d", w)])
		if err != nil && lastAcked[w] > 0 {
			t.Errorf("writer %d: tag missing after restart (last acknowledged %d)", w, lastAcked[w])
			continue
		}
		switch {
		case v < lastAcked[w]:
			t.Errorf("writer %d: stored %d, but %d was acknowledged: an acknowledged write was lost", w, v, lastAcked[w])
		case v > lastSent[w]:
			t.Errorf("writer %d: stored %d, but only up to %d was ever sent", w, v, lastSent[w])
		case v > lastAcked[w]:
			landed++ // in flight at the kill: may land or not
		}
	}
	for k := range stored {
		if k != "Name" && k != "Environment" && k != "team" && !strings.HasPrefix(k, "writer-") {
			t.Errorf("a tag that was never sent: %q", k)
		}
	}
	t.Logf("%d writes acknowledged before SIGKILL, every one present after restart; %d in-flight writes landed", acked, landed)
}
