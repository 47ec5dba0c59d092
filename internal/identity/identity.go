// Package identity signs the instance identity document the way EC2 does
// (docs/behaviour.md, "Identity document"), with frontdesk's own keys.
//
// EC2 publishes three signatures over the exact document bytes, each checked
// by users with a documented openssl command against a published certificate:
//
//	signature  RSA PKCS#1 v1.5 over SHA-256     openssl dgst -sha256 -verify
//	pkcs7      CMS SignedData, SHA-1 + DSA       openssl smime -verify -certfile
//	rsa2048    CMS SignedData, SHA-256 + RSA     openssl smime -verify -certfile
//
// Keys and self-signed certificates are created on first start and kept in
// the Store as one secret, so every replica signs with the same keys and the
// certificates an operator hands to clients stay valid across restarts.
// `frontdesk identity certificates` prints them.
//
// Key choices: EC2's `signature` certificate is RSA-1024 in most regions;
// frontdesk uses RSA-2048 because 1024-bit RSA has been below NIST's minimum
// since 2013 and a forged identity document is exactly what an attacker
// wants. Clients take the key size from the certificate, so the only visible
// difference is a longer signature. The DSA key is L2048/N256 (EC2's is
// 1024-bit); the digest stays SHA-1 as EC2 documents for pkcs7, which openssl
// verifies with either size.
package identity

