package identity

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	//lint:ignore SA1019 the tests inspect the DSA key.
	"crypto/dsa"

	"github.com/smallstep/pkcs7"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// document has EC2's exact layout (docs/behaviour.md, "Identity document"): two-space indent, " : ", no
// trailing newline.
const document = `{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-east-1a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-0123456789abcdef0",
  "instanceId" : "i-0123456789abcdef0",
  "instanceType" : "t3.micro",
  "kernelId" : null,
  "pendingTime" : "2025-06-01T12:00:00Z",
  "privateIp" : "192.0.2.10",
  "ramdiskId" : null,
  "region" : "us-east-1",
  "version" : "2017-09-30"
}`

// generated is one key set shared by the tests that do not test creation
// itself: DSA parameter generation costs about a second.
var generated = sync.OnceValues(func() ([]byte, error) { return generate(now) })

func newStore(t *testing.T) *memstore.Store {
	t.Helper()
	s := memstore.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sharedSigner returns a Signer over a fresh store seeded with the shared keys.
func sharedSigner(t *testing.T) *Signer {
	t.Helper()
	value, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	if err := s.Update(context.Background(), func(tx imds.Tx) error {
		return imds.PutSecret(tx, SecretName, value)
	}); err != nil {
		t.Fatal(err)
	}
	sg, err := LoadOrCreate(context.Background(), s, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func TestSignatureBodiesHaveEC2Layout(t *testing.T) {
	sg := sharedSigner(t)
	sigs, err := sg.Sign([]byte(document))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"signature": sigs.Signature, "pkcs7": sigs.PKCS7, "rsa2048": sigs.RSA2048} {
		t.Run(name+"_is_base64_in_lines_of_76_without_armour_or_final_newline", func(t *testing.T) {
			if bytes.HasSuffix(body, []byte("\n")) || bytes.Contains(body, []byte("-----")) {
				t.Fatalf("body has a final newline or PEM armour:\n%s", body)
			}
			lines := strings.Split(string(body), "\n")
			for i, l := range lines {
				if len(l) > 76 || (i < len(lines)-1 && len(l) != 76) || l == "" {
					t.Fatalf("line %d has %d characters", i, len(l))
				}
			}
			if _, err := base64.StdEncoding.DecodeString(strings.Join(lines, "")); err != nil {
				t.Fatal(err)
			}
		})
	}
	raw, _ := base64.StdEncoding.DecodeString(string(sigs.Signature))
	if len(raw) != 256 {
		t.Errorf("signature is %d bytes, want 256 (RSA-2048)", len(raw))
	}
}

func TestPKCS7MatchesEC2Algorithms(t *testing.T) {
	sg := sharedSigner(t)
	sigs, err := sg.Sign([]byte(document))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		form   string
		body   []byte
		digest string
		keyAlg x509.PublicKeyAlgorithm
	}{
		{FormPKCS7, sigs.PKCS7, pkcs7.OIDDigestAlgorithmSHA1.String(), x509.DSA},
		{FormRSA2048, sigs.RSA2048, pkcs7.OIDDigestAlgorithmSHA256.String(), x509.RSA},
	} {
		t.Run(tc.form, func(t *testing.T) {
			raw, _ := base64.StdEncoding.DecodeString(string(tc.body))
			p7, err := pkcs7.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(p7.Certificates) != 0 {
				t.Errorf("%d certificates embedded; EC2 embeds none", len(p7.Certificates))
			}
			if string(p7.Content) != document {
				t.Errorf("attached content %q, want the document", p7.Content)
			}
			if len(p7.Signers) != 1 || p7.Signers[0].DigestAlgorithm.Algorithm.String() != tc.digest {
				t.Fatalf("signers %+v, want one with digest %s", p7.Signers, tc.digest)
			}
			cert, _ := sg.Certificate(tc.form)
			if cert.PublicKeyAlgorithm != tc.keyAlg {
				t.Errorf("certificate key %v, want %v", cert.PublicKeyAlgorithm, tc.keyAlg)
			}
			if p7.Signers[0].IssuerAndSerialNumber.SerialNumber.Cmp(cert.SerialNumber) != 0 {
				t.Error("signer serial does not name the form's certificate")
			}
		})
	}
}

func TestCertificates(t *testing.T) {
	sg := sharedSigner(t)
	seen := map[string]bool{}
	for _, form := range Forms() {
		t.Run(form+"_is_self_signed_frontdesk_and_long_lived", func(t *testing.T) {
			c, err := sg.Certificate(form)
			if err != nil {
				t.Fatal(err)
			}
			s := c.Subject
			if strings.Join(s.Country, "") != "US" || strings.Join(s.Province, "") != "Washington State" ||
				strings.Join(s.Locality, "") != "Seattle" || strings.Join(s.Organization, "") != "frontdesk" {
				t.Errorf("subject %v", s)
			}
			if !bytes.Equal(c.RawIssuer, c.RawSubject) {
				t.Error("not self-issued")
			}
			if c.NotBefore.After(now) || c.NotAfter.Before(now.Add(50*365*24*time.Hour)) {
				t.Errorf("validity %v .. %v", c.NotBefore, c.NotAfter)
			}
			if seen[c.SerialNumber.String()] {
				t.Error("serial number reused across forms")
			}
			seen[c.SerialNumber.String()] = true
		})
	}
	t.Run("key_sizes", func(t *testing.T) {
		for _, form := range []string{FormSignature, FormRSA2048} {
			c, _ := sg.Certificate(form)
			if n := c.PublicKey.(*rsa.PublicKey).N.BitLen(); n != 2048 {
				t.Errorf("%s: RSA-%d", form, n)
			}
		}
		c, _ := sg.Certificate(FormPKCS7)
		if pub, ok := c.PublicKey.(*dsa.PublicKey); !ok || pub.P.BitLen() != 2048 || pub.Q.BitLen() != 256 {
			t.Errorf("pkcs7 certificate key %T, want DSA L2048 N256", c.PublicKey)
		}
	})
	t.Run("unknown_form_is_an_error", func(t *testing.T) {
		if _, err := sg.Certificate("dsa2048"); !errors.Is(err, ErrUnknownForm) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestCertificatesPEMListsEachFormWithAComment(t *testing.T) {
	sg := sharedSigner(t)
	rest := sg.CertificatesPEM()
	for _, form := range Forms() {
		block, r := pem.Decode(rest)
		if block == nil {
			t.Fatalf("no certificate for %s", form)
		}
		before := string(rest[:bytes.Index(rest, []byte("-----BEGIN"))])
		if !strings.HasPrefix(before, "# dynamic/instance-identity/"+form+":") {
			t.Errorf("comment before %s certificate: %q", form, before)
		}
		want, _ := sg.Certificate(form)
		if !bytes.Equal(block.Bytes, want.Raw) {
			t.Errorf("%s: wrong certificate", form)
		}
		rest = r
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("trailing data %q", rest)
	}
}

func TestKeysAreCreatedOnceAndPersist(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	clock := func() time.Time { return now }

	// Two nodes starting at once on an empty store agree on one key set.
	var wg sync.WaitGroup
	signers := make([]*Signer, 2)
	for i := range signers {
		wg.Go(func() {
			sg, err := LoadOrCreate(ctx, s, clock)
			if err != nil {
				t.Error(err)
			}
			signers[i] = sg
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if !bytes.Equal(signers[0].CertificatesPEM(), signers[1].CertificatesPEM()) {
		t.Fatal("concurrent first starts produced different certificates")
	}

	restarted, err := LoadOrCreate(ctx, s, clock)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(restarted.CertificatesPEM(), signers[0].CertificatesPEM()) {
		t.Fatal("second LoadOrCreate on the same store changed the certificates")
	}
	sigs, err := restarted.Sign([]byte(document))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := signers[0].Certificate(FormSignature)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(sigs.Signature))
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(x509.SHA256WithRSA, []byte(document), raw); err != nil {
		t.Fatalf("restarted signer's signature against the first signer's certificate: %v", err)
	}
}

func TestLoadOrCreateRefusesBadStoredKeys(t *testing.T) {
	value, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	var st stored
	if err := json.Unmarshal(value, &st); err != nil {
		t.Fatal(err)
	}
	swapped := st
	swapped.Signature.Cert = st.RSA2048.Cert
	wrongDSA := st
	wrongDSA.PKCS7.X = []byte{7}
	badCert := st
	badCert.PKCS7.Cert = []byte("not a certificate")
	tests := map[string]any{
		"garbage":                             "{",
		"certificate_of_another_key":          swapped,
		"dsa_private_key_not_matching_public": wrongDSA,
		"unparsable_dsa_certificate":          badCert,
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			b, ok := v.(string)
			raw := []byte(b)
			if !ok {
				raw, _ = json.Marshal(v)
			}
			s := newStore(t)
			_ = s.Update(context.Background(), func(tx imds.Tx) error { return imds.PutSecret(tx, SecretName, raw) })
			if _, err := LoadOrCreate(context.Background(), s, nil); err == nil {
				t.Fatal("bad stored keys accepted")
			}
		})
	}
}

func TestLoadDoesNotCreateKeys(t *testing.T) {
	s := newStore(t)
	if _, err := Load(context.Background(), s); !errors.Is(err, imds.ErrNotFound) {
		t.Fatalf("Load on an empty store: %v, want ErrNotFound", err)
	}
	if err := s.View(context.Background(), func(tx imds.Tx) error {
		_, err := imds.GetSecret(tx, SecretName)
		return err
	}); !errors.Is(err, imds.ErrNotFound) {
		t.Fatalf("Load wrote keys: %v", err)
	}
	want := sharedSigner(t).CertificatesPEM()
	value, _ := generated()
	_ = s.Update(context.Background(), func(tx imds.Tx) error { return imds.PutSecret(tx, SecretName, value) })
	sg, err := Load(context.Background(), s)
	if err != nil || !bytes.Equal(sg.CertificatesPEM(), want) {
		t.Fatalf("Load after keys exist: %v", err)
	}
}

func TestLoadOrCreateReportsStoreErrors(t *testing.T) {
	s := newStore(t)
	_ = s.Close()
	if _, err := LoadOrCreate(context.Background(), s, nil); !errors.Is(err, imds.ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
}

func TestWrap76(t *testing.T) {
	for _, n := range []int{0, 1, 56, 57, 58, 114, 200} {
		raw := bytes.Repeat([]byte{0xa5}, n)
		got := string(wrap76(raw))
		want := base64.StdEncoding.EncodeToString(raw)
		if strings.ReplaceAll(got, "\n", "") != want {
			t.Errorf("%d bytes: content changed", n)
		}
		if n > 0 && strings.Count(got, "\n") != (len(want)-1)/76 {
			t.Errorf("%d bytes: %d newlines in %q", n, strings.Count(got, "\n"), got)
		}
	}
}
