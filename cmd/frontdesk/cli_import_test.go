package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// `instances import` sends batches, each all or nothing, names the refused
// line, and `instances export` writes what import reads back.
func TestCLIInstancesImportExport(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	inv := strings.Join([]string{
		`{"ImageId":"ami-0123456789abcdef0","PrivateIpAddress":"192.0.2.10","Placement":{"HostId":"host-a"},"TagSpecifications":[{"ResourceType":"instance","Tags":[{"Key":"Name","Value":"one"}]}]}`,
		``,
		`{"ImageId":"ami-0123456789abcdef0","PrivateIpAddress":"192.0.2.11","Placement":{"HostId":"host-b"},"MetadataOptions":{"HttpTokens":"required"}}`,
		`{"ImageId":"ami-0123456789abcdef0","PrivateIpAddress":"192.0.2.12"}`,
		`{"ImageId":"ami-0123456789abcdef0","PrivateIpAddress":"192.0.2.10"}`,
	}, "\n") + "\n"
	file := filepath.Join(t.TempDir(), "inventory.jsonl")
	if err := os.WriteFile(file, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	r := d.cliResult(t, "instances", "import", "--batch", "2", "--parallel", "1", file)
	if r.err == nil {
		t.Fatalf("import of a duplicate address succeeded: %s", r.stdout)
	}
	if msg := r.err.Error(); !strings.Contains(msg, "line 5: ") || !strings.Contains(msg, "InvalidIPAddress.InUse") || !strings.Contains(msg, "lines 4-5 were not imported") {
		t.Errorf("import error %q, want line 5, the EC2 code and the refused batch's lines", msg)
	}
	if !strings.HasPrefix(r.stdout, "imported 2 instances from 4 lines") {
		t.Errorf("import report %q, want 2 of 4 lines imported", r.stdout)
	}
	list := d.cliInstances(t)
	if len(list) != 2 {
		t.Fatalf("after the import %d instances, want the first batch's 2", len(list))
	}

	exported := d.cli(t, "instances", "export")
	lines := strings.Split(strings.TrimSpace(exported), "\n")
	if len(lines) != 2 || !strings.Contains(exported, `"HostId":"host-b"`) || !strings.Contains(exported, `"HttpTokens":"required"`) {
		t.Fatalf("export:\n%s", exported)
	}
	other := startDaemon(t, t.TempDir())
	r = cliRun(t, exported, "instances", "import", "-", "--endpoint", other.apiURL, "--data-dir", other.dataDir)
	if r.err != nil {
		t.Fatalf("import of the export: %v\n%s", r.err, r.stdout)
	}
	again := strings.Split(strings.TrimSpace(other.cli(t, "instances", "export")), "\n")
	slices.Sort(lines)
	slices.Sort(again)
	if !slices.Equal(lines, again) {
		t.Fatalf("inventory did not round-trip:\n%s\n---\n%s", strings.Join(lines, "\n"), strings.Join(again, "\n"))
	}
}
