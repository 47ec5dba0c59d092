package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/config"
)

func TestResolveRegionFlagsWinOverTheConfig(t *testing.T) {
	cfg := &config.Config{Region: "eu-west-1", AccountID: "111111111111", Zones: []string{"eu-west-1b", "eu-west-1c"}}
	rs, err := resolveRegion("", "210987654321", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Region != "eu-west-1" || rs.AccountID != "210987654321" || strings.Join(rs.Zones, ",") != "eu-west-1b,eu-west-1c" {
		t.Errorf("resolved %+v", rs)
	}
	rs, err = resolveRegion("", "", &config.Config{})
	if err != nil || rs.Region != "us-east-1" || rs.AccountID != "123456789012" || strings.Join(rs.Zones, ",") != "us-east-1a,us-east-1b,us-east-1c" {
		t.Errorf("defaults %+v %v", rs, err)
	}
	rs, err = resolveRegion("ap-southeast-2", "", cfg)
	if err == nil {
		t.Errorf("zones of eu-west-1 accepted for --region ap-southeast-2: %+v", rs)
	}
	for _, bad := range [][2]string{{"Europe", ""}, {"", "12345"}} {
		if _, err := resolveRegion(bad[0], bad[1], &config.Config{}); err == nil {
			t.Errorf("accepted region %q account %q", bad[0], bad[1])
		}
	}
}

// A daemon told its region and account serves them to the guest in every
// place EC2 does, and its control plane takes signatures for that region.
func TestServeInARegionAndAccount(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "frontdesk.yaml")
	if err := os.WriteFile(cfgFile, []byte("region: eu-west-1\naccount_id: \"111111111111\"\nzones: [eu-west-1b, eu-west-1c]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", cfgFile, "--account-id", "210987654321", "--demo", "--demo-http-tokens", "optional")
	for path, want := range map[string]string{
		"/latest/meta-data/placement/region":               "eu-west-1",
		"/latest/meta-data/placement/availability-zone":    "eu-west-1b",
		"/latest/meta-data/placement/availability-zone-id": "euw1-az2",
		"/latest/meta-data/services/partition":             "aws",
		"/latest/meta-data/services/domain":                "amazonaws.com",
		"/latest/meta-data/local-hostname":                 "ip-127-0-0-1.eu-west-1.compute.internal",
	} {
		if s, got := d.guestGet(t, "127.0.0.1", path, ""); s != 200 || got != want {
			t.Errorf("%s = %d %q, want %q", path, s, got, want)
		}
	}
	_, body := d.guestGet(t, "127.0.0.1", "/latest/dynamic/instance-identity/document", "")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["accountId"] != "210987654321" || doc["region"] != "eu-west-1" || doc["availabilityZone"] != "eu-west-1b" {
		t.Errorf("identity document %s", body)
	}
	_, arnInfo := d.guestGet(t, "127.0.0.1", "/latest/meta-data/iam/info", "")
	if !strings.Contains(arnInfo, "arn:aws:iam::210987654321:instance-profile/frontdesk-demo") {
		t.Errorf("iam/info %s", arnInfo)
	}

	// The CLI signs for the daemon's region; a signature for another one
	// is refused.
	out := d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.7", "--region", "eu-west-1")
	id := strings.TrimSpace(out)
	if r := d.cliResult(t, "instances", "list"); r.err == nil || !strings.Contains(r.err.Error(), "AuthFailure") {
		t.Errorf("a us-east-1 signature was accepted: %v", r.err)
	}
	d.waitGuest(t, "127.0.0.7", "/latest/meta-data/instance-id", true, 200)
	if s, got := d.guestGet(t, "127.0.0.7", "/latest/meta-data/placement/availability-zone", d.guestToken(t, "127.0.0.7")); s != 200 || got != "eu-west-1b" {
		t.Errorf("launched %s in %d %q, want the first configured zone", id, s, got)
	}
}

// --demo-http-tokens applies on every start, not only the first one.
func TestDemoHttpTokensApplyOnRestart(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, "--demo")
	if s, _ := d.guestGet(t, "127.0.0.1", "/latest/meta-data/instance-id", ""); s != 401 {
		t.Fatalf("tokenless GET under the default required = %d, want 401", s)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, dir, "--demo", "--demo-http-tokens", "optional")
	if s, got := d.guestGet(t, "127.0.0.1", "/latest/meta-data/instance-id", ""); s != 200 || got != demoInstanceID {
		t.Fatalf("tokenless GET after a restart with optional = %d %q, want 200", s, got)
	}
}

// --store memory writes admin.credentials too, so its control plane is
// usable, and says where.
func TestMemoryStoreWritesAdminCredentials(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, "--store", "memory")
	if _, err := os.Stat(filepath.Join(dir, "admin.credentials")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.cli(t, "instances", "list"), "INSTANCE ID") {
		t.Error("instances list against a memory store failed")
	}
}
