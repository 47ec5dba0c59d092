package identity

import (
	//lint:ignore SA1019 see identity.go: the pkcs7 form is DSA.
	"crypto/dsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// validity is how long the certificates last. EC2's run for decades; clients
// pin them, so a short validity would only make operators re-distribute.
const validity = 100 * 365 * 24 * time.Hour

// subject is EC2's certificate subject with frontdesk as the organisation:
// close enough that tooling shows the familiar shape, different enough that
// nobody mistakes these for Amazon's.
func subject() pkix.Name {
	return pkix.Name{
		Country:      []string{"US"},
		Province:     []string{"Washington State"},
		Locality:     []string{"Seattle"},
		Organization: []string{"frontdesk"},
	}
}

// stored is the JSON form of the secret. RSA keys are PKCS#8; Go cannot
// marshal DSA keys, so the DSA key is its numbers.
type stored struct {
	Signature storedRSA `json:"signature"`
	PKCS7     storedDSA `json:"pkcs7"`
	RSA2048   storedRSA `json:"rsa2048"`
}

type storedRSA struct {
	Key  []byte `json:"key"`
	Cert []byte `json:"cert"`
}

type storedDSA struct {
	P, Q, G, Y, X []byte
	Cert          []byte `json:"cert"`
}

// generate creates the three keys and certificates and returns the stored
// form.
func generate(now time.Time) ([]byte, error) {
	notBefore := now.UTC().Add(-time.Hour).Truncate(time.Second) // tolerate clients whose clock is a little behind
	notAfter := notBefore.Add(validity)

	var st stored
	for _, r := range []*storedRSA{&st.Signature, &st.RSA2048} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate identity rsa key: %w", err)
		}
		serial, err := randomSerial()
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      subject(),
			NotBefore:    notBefore,
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		if r.Cert, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key); err != nil {
			return nil, fmt.Errorf("identity rsa certificate: %w", err)
		}
		if r.Key, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			return nil, err
		}
	}

	key := new(dsa.PrivateKey)
	if err := dsa.GenerateParameters(&key.Parameters, rand.Reader, dsa.L2048N256); err != nil {
		return nil, fmt.Errorf("generate identity dsa parameters: %w", err)
	}
	if err := dsa.GenerateKey(key, rand.Reader); err != nil {
		return nil, fmt.Errorf("generate identity dsa key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	cert, err := dsaCertificate(key, serial, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	st.PKCS7 = storedDSA{
		P: key.P.Bytes(), Q: key.Q.Bytes(), G: key.G.Bytes(), Y: key.Y.Bytes(), X: key.X.Bytes(),
		Cert: cert,
	}
	return json.Marshal(&st)
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil // positive, never zero
}

// decodeSigner rebuilds a Signer from the stored form, checking that every
// certificate holds the public half of its key: a mismatch would produce
// signatures nobody can verify, so it is refused at start.
func decodeSigner(value []byte) (*Signer, error) {
	var st stored
	if err := json.Unmarshal(value, &st); err != nil {
		return nil, fmt.Errorf("decode identity keys: %w", err)
	}
	s := new(Signer)
	var err error
	if s.sigKey, s.sigCert, err = decodeRSA(st.Signature, FormSignature); err != nil {
		return nil, err
	}
	if s.rsaKey, s.rsaCert, err = decodeRSA(st.RSA2048, FormRSA2048); err != nil {
		return nil, err
	}
	if s.dsaKey, s.dsaCert, err = decodeDSA(st.PKCS7); err != nil {
		return nil, err
	}
	s.certsPEM = s.buildPEM()
	return s, nil
}

