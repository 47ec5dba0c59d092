package sshkey

import (
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Keys made with ssh-keygen; the expected fingerprints were computed with
// the commands of the EC2 User Guide: ssh-keygen -e -m PKCS8 | openssl pkey
// -pubin -outform DER | openssl md5 -c for RSA and ECDSA, ssh-keygen -l for
// ED25519 (plus EC2's "=" padding).
const (
	rsaLine     = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDIlBNEyp8edXuRmj+G+a/Fb06Xmjww/XnBZ5Kldg6sD0EjUdBnbU5A0BKoQLeeq8Cjd0xb8ysuNMX0Ymr400ei1ZU+T0SH4Vr0pYHXYZL4pyXehbatwVgDi7tg+4oh5Y75+h0dl4bmcBG59xR+Z2tykSl4kDc1CSm6xRdAK1YxBWYLtKKQhFZd9FQezwxcD4X4W2KTvtey3ahrbJXyvBe1xe5k87v0MJC/HmTwk62PTbL2Znn1+/WNz+5tSWyBfmpUqEcqUGIe8N5vx3zgEfPjQAYPpUcektSdw1UBf5duB6VIY7GcYbzNqNkbtNRL3zyQHJyBvO/RNU58UCAk2xC5 alice@example"
	rsaMD5      = "30:30:14:6e:3f:9d:36:af:6f:b1:b7:5f:0c:81:eb:b3"
	rsaDER      = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyJQTRMqfHnV7kZo/hvmvxW9Ol5o8MP15wWeSpXYOrA9BI1HQZ21OQNASqEC3nqvAo3dMW/MrLjTF9GJq+NNHotWVPk9Eh+Fa9KWB12GS+Kcl3oW2rcFYA4u7YPuKIeWO+fodHZeG5nARufcUfmdrcpEpeJA3NQkpusUXQCtWMQVmC7SikIRWXfRUHs8MXA+F+Ftik77Xst2oa2yV8rwXtcXuZPO79DCQvx5k8JOtj02y9mZ59fv1jc/ubUlsgX5qVKhHKlBiHvDeb8d84BHz40AGD6VHHpLUncNVAX+XbgelSGOxnGG8zajZG7TUS988kBycgbzv0TVOfFAgJNsQuQIDAQAB"
	ed25519Line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBDlVni0Ou36qkEgpdQqOZN22nNjcBT70DaWW+CUAFC/ bob@example"
	ed25519FP   = "+z0Cc44p8cP0pgqFtKUj5nrFZ/GWiw2Bky3BE7NUIaU="
	ecdsaLine   = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJmfmLykXXdJZMqkoa4Oyw0RhJf9EoMm5ag7rdX8LW2lR9TVXNZoAW8AbEIZAHUQic24H9Mm1NtcCoRdYppDg04="
	ecdsaMD5    = "25:70:96:8b:1a:fe:82:ca:71:b0:7f:43:9c:b7:5d:22"
	ed25519SSH2 = `---- BEGIN SSH2 PUBLIC KEY ----
Comment: "256-bit ED25519, converted by root@vm from OpenSSH"
AAAAC3NzaC1lZDI1NTE5AAAAIBDlVni0Ou36qkEgpdQqOZN22nNjcBT70DaWW+CUAFC/
---- END SSH2 PUBLIC KEY ----`
)

func TestImportedFingerprintsAreEC2s(t *testing.T) {
	for _, c := range []struct {
		name, material, typ, fp, line string
	}{
		{"rsa_openssh_line_md5_of_der", rsaLine, TypeRSA, rsaMD5, rsaLine},
		{"rsa_base64_der_md5_of_der", rsaDER, TypeRSA, rsaMD5, strings.TrimSuffix(rsaLine, " alice@example") + " k"},
		{"ed25519_sha256_base64_padded", ed25519Line, TypeED25519, ed25519FP, ed25519Line},
		{"ed25519_rfc4716_block_keeps_its_comment", ed25519SSH2, TypeED25519, ed25519FP,
			strings.TrimSuffix(ed25519Line, " bob@example") + " 256-bit ED25519, converted by root@vm from OpenSSH"},
		{"ecdsa_without_comment_gets_the_name", ecdsaLine, TypeECDSA, ecdsaMD5, ecdsaLine + " k"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParsePublic([]byte(c.material+"\n"), "k")
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != c.typ || got.Fingerprint != c.fp || got.Line != c.line {
				t.Errorf("got %+v\nwant type %s fp %s line %q", got, c.typ, c.fp, c.line)
			}
		})
	}
}

func TestBadMaterialIsAFormatError(t *testing.T) {
	for name, m := range map[string]string{
		"garbage":         "hello",
		"truncated_key":   "ssh-rsa AAAAB3NzaC1yc2E",
		"private_key":     "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
		"dss_key":         "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAPHP5y2vQtCyYcCgwlmj6EBlYr2ZNzsKpHNRJj6FsCw1vWObZ+AbHc5yPGu4Bc2BGXIh4tjxr1dTQ9HWQS/Ot0O0m1FHSm2E7kwYrTIS3Vqx4o31Hbc6qzu2HmlgTaYuHkGlxU8y6oVTCb3+wKCeG3V08k4IaAFh4hohh2qFnz2/",
		"rsa_512_bits":    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAQQC7PsHmNI4AWXAVXWQcadWcK9WjM0MpGbv8fB7PBNSLI84T7OXbK3H5pV6Ht1wLp9DLb5KYiDwJ2q5k9rB14zFp",
		"empty":           "",
		"der_not_a_key":   base64.StdEncoding.EncodeToString([]byte("not der")),
		"ssh2_block_open": "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePublic([]byte(m), "k"); !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
		})
	}
}

func TestCreatedRSAFingerprintIsSHA1OfPKCS8(t *testing.T) {
	c, err := Generate(TypeRSA, "web")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(c.PrivateKey))
	if block == nil || block.Type != "RSA PRIVATE KEY" {
		t.Fatalf("private key is not PKCS#1 PEM: %.40q", c.PrivateKey)
	}
	priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(pkcs8)
	if want := colonHex(sum[:]); c.Fingerprint != want || len(c.Fingerprint) != 59 {
		t.Errorf("fingerprint %s, want %s", c.Fingerprint, want)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(signer.PublicKey())), "\n") + " web"; got != c.Line || c.Type != TypeRSA {
		t.Errorf("public line %q does not belong to the private key (%q)", c.Line, got)
	}
}

func TestCreatedED25519IsAnOpenSSHKeyWithItsSHA256Fingerprint(t *testing.T) {
	c, err := Generate(TypeED25519, "ops")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey([]byte(c.PrivateKey))
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	priv, ok := raw.(*ed25519.PrivateKey)
	if !ok {
		t.Fatalf("private key is %T", raw)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pub.Marshal())
	if want := base64.StdEncoding.EncodeToString(sum[:]); c.Fingerprint != want || !strings.HasSuffix(want, "=") {
		t.Errorf("fingerprint %s, want %s", c.Fingerprint, want)
	}
	if !strings.HasPrefix(c.PrivateKey, "-----BEGIN OPENSSH PRIVATE KEY-----") || !strings.HasSuffix(c.Line, " ops") {
		t.Errorf("created %q / %q", c.PrivateKey[:40], c.Line)
	}
	if _, err := Generate("dsa", "x"); err == nil {
		t.Error("dsa generated")
	}
}
