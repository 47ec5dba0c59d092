//go:build integration

package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests verify the signatures with openssl, as AWS's documentation
// tells a guest to.

const openssl = "/usr/bin/openssl"

func runOpenSSL(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	if _, err := os.Stat(openssl); err != nil {
		t.Fatalf("openssl is required for these tests: %v", err)
	}
	cmd := exec.Command(openssl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New(err.Error() + ": " + stderr.String())
	}
	return out, nil
}

// verifySignature follows AWS's verify-signature page: extract the public
// key from the certificate, base64-decode the signature, openssl dgst.
func verifySignature(t *testing.T, sg *Signer, body, doc []byte) error {
	t.Helper()
	dir := t.TempDir()
	cert := writeFile(t, dir, "certificate.pem", certPEM(t, sg, FormSignature))
	pub, err := runOpenSSL(t, "x509", "-pubkey", "-noout", "-in", cert)
	if err != nil {
		t.Fatal(err)
	}
	key := writeFile(t, dir, "key.pem", pub)
	raw, err := base64.StdEncoding.DecodeString(string(body)) // like base64 -d: newlines are skipped
	if err != nil {
		t.Fatal(err)
	}
	sig := writeFile(t, dir, "signature", raw)
	docPath := writeFile(t, dir, "document", doc)
	out, err := runOpenSSL(t, "dgst", "-sha256", "-verify", key, "-signature", sig, docPath)
	if err == nil && strings.TrimSpace(string(out)) != "Verified OK" {
		t.Fatalf("openssl dgst printed %q", out)
	}
	return err
}

// verifyPKCS7 follows AWS's verify-pkcs7 / verify-rsa2048 pages: wrap the
// body in PKCS7 armour and run openssl smime -verify -noverify -certfile.
// It returns the content openssl prints.
func verifyPKCS7(t *testing.T, sg *Signer, form string, body []byte) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	cert := writeFile(t, dir, "certificate", certPEM(t, sg, form))
	armoured := "-----BEGIN PKCS7-----\n" + string(body) + "\n-----END PKCS7-----\n"
	in := writeFile(t, dir, "pkcs7", []byte(armoured))
	return runOpenSSL(t, "smime", "-verify", "-in", in, "-inform", "PEM", "-certfile", cert, "-noverify")
}

func TestOpenSSLVerifiesEveryFormAsAWSDocumentsIt(t *testing.T) {
	sg := sharedSigner(t)
	sigs, err := sg.Sign([]byte(document))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("signature_verifies_with_openssl_dgst", func(t *testing.T) {
		if err := verifySignature(t, sg, sigs.Signature, []byte(document)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("signature_rejects_a_changed_document", func(t *testing.T) {
		changed := strings.Replace(document, "t3.micro", "t3.large", 1)
		err := verifySignature(t, sg, sigs.Signature, []byte(changed))
		if err == nil || !strings.Contains(err.Error(), "bad signature") {
			t.Fatalf("openssl over a changed document: %v, want bad signature", err)
		}
	})
	for _, tc := range []struct {
		form string
		body []byte
	}{{FormPKCS7, sigs.PKCS7}, {FormRSA2048, sigs.RSA2048}} {
		t.Run(tc.form+"_verifies_with_openssl_smime_and_prints_the_document", func(t *testing.T) {
			out, err := verifyPKCS7(t, sg, tc.form, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != document {
				t.Fatalf("openssl printed %q, want the document", out)
			}
		})
		t.Run(tc.form+"_rejects_a_changed_signed_content", func(t *testing.T) {
			raw, _ := base64.StdEncoding.DecodeString(string(tc.body))
			i := bytes.Index(raw, []byte("t3.micro"))
			if i < 0 {
				t.Fatal("document not attached")
			}
			raw[i+3] = 'X'
			_, err := verifyPKCS7(t, sg, tc.form, wrap76(raw))
			if err == nil || !strings.Contains(err.Error(), "digest failure") {
				t.Fatalf("openssl on tampered content: %v, want a digest failure", err)
			}
		})
		t.Run(tc.form+"_rejects_the_other_forms_certificate", func(t *testing.T) {
			other := FormRSA2048
			if tc.form == FormRSA2048 {
				other = FormSignature
			}
			_, err := verifyPKCS7(t, sg, other, tc.body)
			if err == nil || !strings.Contains(err.Error(), "signer certificate not found") {
				t.Fatalf("openssl verified %s against the %s certificate: %v, want signer not found", tc.form, other, err)
			}
		})
	}
}

func TestOpenSSLReadsTheDSACertificate(t *testing.T) {
	sg := sharedSigner(t)
	t.Run("openssl_reads_the_dsa_certificate_and_checks_its_self_signature", func(t *testing.T) {
		p := writeFile(t, t.TempDir(), "dsa.pem", certPEM(t, sg, FormPKCS7))
		out, err := runOpenSSL(t, "x509", "-in", p, "-noout", "-text")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "dsaEncryption") || !strings.Contains(string(out), "O = frontdesk") {
			t.Fatalf("openssl x509 -text:\n%s", out)
		}
		if out, err := runOpenSSL(t, "verify", "-CAfile", p, "-check_ss_sig", p); err != nil || !strings.Contains(string(out), "OK") {
			t.Fatalf("self-signature: %s %v", out, err)
		}
	})
}

func TestOpenSSLVerifiesWithTheCombinedCertificateFile(t *testing.T) {
	sg := sharedSigner(t)
	// The whole file works as -certfile, as an operator would hand it out.
	sigs, err := sg.Sign([]byte(document))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	all := writeFile(t, dir, "all.pem", sg.CertificatesPEM())
	in := writeFile(t, dir, "pkcs7", []byte("-----BEGIN PKCS7-----\n"+string(sigs.PKCS7)+"\n-----END PKCS7-----\n"))
	if out, err := runOpenSSL(t, "smime", "-verify", "-in", in, "-inform", "PEM", "-certfile", all, "-noverify"); err != nil || string(out) != document {
		t.Fatalf("verify with the combined file: %q, %v", out, err)
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func certPEM(t *testing.T, sg *Signer, form string) []byte {
	t.Helper()
	c, err := sg.Certificate(form)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
