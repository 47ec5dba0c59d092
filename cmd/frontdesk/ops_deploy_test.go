package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/config"
)

// deployDir is the repository's deploy/ directory, seen from this package.
const deployDir = "../../deploy"

// opsFlagNames lists the flags a subcommand defines, from its -h output.
func opsFlagNames(t *testing.T, sub string) map[string]bool {
	t.Helper()
	var stdout strings.Builder
	e := &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &stdout, stderr: io.Discard}
	// Called directly rather than through run: the units must be checked
	// whatever subcommands() dispatches.
	cmds := map[string]func(context.Context, *env, []string) error{"serve": cmdServe, "netsetup": cmdNetsetup}
	err := cmds[sub](context.Background(), e, []string{"-h"})
	if !errors.Is(err, errHelpShown) {
		t.Fatalf("frontdesk %s -h: %v, want the help shown", sub, err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(stdout.String(), -1) {
		names[m[1]] = true
	}
	if len(names) < 3 {
		t.Fatalf("frontdesk %s -h lists no flags:\n%s", sub, stdout.String())
	}
	return names
}

// checkFlags fails for every -flag or --flag in args that sub does not define.
func checkFlags(t *testing.T, where, sub string, args []string) {
	t.Helper()
	known := opsFlagNames(t, sub)
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !known[name] {
			t.Errorf("%s: frontdesk %s has no flag %q", where, sub, a)
		}
	}
}

// unitDirective returns the values of key in a systemd unit file.
func unitDirective(t *testing.T, path, key string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vals []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.TrimSpace(k) == key {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

func TestOpsDeployFiles(t *testing.T) {
	unit := filepath.Join(deployDir, "systemd", "frontdesk.service")
	netUnit := filepath.Join(deployDir, "systemd", "frontdesk-netsetup.service")
	example := filepath.Join(deployDir, "frontdesk.yaml")

	t.Run("the example configuration loads", func(t *testing.T) {
		cfg, err := config.Load(example)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Credentials.Default.Provider != config.ProviderLocal || len(cfg.Credentials.Roles) == 0 {
			t.Errorf("the example shows no roles or no default: %+v", cfg.Credentials)
		}
	})

	t.Run("the netsetup unit runs netsetup with real flags", func(t *testing.T) {
		execs := unitDirective(t, netUnit, "ExecStart")
		if len(execs) != 1 {
			t.Fatalf("ExecStart lines: %q", execs)
		}
		args := strings.Fields(execs[0])
		if len(args) < 2 || args[0] != "/usr/local/bin/frontdesk" || args[1] != "netsetup" {
			t.Fatalf("ExecStart %q does not run frontdesk netsetup", execs[0])
		}
		checkFlags(t, netUnit, "netsetup", args[2:])
	})

	t.Run("the service's ExecStart starts the daemon", func(t *testing.T) {
		execs := unitDirective(t, unit, "ExecStart")
		if len(execs) != 1 {
			t.Fatalf("ExecStart lines: %q", execs)
		}
		args := strings.Fields(execs[0])
		if len(args) < 2 || args[0] != "/usr/local/bin/frontdesk" || args[1] != "serve" {
			t.Fatalf("ExecStart %q does not run frontdesk serve", execs[0])
		}
		checkFlags(t, unit, "serve", args[2:])
		if !strings.Contains(execs[0], "--listen 169.254.169.254:80") {
			t.Errorf("ExecStart does not serve 169.254.169.254:80: %s", execs[0])
		}
		// The same command line, moved to loopback and a temporary state
		// directory, must start and stop cleanly.
		state := t.TempDir()
		repl := strings.NewReplacer("169.254.169.254:80", "127.0.0.1:0", "127.0.0.1:1339", "127.0.0.1:0",
			"/var/lib/frontdesk", state, "/etc/frontdesk/frontdesk.yaml", example)
		local := []string{"frontdesk"}
		for _, a := range args[1:] {
			local = append(local, repl.Replace(a))
		}
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := run(ctx, local, func(string) string { return "" }, strings.NewReader(""), pw, io.Discard)
			pw.Close()
			done <- err
		}()
		sc := bufio.NewScanner(pr)
		ready := false
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready = true
				break
			}
		}
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		cancel()
		select {
		case err := <-done:
			if !ready || err != nil {
				t.Errorf("%q: ready %v, exit %v", local, ready, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the daemon did not stop")
		}
		if _, err := os.Stat(filepath.Join(state, "admin.credentials")); err != nil {
			t.Errorf("no admin credentials in the state directory: %v", err)
		}
	})

	t.Run("the service is an unprivileged, hardened, reloadable unit", func(t *testing.T) {
		for key, want := range map[string]string{
			"Type":                    "notify",
			"NotifyAccess":            "main",
			"WatchdogSec":             "30s",
			"User":                    "frontdesk",
			"ExecReload":              "/bin/kill -HUP $MAINPID",
			"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
			"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
			"NoNewPrivileges":         "yes",
			"ProtectSystem":           "strict",
			"StateDirectory":          "frontdesk",
			"PrivateTmp":              "yes",
			"Requires":                "frontdesk-netsetup.service",
			"ProtectKernelTunables":   "yes",
			"RestrictSUIDSGID":        "yes",
			"SystemCallArchitectures": "native",
		} {
			if got := unitDirective(t, unit, key); len(got) != 1 || got[0] != want {
				t.Errorf("%s=%q, want %q", key, got, want)
			}
		}
		// Drain takes up to 10 s: systemd must wait longer before SIGKILL.
		got := unitDirective(t, unit, "TimeoutStopSec")
		if len(got) != 1 {
			t.Fatalf("TimeoutStopSec=%q", got)
		}
		if d, err := time.ParseDuration(got[0]); err != nil || d <= 10*time.Second {
			t.Errorf("TimeoutStopSec=%s leaves the 10 s drain no time (%v)", got[0], err)
		}
	})

	t.Run("the container image builds a static binary and runs as nonroot", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(deployDir, "container", "Containerfile"))
		if err != nil {
			t.Fatal(err)
		}
		cf := string(b)
		for _, want := range []string{"FROM scratch", "USER 65532:65532", "EXPOSE 80 1338 1339", "NET_BIND_SERVICE", "--demo-callers"} {
			if !strings.Contains(cf, want) {
				t.Errorf("Containerfile lacks %q", want)
			}
		}
		if n := strings.Count(cf, "\nFROM "); n != 1 {
			t.Errorf("Containerfile has %d stages, want one FROM scratch (nothing to pull)", n)
		}
		sh, err := os.ReadFile(filepath.Join(deployDir, "container", "build.sh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/frontdesk"} {
			if !strings.Contains(string(sh), want) {
				t.Errorf("build.sh lacks %q", want)
			}
		}
		m := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindStringSubmatch(cf)
		if m == nil {
			t.Fatal("Containerfile has no exec-form CMD")
		}
		var cmd []string
		if err := json.Unmarshal([]byte(m[1]), &cmd); err != nil {
			t.Fatalf("CMD: %v", err)
		}
		if len(cmd) == 0 || cmd[0] != "serve" {
			t.Fatalf("CMD %q does not run serve", cmd)
		}
		checkFlags(t, "Containerfile CMD", "serve", cmd[1:])
		if !strings.Contains(fmt.Sprint(cmd), "--data-dir /var/lib/frontdesk") || !strings.Contains(cf, "VOLUME [\"/var/lib/frontdesk\"]") {
			t.Error("the image does not keep its state in the /var/lib/frontdesk volume")
		}
	})
}
