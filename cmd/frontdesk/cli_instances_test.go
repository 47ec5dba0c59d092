package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var cliInstanceIDRe = regexp.MustCompile(`^i-[0-9a-f]{17}$`)

// Through the real daemon: an instance registered with `instances run`
// is listed with its options and tags and served by the data plane at its
// address; tag, modify-metadata-options and terminate change both views.
func TestCLIInstancesRoundTrip(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional")
	const addr = "127.0.0.2"
	userData := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(userData, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	d.cli(t, "keys", "create", "ops", "--out", filepath.Join(t.TempDir(), "ops.pem"))
	out := d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", addr,
		"--instance-type", "t3.small", "--key-name", "ops", "--user-data-file", userData,
		"--tag", "Name=web", "--tag", "team=blue", "--http-tokens", "required", "--hop-limit", "2",
		"--instance-metadata-tags", "enabled", "--host-id", "node-a")
	id := strings.TrimSpace(out)
	if !cliInstanceIDRe.MatchString(id) {
		t.Fatalf("instances run printed %q, want one instance id", out)
	}

	v, ok := d.cliInstances(t)[id]
	switch {
	case !ok:
		t.Fatalf("instances list --json lacks %s", id)
	case v.State != "running", !slices.Equal(v.PrivateIPs, []string{addr}), v.HttpTokens != "required",
		v.HopLimit != 2, v.HttpEndpoint != "enabled", v.InstanceMetadataTags != "enabled",
		v.InstanceType != "t3.small", v.HostID != "node-a":
		t.Errorf("listed as %+v", v)
	case v.Tags["Name"] != "web" || v.Tags["team"] != "blue" || len(v.Tags) != 2:
		t.Errorf("tags %v, want Name=web team=blue", v.Tags)
	}
	if got := d.waitGuest(t, addr, "/latest/meta-data/instance-id", true, 200); got != id {
		t.Errorf("data plane instance-id = %q, want %s", got, id)
	}
	if _, got := d.guestGet(t, addr, "/latest/user-data", d.guestToken(t, addr)); got != "#!/bin/sh\necho hi\n" {
		t.Errorf("user-data = %q", got)
	}
	if s, got := d.guestGet(t, addr, "/latest/meta-data/tags/instance/Name", d.guestToken(t, addr)); s != 200 || got != "web" {
		t.Errorf("tags/instance/Name = %d %q", s, got)
	}
	// The frontdesk node is an operator's field: no h- id, no host-id leaf.
	if s, got := d.guestGet(t, addr, "/latest/meta-data/placement/host-id", d.guestToken(t, addr)); s != 404 {
		t.Errorf("placement/host-id of an instance on node-a = %d %q, want 404", s, got)
	}
	if s, _ := d.guestGet(t, addr, "/latest/meta-data/instance-id", ""); s != 401 {
		t.Errorf("tokenless GET under required = %d, want 401", s)
	}

	table := d.cli(t, "instances", "list")
	if !strings.Contains(table, "INSTANCE ID") || !regexp.MustCompile(id+`\s+running\s+t3.small\s+node-a\s+`+addr+`\s+-\s+-\s+required\s+2\s+enabled\s+applied\s+web`).MatchString(table) {
		t.Errorf("instances list table:\n%s", table)
	}

	// Flags after positional arguments work too.
	d.cli(t, "instances", "tag", id, "env=prod", "Name=api", "--delete", "team")
	v = d.cliInstances(t)[id]
	if v.Tags["env"] != "prod" || v.Tags["Name"] != "api" || v.Tags["team"] != "" || len(v.Tags) != 2 {
		t.Errorf("after tag: %v, want env=prod Name=api", v.Tags)
	}
	if got := d.waitGuest(t, addr, "/latest/meta-data/tags/instance/env", true, 200); got != "prod" {
		t.Errorf("tags/instance/env = %q", got)
	}
	d.waitGuest(t, addr, "/latest/meta-data/tags/instance/team", true, 404)

	out = d.cli(t, "instances", "modify-metadata-options", id, "--http-tokens", "optional")
	if !strings.Contains(out, "httpTokens=optional hopLimit=2") {
		t.Errorf("modify printed %q: want httpTokens=optional and the hop limit kept at 2", out)
	}
	v = d.cliInstances(t)[id]
	if v.HttpTokens != "optional" || v.HopLimit != 2 || v.InstanceMetadataTags != "enabled" {
		t.Errorf("after modify: %+v (omitted options must keep their values)", v)
	}
	if got := d.waitGuest(t, addr, "/latest/meta-data/instance-id", false, 200); got != id {
		t.Errorf("tokenless instance-id = %q", got)
	}

	out = d.cli(t, "instances", "terminate", id)
	if !regexp.MustCompile(id + `\s+running\s+(shutting-down|terminated)`).MatchString(out) {
		t.Errorf("terminate printed:\n%s", out)
	}
	if v := d.cliInstances(t)[id]; v.State != "terminated" {
		t.Errorf("after terminate: state %q", v.State)
	}
	d.waitGuest(t, addr, "/latest/meta-data/instance-id", false, 404)
	if running := d.cli(t, "instances", "list", "--state", "running"); strings.Contains(running, id) || !strings.Contains(running, demoInstanceID) {
		t.Errorf("list --state running:\n%s", running)
	}
}

