package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
)

// Every command answers -h and --help the way operators' tools do: usage on
// stdout, exit 0, nothing on stderr.
func TestEveryCommandHasHelp(t *testing.T) {
	commands := [][]string{{"identity", "certificates"}}
	// Every subcommand, and every command of every group, however deep.
	var walk func(path []string)
	walk = func(path []string) {
		commands = append(commands, path)
		for name := range groupCommands(strings.Join(path, " ")) {
			walk(append(append([]string{}, path...), name))
		}
	}
	for name := range subcommands() {
		walk([]string{name})
	}
	if len(commands) < 30 {
		t.Fatalf("found only %d commands: the walk is broken", len(commands))
	}
	for _, cmd := range commands {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, cmd...), h)
			t.Run(strings.Join(args, "_"), func(t *testing.T) {
				r := cliRun(t, "", args...)
				if r.err != nil {
					t.Fatalf("frontdesk %s: %v (exit %d)", strings.Join(args, " "), r.err, r.code())
				}
				if !strings.Contains(r.stdout, "usage:") {
					t.Errorf("stdout has no usage:\n%s", r.stdout)
				}
				if r.stderr != "" {
					t.Errorf("stderr not empty:\n%s", r.stderr)
				}
			})
		}
	}
}

// groupCommands lists a command group's subcommands by asking it for help.
func groupCommands(group string) map[string]bool {
	r := cliRunNoT(append(strings.Fields(group), "help"))
	names := map[string]bool{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "  ") && len(f) > 0 {
			names[f[0]] = true
		}
	}
	return names
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := cliRunNoT(args)
		if r.err != nil || !strings.HasPrefix(r.stdout, "frontdesk ") || !strings.Contains(r.stdout, "go1.") {
			t.Errorf("frontdesk %s = %q, %v", args[0], r.stdout, r.err)
		}
	}
}

// A value that cannot work is refused before anything starts, naming the
// flag, with exit status 2.
func TestServeRefusesBadValuesAtStart(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--rate-limit", "-5"}, "--rate-limit"},
		{[]string{"--rate-burst", "-1"}, "--rate-burst"},
		{[]string{"--max-conns-per-instance", "-3"}, "--max-conns-per-instance"},
		{[]string{"--max-trees", "0"}, "--max-trees"},
		{[]string{"--metrics-max-instances", "-1"}, "--metrics-max-instances"},
		{[]string{"--listen", "nonsense"}, "--listen"},
		{[]string{"--store", "sqlite"}, "--store"},
		{[]string{"--store", "etcd"}, "--etcd-endpoints"},
		{[]string{"--log-format", "xml"}, "--log-format"},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			r := cliRun(t, "", append([]string{"serve", "--data-dir", t.TempDir()}, tc.args...)...)
			if r.code() != 2 || !strings.Contains(r.err.Error(), tc.flag) {
				t.Fatalf("exit %d, err %v: want exit 2 naming %s", r.code(), r.err, tc.flag)
			}
		})
	}
}

func TestClientErrorsAreOneLine(t *testing.T) {
	t.Run("unknown_flag_once_without_usage", func(t *testing.T) {
		r := cliRun(t, "", "instances", "list", "--nope")
		if r.code() != 2 || r.stderr != "" || strings.Count(r.err.Error(), "nope") != 1 {
			t.Fatalf("exit %d, stderr %q, err %v", r.code(), r.stderr, r.err)
		}
	})
	t.Run("bad_state_exits_nonzero", func(t *testing.T) {
		r := cliRun(t, "", "instances", "list", "--state", "bogus")
		if r.code() != 2 || !strings.Contains(r.err.Error(), "--state") {
			t.Fatalf("exit %d, err %v", r.code(), r.err)
		}
	})
	t.Run("bad_private_ip_is_caught_by_the_client", func(t *testing.T) {
		r := cliRun(t, "", "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "not-an-ip")
		if r.code() != 2 || !strings.Contains(r.err.Error(), "--private-ip") {
			t.Fatalf("exit %d, err %v", r.code(), r.err)
		}
	})
	t.Run("a_daemon_that_is_down_is_named", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String()
		l.Close() // nothing listens there now
		dir := t.TempDir()
		writeTestAdminCredentials(t, dir)
		r := cliRun(t, "", "instances", "list", "--endpoint", url, "--data-dir", dir)
		want := "instances list: cannot reach the control plane at " + url + " (is frontdesk serve running?)"
		if r.err == nil || describe(r.err) != want {
			t.Fatalf("error = %v\nwant %q", r.err, want)
		}
	})
	t.Run("an_ec2_error_is_code_and_message", func(t *testing.T) {
		d := startDaemon(t, t.TempDir())
		r := d.cliResult(t, "instances", "run", "--image-id", "ami-0abc", "--private-ip", "192.0.2.10")
		want := "instances run: InvalidAMIID.Malformed: "
		if r.err == nil || !strings.HasPrefix(describe(r.err), want) || strings.Contains(describe(r.err), "StatusCode") {
			t.Fatalf("error = %q, want it to start %q", describe(r.err), want)
		}
	})
}

// writeTestAdminCredentials writes an admin.credentials file into dir, as
// serve does, with a made-up key.
func writeTestAdminCredentials(t *testing.T, dir string) {
	t.Helper()
	creds := controlplane.AdminCredentials{AccessKeyID: "AKIAFRONTDESKCLITEST", SecretAccessKey: "frontdesk/cli/test/secret/0123456789abcdef"}
	if err := controlplane.WriteSharedCredentialsFile(filepath.Join(dir, "admin.credentials"), creds); err != nil {
		t.Fatal(err)
	}
}

// cliRunNoT is cliRun for helpers that run outside a test's body.
func cliRunNoT(args []string) cliResult {
	var out, errb strings.Builder
	err := run(context.Background(), append([]string{"frontdesk"}, args...), func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	return cliResult{stdout: out.String(), stderr: errb.String(), err: err}
}
