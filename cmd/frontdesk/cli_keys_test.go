package main

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An ssh-keygen ED25519 key and the fingerprint EC2 gives it (ssh-keygen -l,
// with base64 padding).
const (
	cliTestKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBDlVni0Ou36qkEgpdQqOZN22nNjcBT70DaWW+CUAFC/ bob@example"
	cliTestKeyFP = "+z0Cc44p8cP0pgqFtKUj5nrFZ/GWiw2Bky3BE7NUIaU="
)

// Through the real daemon: keys imported or created with the CLI are
// listed with EC2's fingerprints, an instance launched with one serves it
// under public-keys/ exactly as EC2 does, and keeps serving it after the key
// pair is deleted.
func TestCLIKeysRoundTrip(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	pub := filepath.Join(t.TempDir(), "id.pub")
	if err := os.WriteFile(pub, []byte(cliTestKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := d.cli(t, "keys", "import", "web", "--public-key-file", pub, "--tag", "team=infra"); !strings.Contains(out, cliTestKeyFP) {
		t.Fatalf("keys import printed %q, want the fingerprint %s", out, cliTestKeyFP)
	}
	pemFile := filepath.Join(t.TempDir(), "ops.pem")
	d.cli(t, "keys", "create", "ops", "--type", "rsa", "--out", pemFile)
	st, err := os.Stat(pemFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", err, st)
	}
	b, _ := os.ReadFile(pemFile)
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "RSA PRIVATE KEY" {
		t.Fatalf("private key file is not an RSA PEM key: %.60q", b)
	}
	if r := d.cliResult(t, "keys", "create", "ops", "--out", filepath.Join(t.TempDir(), "again.pem")); r.err == nil || !strings.Contains(r.err.Error(), "InvalidKeyPair.Duplicate") {
		t.Fatalf("second create of ops: %v", r.err)
	}
	var keys []keyView
	if err := json.Unmarshal([]byte(d.cli(t, "keys", "list", "--json", "--public-key")), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Name != "ops" || keys[0].Type != "rsa" || len(keys[0].Fingerprint) != 59 ||
		keys[1].Name != "web" || keys[1].Fingerprint != cliTestKeyFP || keys[1].PublicKey != cliTestKey || keys[1].Tags["team"] != "infra" {
		t.Fatalf("keys list: %+v", keys)
	}

	const addr = "127.0.0.5"
	d.cli(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", addr, "--key-name", "web")
	d.waitGuest(t, addr, "/latest/meta-data/instance-id", true, 200)
	tok := d.guestToken(t, addr)
	for path, want := range map[string]string{
		"/latest/meta-data/public-keys/":                  "0=web",
		"/latest/meta-data/public-keys/0/":                "openssh-key",
		"/latest/meta-data/public-keys/0/openssh-key":     cliTestKey + "\n",
		"/latest/meta-data/block-device-mapping/root":     "/dev/xvda",
		"/2009-04-04/meta-data/public-keys/0/openssh-key": cliTestKey + "\n",
	} {
		if s, got := d.guestGet(t, addr, path, tok); s != 200 || got != want {
			t.Errorf("%s = %d %q, want %q", path, s, got, want)
		}
	}
	if out := d.cli(t, "keys", "delete", "web"); strings.TrimSpace(out) != "web" {
		t.Errorf("keys delete printed %q", out)
	}
	if s, got := d.guestGet(t, addr, "/latest/meta-data/public-keys/0/openssh-key", tok); s != 200 || got != cliTestKey+"\n" {
		t.Errorf("after delete: %d %q, want the key the instance was launched with", s, got)
	}
	if r := d.cliResult(t, "instances", "run", "--image-id", "ami-0abcdef1234567890", "--private-ip", "127.0.0.6", "--key-name", "web"); r.err == nil ||
		!strings.Contains(r.err.Error(), "InvalidKeyPair.NotFound") {
		t.Errorf("launch with a deleted key pair: %v", r.err)
	}
}

// The control plane serves the identity certificates without credentials,
// so `identity certificates --endpoint` works while the daemon holds the
// bolt file; the first certificate verifies the document's signature.
func TestIdentityCertificatesFromARunningDaemon(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional")
	r := cliRun(t, "", "identity", "certificates", "--endpoint", d.apiURL)
	if r.err != nil {
		t.Fatalf("identity certificates --endpoint: %v\n%s", r.err, r.stderr)
	}
	blk, rest := pem.Decode([]byte(r.stdout))
	if blk == nil || strings.Count(r.stdout, "BEGIN CERTIFICATE") != 3 {
		t.Fatalf("printed:\n%s", r.stdout)
	}
	_ = rest
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	_, doc := d.guestGet(t, "127.0.0.1", "/latest/dynamic/instance-identity/document", "")
	_, sigB64 := d.guestGet(t, "127.0.0.1", "/latest/dynamic/instance-identity/signature", "")
	sig, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(sigB64, "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(doc))
	pubKey, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("first certificate holds a %T", cert.PublicKey)
	}
	if err := rsa.VerifyPKCS1v15(pubKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("the fetched certificate does not verify the served signature: %v", err)
	}
	if r := cliRun(t, "", "identity", "certificates", "--endpoint", d.apiURL+"/nothing-here"); r.err == nil {
		t.Error("a URL that serves no certificates was accepted")
	}
}
