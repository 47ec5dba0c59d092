//go:build integration

package tfprovider_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
	"github.com/frontdesk-imds/frontdesk/internal/tfprovider"
)

// The acceptance tests drive a real OpenTofu binary (built from the Go
// module proxy by scripts/build-tofu.sh) against a real frontdesk daemon
// (this repository's cmd/frontdesk, run as a process on loopback ports),
// with the provider served in-process and attached to tofu through
// TF_REATTACH_PROVIDERS by terraform-plugin-testing.

// setupTofu points terraform-plugin-testing at the OpenTofu binary:
// TF_ACC_TERRAFORM_PATH if set (scripts/test.sh sets it), else the one
// scripts/build-tofu.sh builds or finds in its cache. The provider address
// is registry.opentofu.org/frontdesk-imds/frontdesk, what tofu resolves
// "frontdesk-imds/frontdesk" to.
func setupTofu(t *testing.T) {
	t.Helper()
	bin := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if bin == "" {
		cmd := exec.Command(filepath.Join(moduleRoot(t), "scripts", "build-tofu.sh"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("scripts/build-tofu.sh: %v", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("tofu binary: %v", err)
	}
	t.Setenv("TF_ACC", "1")
	t.Setenv("TF_ACC_TERRAFORM_PATH", bin)
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "frontdesk-imds")
	t.Setenv("TF_ACC_PROVIDER_HOST", "registry.opentofu.org")
	t.Setenv("CHECKPOINT_DISABLE", "1")
	// No registry is ever asked: the provider is attached, and the tests
	// use no other.
	t.Setenv("TF_CLI_CONFIG_FILE", writeFile(t, "tofurc", "disable_checkpoint = true\n"))
}

// providers serves the provider in-process for each tofu command.
func providers() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"frontdesk": providerserver.NewProtocol6WithError(tfprovider.New("test", tfprovider.Options{})()),
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// daemon is `frontdesk serve` as a process, with a bolt store in a
// temporary data dir (so it writes admin.credentials there, which the
// provider finds through data_dir).
type daemon struct {
	dataURL string
	apiURL  string
	dataDir string
	client  *apiclient.Client
}

// buildFrontdesk builds cmd/frontdesk once per test.
func buildFrontdesk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "frontdesk")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/frontdesk-imds/frontdesk/cmd/frontdesk").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/frontdesk: %v\n%s", err, out)
	}
	return bin
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	bin := buildFrontdesk(t)
	d := &daemon{dataDir: t.TempDir()}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
		"--data-dir", d.dataDir, "--store", "bolt", "--log-level", "warn")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logs strings.Builder
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "data plane: "):
				d.dataURL = strings.TrimPrefix(line, "data plane: ")
			case strings.HasPrefix(line, "control plane: "):
				d.apiURL = strings.TrimPrefix(line, "control plane: ")
			case line == "ready":
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("frontdesk log:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("frontdesk exited before ready:\n%s", logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("frontdesk not ready within 60s")
	}
	cl, _, err := apiclient.Connect(context.Background(), apiclient.Settings{Endpoint: d.apiURL, DataDir: d.dataDir},
		func(string) string { return "" }, apiclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.client = cl
	return d
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// providerBlock is the provider configuration every test config starts
// with: the daemon's endpoint and its data dir (whose admin.credentials the
// provider reads, as the CLI does).
func (d *daemon) providerBlock() string {
	return `
terraform {
  required_providers {
    frontdesk = { source = "frontdesk-imds/frontdesk" }
  }
}

provider "frontdesk" {
  endpoint = "` + d.apiURL + `"
  data_dir = "` + d.dataDir + `"
}
`
}

// guestGet is an IMDSv1 GET (no token) from src, a 127.0.0.x address: on
// Linux the whole of 127/8 is local, so the test itself is the guest whose
// source address names the instance. It returns the status and body.
func (d *daemon) guestGet(t *testing.T, src, p string) (int, string) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c := &http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true, Proxy: nil},
		Timeout:   10 * time.Second,
	}
	resp, err := c.Get(d.dataURL + p)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", p, src, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