import (
	"bytes"
	"context"
	"crypto"
	//lint:ignore SA1019 EC2's pkcs7 form is DSA by definition, and clients verify it as DSA.
	"crypto/dsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// SecretName is the store secret (imds.GetSecret) holding the keys and
// certificates.
const SecretName = "identity-keys"

// The three signature forms, named as the metadata paths under
// dynamic/instance-identity/.
const (
	FormSignature = "signature"
	FormPKCS7     = "pkcs7"
	FormRSA2048   = "rsa2048"
)

// Forms lists the forms in the order CertificatesPEM prints them.
func Forms() []string { return []string{FormSignature, FormPKCS7, FormRSA2048} }

// ErrUnknownForm: Certificate was asked for a form that does not exist.
var ErrUnknownForm = errors.New("unknown identity signature form")

// Signatures holds the three bodies served next to the document. Each is
// standard base64 wrapped at 76 columns with "\n", no PEM armour and no
// trailing newline, as EC2 serves them.
type Signatures struct {
	Signature []byte
	PKCS7     []byte
	RSA2048   []byte
}

// Signer signs identity documents. It is immutable and safe for concurrent
// use.
type Signer struct {
	sigKey   *rsa.PrivateKey
	sigCert  *x509.Certificate
	dsaKey   *dsa.PrivateKey
	dsaCert  *x509.Certificate
	rsaKey   *rsa.PrivateKey
	rsaCert  *x509.Certificate
	certsPEM []byte
}

// LoadOrCreate returns the Signer for the keys in store, creating and storing
// them on first start. Keys are generated before the write transaction
// (DSA parameter generation takes up to a second or two, too long to hold a
// store lock or to repeat on an etcd retry); the Update then keeps whatever
// is already stored, so when two nodes start at once both end up with the
// keys of whichever committed first.
func LoadOrCreate(ctx context.Context, store imds.Store, now func() time.Time) (*Signer, error) {
	if now == nil {
		now = time.Now
	}
	s, err := Load(ctx, store)
	if !errors.Is(err, imds.ErrNotFound) {
		return s, err
	}
	fresh, err := generate(now())
	if err != nil {
		return nil, err
	}
	var value []byte
	err = store.Update(ctx, func(tx imds.Tx) error {
		v, err := imds.GetSecret(tx, SecretName)
		switch {
		case err == nil:
			value = v
			return nil
		case !errors.Is(err, imds.ErrNotFound):
			return err
		}
		value = fresh
		return imds.PutSecret(tx, SecretName, fresh)
	})
	if err != nil {
		return nil, fmt.Errorf("store identity keys: %w", err)
	}
	return decodeSigner(value)
}

// Load returns the Signer for the keys already in store, without creating
// any. Errors: imds.ErrNotFound when the store has none yet (frontdesk serve
// creates them on its first start).
func Load(ctx context.Context, store imds.Store) (*Signer, error) {
	var value []byte
	err := store.View(ctx, func(tx imds.Tx) error {
		v, err := imds.GetSecret(tx, SecretName)
		value = v
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load identity keys: %w", err)
	}
	return decodeSigner(value)
}

// Sign returns the three signatures of doc. doc must be the exact bytes that
// are served as the document: every form covers them byte for byte.
func (s *Signer) Sign(doc []byte) (Signatures, error) {
	digest := sha256.Sum256(doc)
	raw, err := rsa.SignPKCS1v15(rand.Reader, s.sigKey, crypto.SHA256, digest[:])
	if err != nil {
		return Signatures{}, fmt.Errorf("identity signature: %w", err)
	}
	p7, err := signedData(doc, s.dsaCert, s.dsaKey, pkcs7.OIDDigestAlgorithmSHA1)
	if err != nil {
		return Signatures{}, fmt.Errorf("identity pkcs7: %w", err)
	}
	r2048, err := signedData(doc, s.rsaCert, s.rsaKey, pkcs7.OIDDigestAlgorithmSHA256)
	if err != nil {
		return Signatures{}, fmt.Errorf("identity rsa2048: %w", err)
	}
	return Signatures{Signature: wrap76(raw), PKCS7: wrap76(p7), RSA2048: wrap76(r2048)}, nil
}

// Certificate returns the certificate that verifies form.
func (s *Signer) Certificate(form string) (*x509.Certificate, error) {
	switch form {
	case FormSignature:
		return s.sigCert, nil
	case FormPKCS7:
		return s.dsaCert, nil
	case FormRSA2048:
		return s.rsaCert, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownForm, form)
}

// CertificatesPEM returns the three certificates, PEM encoded, each preceded
// by a comment line naming the form it verifies and how. openssl and
// encoding/pem skip text outside the armour, so the file can be used as is;
// an operator publishes it to clients as EC2 publishes its regional
// certificates.
func (s *Signer) CertificatesPEM() []byte { return bytes.Clone(s.certsPEM) }

func (s *Signer) buildPEM() []byte {
	var b bytes.Buffer
	notes := map[string]string{
		FormSignature: "# dynamic/instance-identity/signature: RSA-2048, SHA-256 (openssl dgst -sha256 -verify <public key of this certificate>)",
		FormPKCS7:     "# dynamic/instance-identity/pkcs7: DSA, SHA-1 (openssl smime -verify -inform PEM -noverify -certfile <this certificate>)",
		FormRSA2048:   "# dynamic/instance-identity/rsa2048: RSA-2048, SHA-256 (openssl smime -verify -inform PEM -noverify -certfile <this certificate>)",
	}
	for _, form := range Forms() {
		c, _ := s.Certificate(form)
		b.WriteString(notes[form])
		b.WriteByte('\n')
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// signedData builds an attached CMS SignedData over doc. The signer's
// certificate is left out, as EC2 leaves it out: users name it with
// -certfile, and a verifier must use the certificate it trusts anyway.
func signedData(doc []byte, cert *x509.Certificate, key crypto.PrivateKey, digest asn1.ObjectIdentifier) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(doc)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(digest)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, err
	}
	return withoutCertificates(der)
}

// wrap76 is base64 in lines of 76 characters joined by "\n", with no final
// newline: the layout of EC2's (and AWS's mock's) signature bodies.
func wrap76(raw []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(raw)
	out := make([]byte, 0, len(enc)+len(enc)/76)
	for len(enc) > 76 {
		out = append(out, enc[:76]...)
		out = append(out, '\n')
		enc = enc[76:]
	}
	return append(out, enc...)
}
