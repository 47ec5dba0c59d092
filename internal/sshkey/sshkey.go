// Package sshkey parses, generates and fingerprints SSH key pairs the way
// EC2's key-pair actions do. It is the only package that imports
// golang.org/x/crypto/ssh.
//
// Fingerprints follow EC2's documented rules ("Verify the fingerprint of
// your key pair" in the EC2 User Guide, and the KeyFingerprint field of the
// API reference), which differ by origin and type:
//   - an imported RSA (or ECDSA) key: the MD5 digest of the public key in
//     DER form (X.509 SubjectPublicKeyInfo), in colon-separated hex; this is
//     what `openssl pkey -pubout -outform DER | openssl md5 -c` prints, and
//     not what ssh-keygen -E md5 prints, a difference operators often trip
//     over;
//   - a created RSA key: the SHA-1 digest of the private key in PKCS#8 DER
//     form, in colon-separated hex;
//   - an ED25519 key, created or imported: the SHA-256 digest of the key in
//     SSH wire form, base64 with its "=" padding (OpenSSH's SHA256:
//     fingerprint without the prefix, and padded, as EC2 shows it).
package sshkey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ErrFormat: the material is not a public key frontdesk can import.
var ErrFormat = errors.New("not a supported public key")

// Key types (EC2's KeyType values, and ecdsa).
const (
	TypeRSA     = "rsa"
	TypeED25519 = "ed25519"
	TypeECDSA   = "ecdsa"
)

// minRSABits is the smallest RSA key accepted: EC2 accepts 1024-bit keys
// for import, and anything smaller is trivially broken.
const minRSABits = 1024

// Public is an imported public key.
type Public struct {
	Type string
	// Line is the OpenSSH authorized_keys line: type, base64 key and a
	// comment (the one given, else the key pair's name).
	Line        string
	Fingerprint string
}

// ParsePublic reads public key material as ImportKeyPair accepts it: an
// OpenSSH line (ssh-rsa, ssh-ed25519, ecdsa-sha2-*), an RFC 4716 SSH2
// public key block, or base64 DER (SubjectPublicKeyInfo). name becomes the
// comment of a key that has none. Errors wrap ErrFormat.
func ParsePublic(material []byte, name string) (Public, error) {
	text := strings.TrimSpace(string(material))
	var (
		key     ssh.PublicKey
		comment string
		err     error
	)
	switch {
	case strings.HasPrefix(text, "---- BEGIN SSH2 PUBLIC KEY ----"):
		key, comment, err = parseRFC4716(text)
	case strings.HasPrefix(text, "ssh-") || strings.HasPrefix(text, "ecdsa-"):
		key, comment, _, _, err = ssh.ParseAuthorizedKey([]byte(text))
	default:
		key, err = parseDER(text)
	}
	if err != nil {
		return Public{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	typ, fp, err := importedFingerprint(key)
	if err != nil {
		return Public{}, err
	}
	if comment = strings.Join(strings.Fields(comment), " "); comment == "" {
		comment = name
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(key)), "\n")
	if comment != "" {
		line += " " + comment
	}
	return Public{Type: typ, Line: line, Fingerprint: fp}, nil
}

func parseRFC4716(text string) (ssh.PublicKey, string, error) {
	var body strings.Builder
	var comment string
	lines := strings.Split(strings.ReplaceAll(text, "\r", ""), "\n")
	for i := 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "---- END SSH2 PUBLIC KEY ----" {
			b, err := base64.StdEncoding.DecodeString(body.String())
			if err != nil {
				return nil, "", err
			}
			k, err := ssh.ParsePublicKey(b)
			return k, comment, err
		}
		if h, v, ok := strings.Cut(l, ":"); ok && !strings.ContainsAny(h, " ") {
			// A header; a trailing backslash continues it on the next line.
			for strings.HasSuffix(v, "\\") && i+1 < len(lines) {
				i++
				v = strings.TrimSuffix(v, "\\") + strings.TrimSpace(lines[i])
			}
			if strings.EqualFold(h, "Comment") {
				comment = strings.Trim(strings.TrimSpace(v), `"`)
			}
			continue
		}
		body.WriteString(l)
	}
	return nil, "", errors.New("no end line in the SSH2 public key block")
}

func parseDER(text string) (ssh.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
	if err != nil {
		return nil, errors.New("neither an OpenSSH line, an SSH2 block nor base64 DER")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// importedFingerprint is the type and EC2 fingerprint of an imported key.
func importedFingerprint(key ssh.PublicKey) (string, string, error) {
	ck, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return "", "", fmt.Errorf("%w: %s keys are not supported", ErrFormat, key.Type())
	}
	switch pub := ck.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return "", "", fmt.Errorf("%w: an RSA key needs at least %d bits", ErrFormat, minRSABits)
		}
		fp, err := md5DER(pub)
		return TypeRSA, fp, err
	case *ecdsa.PublicKey:
		fp, err := md5DER(pub)
		return TypeECDSA, fp, err
	case ed25519.PublicKey:
		return TypeED25519, sha256Wire(key), nil
	}
	return "", "", fmt.Errorf("%w: %s keys are not supported", ErrFormat, key.Type())
}

func md5DER(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrFormat, err)
	}
	sum := md5.Sum(der)
	return colonHex(sum[:]), nil
}

func sha256Wire(key ssh.PublicKey) string {
	sum := sha256.Sum256(key.Marshal())
	return base64.StdEncoding.EncodeToString(sum[:])
}

func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// Created is a new key pair: the private key, which is handed out once and
// never stored, and what is stored.
type Created struct {
	Public
	// PrivateKey is PEM: "RSA PRIVATE KEY" (PKCS#1) for RSA, as EC2 hands
	// it out, and "OPENSSH PRIVATE KEY" for ED25519.
	PrivateKey string
}

// Generate creates a key pair of type rsa (2048 bits, like EC2's) or
// ed25519, named name (the public line's comment).
func Generate(typ, name string) (Created, error) {
	switch typ {
	case TypeRSA:
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return Created{}, fmt.Errorf("generate rsa key: %w", err)
		}
		pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return Created{}, fmt.Errorf("encode rsa key: %w", err)
		}
		sum := sha1.Sum(pkcs8)
		pub, err := ssh.NewPublicKey(&priv.PublicKey)
		if err != nil {
			return Created{}, err
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})
		return Created{
			Public:     Public{Type: TypeRSA, Line: authorizedLine(pub, name), Fingerprint: colonHex(sum[:])},
			PrivateKey: strings.TrimSuffix(string(pemKey), "\n"),
		}, nil
	case TypeED25519:
		pubRaw, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return Created{}, fmt.Errorf("generate ed25519 key: %w", err)
		}
		pub, err := ssh.NewPublicKey(pubRaw)
		if err != nil {
			return Created{}, err
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			return Created{}, fmt.Errorf("encode ed25519 key: %w", err)
		}
		return Created{
			Public:     Public{Type: TypeED25519, Line: authorizedLine(pub, name), Fingerprint: sha256Wire(pub)},
			PrivateKey: strings.TrimSuffix(string(pem.EncodeToMemory(block)), "\n"),
		}, nil
	}
	return Created{}, fmt.Errorf("key type %q: rsa or ed25519", typ)
}

func authorizedLine(pub ssh.PublicKey, comment string) string {
	return string(bytes.TrimSuffix(ssh.MarshalAuthorizedKey(pub), []byte("\n"))) + " " + comment
}
