package bolt_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

// history is small so that the suite can write past it quickly.
const history = 8

func open(t *testing.T, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	storetest.RunWith(t, func(t *testing.T) imds.Store {
		return open(t, filepath.Join(t.TempDir(), "frontdesk.db"), bolt.Options{History: history})
	}, storetest.Options{Compact: storetest.WritePast(history)})
}

func TestReopenKeepsDataAndRevision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frontdesk.db")
	s := open(t, path, bolt.Options{})
	ctx := t.Context()
	for i, v := range []string{"a", "b", "c"} {
		if err := s.Update(ctx, func(tx imds.Tx) error { return tx.Put("k/"+strconv.Itoa(i), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, bolt.Options{})
	t.Cleanup(func() { _ = s.Close() })
	var rev int64
	var got []string
	err := s.View(ctx, func(tx imds.Tx) error {
		rev = tx.Revision()
		return tx.Scan("k/", func(_ string, v []byte) error { got = append(got, string(v)); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev != 3 || !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after reopen: revision %d, values %q; want 3, [a b c]", rev, got)
	}

	t.Run("watch_from_before_reopen_is_compacted", func(t *testing.T) {
		ch, err := s.Watch(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if b := <-ch; !errors.Is(b.Err, imds.ErrCompacted) {
			t.Fatalf("first batch = %+v, want ErrCompacted: history does not survive a restart", b)
		}
	})
	t.Run("revision_continues_after_reopen", func(t *testing.T) {
		ch, err := s.Watch(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, func(tx imds.Tx) error { return tx.Put("k/3", []byte("d")) }); err != nil {
			t.Fatal(err)
		}
		select {
		case b := <-ch:
			if b.Revision != 4 || b.Err != nil {
				t.Fatalf("batch = %+v, want revision 4", b)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no batch")
		}
	})
}

func TestFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "frontdesk.db")
	s := open(t, path, bolt.Options{})
	t.Cleanup(func() { _ = s.Close() })
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("file mode %o, want 600", m)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m&0o077 != 0 {
		t.Fatalf("created data directory mode %o, want no group/other access", m)
	}
}

func TestSecondOpenFailsInsteadOfHanging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frontdesk.db")
	s := open(t, path, bolt.Options{})
	t.Cleanup(func() { _ = s.Close() })
	start := time.Now()
	// The lock is per open file, so a second Open in this process stands
	// in for a second daemon.
	s2, err := bolt.Open(path, bolt.Options{Timeout: 200 * time.Millisecond})
	if err == nil {
		_ = s2.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, imds.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second Open = %v, want ErrUnavailable saying the file is locked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second Open took %s, want about the 200ms timeout", d)
	}
}

// crashEnv names the database a re-executed test binary hammers until it is
// killed (see TestCrashChild).
const crashEnv = "FRONTDESK_BOLT_CRASH_DB"

// TestCrashChild is the child half of TestCrashKeepsAcknowledgedWrites. It
// does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		return
	}
	s, err := bolt.Open(path, bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	var next int64
	if err := s.View(context.Background(), func(tx imds.Tx) error { next = tx.Revision() + 1; return nil }); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	for i := next; i < next+100000; i++ {
		// os.Stdout is unbuffered: a printed line has reached the pipe.
		fmt.Printf("start %d\n", i)
		err := s.Update(context.Background(), func(tx imds.Tx) error {
			if err := tx.Put(crashKey(i), []byte(strconv.FormatInt(i, 10))); err != nil {
				return err
			}
			return tx.Put("crash/last", []byte(strconv.FormatInt(i, 10)))
		})
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(2)
		}
		fmt.Printf("ack %d\n", i)
	}
	os.Exit(0)
}

func crashKey(i int64) string { return fmt.Sprintf("crash/n/%08d", i) }

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frontdesk.db")
	var acked int64
	for round := range 3 {
		lastStart, lastAck := crashRound(t, path, 20+rand.IntN(40))
		if lastAck < acked {
			t.Fatalf("round %d: child acknowledged up to %d, below the %d of an earlier round", round, lastAck, acked)
		}
		acked = lastAck

		s := open(t, path, bolt.Options{})
		var (
			rev  int64
			keys []string
			last string
		)
		err := s.View(t.Context(), func(tx imds.Tx) error {
			rev = tx.Revision()
			if v, err := tx.Get("crash/last"); err == nil {
				last = string(v)
			}
			return tx.Scan("crash/n/", func(k string, v []byte) error {
				keys = append(keys, k)
				return nil
			})
		})
		if cerr := s.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		// Each Update wrote one key and bumped the revision once, from 1.
		n := int64(len(keys))
		if n < lastAck {
			t.Fatalf("round %d: %d writes survived, but %d were acknowledged", round, n, lastAck)
		}
		if n > lastStart {
			t.Fatalf("round %d: %d writes present, but only %d were started", round, n, lastStart)
		}
		for i, k := range keys {
			if want := crashKey(int64(i + 1)); k != want {
				t.Fatalf("round %d: key %d is %s, want %s (a hole in the history)", round, i, k, want)
			}
		}
		if rev != n || last != strconv.FormatInt(n, 10) {
			t.Fatalf("round %d: revision %d and crash/last %q, want both %d: a commit was torn", round, rev, last, n)
		}
		t.Logf("round %d: started %d, acknowledged %d, found %d", round, lastStart, lastAck, n)
	}
}

// crashRound runs the child until it has acknowledged acks more writes,
// kills it with SIGKILL, and returns the highest started and acknowledged
// write numbers it printed.
func crashRound(t *testing.T, path string, acks int) (lastStart, lastAck int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	seen, killed := 0, false
	for sc.Scan() {
		word, num, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.ParseInt(num, 10, 64)
		switch word {
		case "start":
			lastStart = n
		case "ack":
			lastAck = n
			seen++
		case "error":
			t.Fatalf("child: %s", num)
		}
		if seen == acks && !killed {
			// Kill at a random point of the following commits, which take
			// a few milliseconds each (fsync), so the child usually dies
			// inside one.
			killed = true
			time.AfterFunc(time.Duration(rand.IntN(5000))*time.Microsecond, func() {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			})
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child exit = %v, want killed by SIGKILL", err)
	}
	return lastStart, lastAck
}
