package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/credentials"
)

func TestLiveReloadSharesTheStartUpOptions(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := ResolverOptions{Now: func() time.Time { return clock }}
	path := filepath.Join(t.TempDir(), "frontdesk.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	issued := func(l *Live, role string) time.Time {
		t.Helper()
		c, err := l.Resolve(role).Retrieve(ctx, credentials.Target{InstanceID: "i-1", AccountID: "123456789012", Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return c.LastUpdated
	}
	write("credentials: {default: {provider: local}}\n")
	l, err := OpenLive(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := issued(l, "web"); !got.Equal(clock) {
		t.Fatalf("start-up provider issued at %v, want the injected clock's %v", got, clock)
	}
	before := l.Resolve("web")

	write("credentials: [this is: not, valid\n")
	if err := l.Reload(ctx); err == nil {
		t.Fatal("Reload of a broken file returned nil")
	}
	if l.Resolve("web") != before {
		t.Fatal("a failed reload replaced the running providers")
	}

	write("credentials: {default: {provider: local}}\n")
	if err := l.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Resolve("web") == before {
		t.Fatal("a good reload kept the old providers")
	}
	if got := issued(l, "web"); !got.Equal(clock) {
		t.Fatalf("reloaded provider issued at %v, want the injected clock's %v", got, clock)
	}
}

func TestLiveWithoutAFile(t *testing.T) {
	l, err := OpenLive(context.Background(), "", ResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Resolve("web") == nil {
		t.Fatal("no provider without a configuration file")
	}
	if err := l.Reload(context.Background()); !errors.Is(err, ErrNoFile) {
		t.Fatalf("Reload without a file = %v, want ErrNoFile", err)
	}
}