// Account defaults set with `defaults set` show in `defaults get` and decide
// what a launch that says nothing gets; no-preference clears them.
func TestCLIDefaultsPrecedence(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional")

	if v := d.cliDefaults(t); v != (defaultsView{ManagedBy: "account"}) {
		t.Errorf("fresh defaults: %+v, want everything no-preference", v)
	}
	d.cli(t, "defaults", "set", "--http-tokens", "optional", "--hop-limit", "3")
	out := d.cli(t, "defaults", "get")
	if !regexp.MustCompile(`http-tokens\s+optional`).MatchString(out) || !regexp.MustCompile(`hop-limit\s+3`).MatchString(out) ||
		!regexp.MustCompile(`http-endpoint\s+no-preference`).MatchString(out) {
		t.Errorf("defaults get:\n%s", out)
	}

	id := strings.TrimSpace(d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.3"))
	if v := d.cliInstances(t)[id]; v.HttpTokens != "optional" || v.HopLimit != 3 {
		t.Errorf("launch under account defaults: tokens %q hop %d, want optional 3", v.HttpTokens, v.HopLimit)
	}
	// The request beats the account default.
	id2 := strings.TrimSpace(d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.4", "--http-tokens", "required"))
	if v := d.cliInstances(t)[id2]; v.HttpTokens != "required" || v.HopLimit != 3 {
		t.Errorf("launch with --http-tokens required: %q hop %d", v.HttpTokens, v.HopLimit)
	}

	d.cli(t, "defaults", "set", "--http-tokens", "no-preference", "--hop-limit", "-1", "--http-tokens-enforced", "enabled")
	if v := d.cliDefaults(t); v != (defaultsView{HttpTokensEnforced: "enabled", ManagedBy: "account"}) {
		t.Errorf("after clearing tokens and hop limit and enforcing: %+v", v)
	}
	// Enforcement refuses a launch that would leave IMDSv1 on: exit 1, the
	// server's code in the message.
	r := d.cliResult(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.5", "--http-tokens", "optional")
	if r.code() != 1 || !strings.Contains(r.err.Error(), "UnsupportedOperation") {
		t.Errorf("optional launch under enforcement: code %d err %v", r.code(), r.err)
	}
}

func (d *daemon) cliDefaults(t *testing.T) defaultsView {
	t.Helper()
	var v defaultsView
	if err := json.Unmarshal([]byte(d.cli(t, "defaults", "get", "--json")), &v); err != nil {
		t.Fatalf("defaults get --json: %v", err)
	}
	return v
}
