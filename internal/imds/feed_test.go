package imds

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A watcher resuming from far back gets the whole kept history even when it
// is longer than a watcher's live buffer (this once deadlocked).
func TestFeedReplaysHistoryLongerThanTheBuffer(t *testing.T) {
	const n = watcherBuffer + 500
	f := NewFeed(0, n)
	for i := int64(1); i <= n; i++ {
		f.Publish(Batch{Revision: i, Changes: []Change{{Key: "k"}}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		ch, err := f.Watch(ctx, 0)
		if err != nil {
			done <- err
			return
		}
		want := int64(1)
		for b := range ch {
			if b.Revision != want {
				done <- errors.New("out of order")
				return
			}
			if want == n {
				done <- nil
				return
			}
			want++
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not replay the history")
	}
}

func TestFeedWatchFromBeforeHistoryIsCompacted(t *testing.T) {
	f := NewFeed(0, 2)
	for i := int64(1); i <= 5; i++ {
		f.Publish(Batch{Revision: i})
	}
	ch, err := f.Watch(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if !errors.Is(b.Err, ErrCompacted) {
		t.Fatalf("got %+v, want ErrCompacted", b)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed after ErrCompacted")
	}
}
