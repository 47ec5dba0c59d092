package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// cliCommands are the operator subcommands, for calling them before run()
// dispatches them; once it does, cliRun goes through run() like main.
func cliCommands() map[string]func(context.Context, *env, []string) error {
	return map[string]func(context.Context, *env, []string) error{
		"instances":  cmdInstances,
		"defaults":   cmdDefaults,
		"events":     cmdEvents,
		"compliance": cmdCompliance,
	}
}

// cliResult is what one CLI invocation printed and returned.
type cliResult struct {
	stdout, stderr string
	err            error
}

func (r cliResult) code() int {
	if r.err == nil {
		return 0
	}
	return exitCode(r.err)
}

// cliRun runs `frontdesk args...` in-process with an empty environment
// (credentials then come only from --data-dir) and stdin.
func cliRun(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	getenv := func(string) string { return "" }
	var err error
	if _, ok := subcommands()[args[0]]; ok {
		err = run(ctx, append([]string{"frontdesk"}, args...), getenv, strings.NewReader(stdin), &out, &errb)
	} else {
		e := &env{getenv: getenv, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
		err = cliCommands()[args[0]](ctx, e, args[1:])
	}
	return cliResult{stdout: out.String(), stderr: errb.String(), err: err}
}

// cli runs a subcommand against d (endpoint and data dir appended) and
// fails the test unless it succeeds.
func (d *daemon) cli(t *testing.T, args ...string) string {
	t.Helper()
	r := d.cliResult(t, args...)
	if r.err != nil {
		t.Fatalf("frontdesk %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

func (d *daemon) cliResult(t *testing.T, args ...string) cliResult {
	t.Helper()
	return cliRun(t, "", append(args, "--endpoint", d.apiURL, "--data-dir", d.dataDir)...)
}

// cliInstances is `instances list --json`, by instance id.
func (d *daemon) cliInstances(t *testing.T) map[string]instanceView {
	t.Helper()
	var all []instanceView
	if err := json.Unmarshal([]byte(d.cli(t, "instances", "list", "--json")), &all); err != nil {
		t.Fatalf("instances list --json: %v", err)
	}
	m := map[string]instanceView{}
	for _, v := range all {
		m[v.InstanceID] = v
	}
	return m
}

// guestGet does one data-plane GET from src (an address of 127.0.0.0/8,
// i.e. as the instance bound to it), with an IMDSv2 token when tok is set.
func (d *daemon) guestGet(t *testing.T, src, path, tok string) (int, string) {
	t.Helper()
	hdr := map[string]string{}
	if tok != "" {
		hdr["X-aws-ec2-metadata-token"] = tok
	}
	status, _, body := d.doWith(t, opsClient(src), http.MethodGet, path, hdr)
	return status, body
}

// guestToken gets an IMDSv2 token as the instance at src.
func (d *daemon) guestToken(t *testing.T, src string) string {
	t.Helper()
	status, _, body := d.doWith(t, opsClient(src), http.MethodPut, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300"})
	if status != 200 {
		t.Fatalf("token PUT from %s: %d", src, status)
	}
	return body
}

// waitGuest polls a data-plane GET until it answers want (the data plane
// follows the store asynchronously) and returns the body.
func (d *daemon) waitGuest(t *testing.T, src, path string, token bool, want int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tok, status, body := "", 0, ""
		if token {
			// The instance may not be in the snapshot yet: the token PUT
			// is retried like the GET.
			status, _, tok = d.doWith(t, opsClient(src), http.MethodPut, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300"})
		}
		if !token || status == 200 {
			status, body = d.guestGet(t, src, path, tok)
		}
		if status == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s from %s: %d %q, want %d within 5s", path, src, status, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
