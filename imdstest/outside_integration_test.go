//go:build integration

package imdstest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestModuleOutsideTheRepository builds and runs testdata/outside as its own
// module, which requires frontdesk and replaces it with this checkout: the
// kit works through its public import path alone.
func TestModuleOutsideTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "outside", "outside_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/outside\n\ngo 1.26\n\n" +
		"require github.com/frontdesk-imds/frontdesk v0.0.0\n\n" +
		"replace github.com/frontdesk-imds/frontdesk => " + root + "\n"
	for name, b := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "outside_test.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the outside-module test needs the go command: %v", err)
	}
	cmd := exec.Command(gobin, "test", "-count=1", "-v", "./...")
	cmd.Dir = dir
	// -mod=mod lets go add the SDK modules the test imports to go.mod, at
	// the versions frontdesk's own go.mod requires (already in the module
	// cache).
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	t.Logf("go test in %s:\n%s", dir, out)
	if err != nil {
		t.Fatalf("go test of the outside module: %v", err)
	}
	for _, name := range []string{"TestFirstServer", "TestSecondServer"} {
		if !regexp.MustCompile(`(?m)^--- PASS: ` + name + ` `).Match(out) {
			t.Errorf("%s did not pass", name)
		}
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "replace github.com/frontdesk-imds/frontdesk => "+root) {
		t.Errorf("go.mod lost its replace directive:\n%s", mod)
	}
}