func decodeRSA(r storedRSA, form string) (*rsa.PrivateKey, *x509.Certificate, error) {
	k, err := x509.ParsePKCS8PrivateKey(r.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("decode identity %s key: %w", form, err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("decode identity %s key: %T is not RSA", form, k)
	}
	cert, err := x509.ParseCertificate(r.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("decode identity %s certificate: %w", form, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("identity %s certificate does not match its key", form)
	}
	return key, cert, nil
}

func decodeDSA(d storedDSA) (*dsa.PrivateKey, *x509.Certificate, error) {
	n := func(b []byte) *big.Int { return new(big.Int).SetBytes(b) }
	key := &dsa.PrivateKey{
		PublicKey: dsa.PublicKey{Parameters: dsa.Parameters{P: n(d.P), Q: n(d.Q), G: n(d.G)}, Y: n(d.Y)},
		X:         n(d.X),
	}
	if key.Q.Sign() == 0 || key.P.Sign() == 0 || key.X.Sign() == 0 ||
		new(big.Int).Exp(key.G, key.X, key.P).Cmp(key.Y) != 0 {
		return nil, nil, errors.New("decode identity pkcs7 key: inconsistent DSA key")
	}
	cert, err := x509.ParseCertificate(d.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("decode identity pkcs7 certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*dsa.PublicKey)
	if !ok || pub.Y.Cmp(key.Y) != 0 || pub.P.Cmp(key.P) != 0 || pub.Q.Cmp(key.Q) != 0 || pub.G.Cmp(key.G) != 0 {
		return nil, nil, errors.New("identity pkcs7 certificate does not match its key")
	}
	return key, cert, nil
}

// Object identifiers for the DSA certificate (RFC 3279, RFC 5758).
var (
	oidDSA           = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}
	oidDSAWithSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 2}
)

// tbsCertificate is an X.509 v1 TBSCertificate, the version EC2's own DSA
// certificate uses: it needs no extensions.
type tbsCertificate struct {
	SerialNumber *big.Int
	Signature    pkix.AlgorithmIdentifier
	Issuer       asn1.RawValue
	Validity     struct{ NotBefore, NotAfter time.Time }
	Subject      asn1.RawValue
	PublicKey    struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
}

type certificate struct {
	TBS       asn1.RawValue
	Algorithm pkix.AlgorithmIdentifier
	Signature asn1.BitString
}

// dsaCertificate builds a self-signed certificate for a DSA key by hand:
// crypto/x509 can neither put a DSA public key in a certificate nor sign with
// DSA. encoding/asn1 writes times as UTCTime before 2050 and GeneralizedTime
// from then on, as RFC 5280 requires.
func dsaCertificate(key *dsa.PrivateKey, serial *big.Int, notBefore, notAfter time.Time) ([]byte, error) {
	name, err := asn1.Marshal(subject().ToRDNSequence())
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(struct{ P, Q, G *big.Int }{key.P, key.Q, key.G})
	if err != nil {
		return nil, err
	}
	y, err := asn1.Marshal(key.Y)
	if err != nil {
		return nil, err
	}
	sigAlg := pkix.AlgorithmIdentifier{Algorithm: oidDSAWithSHA256}
	var tbs tbsCertificate
	tbs.SerialNumber = serial
	tbs.Signature = sigAlg
	tbs.Issuer = asn1.RawValue{FullBytes: name}
	tbs.Validity.NotBefore, tbs.Validity.NotAfter = notBefore.UTC(), notAfter.UTC()
	tbs.Subject = asn1.RawValue{FullBytes: name}
	tbs.PublicKey.Algorithm = pkix.AlgorithmIdentifier{Algorithm: oidDSA, Parameters: asn1.RawValue{FullBytes: params}}
	tbs.PublicKey.PublicKey = asn1.BitString{Bytes: y, BitLength: 8 * len(y)}
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		return nil, fmt.Errorf("identity dsa certificate: %w", err)
	}
	digest := sha256.Sum256(tbsDER)
	r, s, err := dsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("identity dsa certificate: %w", err)
	}
	sig, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(certificate{
		TBS:       asn1.RawValue{FullBytes: tbsDER},
		Algorithm: sigAlg,
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
}

// withoutCertificates removes the certificates field ([0] IMPLICIT) from a
// DER ContentInfo holding SignedData. The pkcs7 library always embeds the
// signer's certificate; EC2 does not, and verifiers must not rely on one.
func withoutCertificates(der []byte) ([]byte, error) {
	// Content is the [0] EXPLICIT wrapper; its Bytes are the SignedData.
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("reparse signed data: %v", err)
	}
	var sd asn1.RawValue
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("reparse signed data: %v", err)
	}
	var kept []byte
	for rest := sd.Bytes; len(rest) > 0; {
		var el asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &el); err != nil {
			return nil, fmt.Errorf("reparse signed data: %w", err)
		}
		if el.Class == asn1.ClassContextSpecific && el.Tag == 0 {
			continue
		}
		kept = append(kept, el.FullBytes...)
	}
	inner, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: kept})
	if err != nil {
		return nil, err
	}
	ci.Content = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}
	return asn1.Marshal(ci)
}
