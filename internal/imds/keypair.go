package imds

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// keyPairPrefix holds key pairs by name, the way EC2 addresses them (names
// are unique in a region of an account). It belongs to the key layout of
// records.go, kept here with the record it stores.
const keyPairPrefix = "keypairs/"

// ErrKeyPairExists: a key pair of that name is already stored.
var ErrKeyPairExists = errors.New("key pair exists")

// Key types, as EC2's KeyType names them. ECDSA is frontdesk's addition: EC2
// imports only RSA and ED25519 keys.
const (
	KeyTypeRSA     = "rsa"
	KeyTypeED25519 = "ed25519"
	KeyTypeECDSA   = "ecdsa"
)

var keyPairIDRe = regexp.MustCompile(`^key-[0-9a-f]{17}$`)

// KeyPair is a stored key pair: only its public half. A created key pair's
// private key is handed out once, by CreateKeyPair, and never stored.
type KeyPair struct {
	KeyPairID string `json:"keyPairId"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	// Fingerprint is as EC2 computes it for the key's origin and type.
	Fingerprint string `json:"fingerprint"`
	// PublicKey is the OpenSSH authorized_keys line "type base64 comment".
	PublicKey string    `json:"publicKey"`
	Created   time.Time `json:"created"`
	Tags      []Tag     `json:"tags,omitempty"`
}

// ValidKeyPairName reports whether name is an EC2 key pair name: 1 to 255
// ASCII characters.
func ValidKeyPairName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return false
		}
	}
	return true
}

// ValidKeyPairID reports whether id has EC2's form (key- and 17 hex digits).
func ValidKeyPairID(id string) bool { return keyPairIDRe.MatchString(id) }

// Validate checks what a stored key pair must have.
func (k *KeyPair) Validate() error {
	switch {
	case !ValidKeyPairName(k.Name):
		return fmt.Errorf("%w: key pair name %q", ErrInvalid, k.Name)
	case !ValidKeyPairID(k.KeyPairID):
		return fmt.Errorf("%w: key pair id %q", ErrInvalid, k.KeyPairID)
	case k.Type != KeyTypeRSA && k.Type != KeyTypeED25519 && k.Type != KeyTypeECDSA:
		return fmt.Errorf("%w: key type %q", ErrInvalid, k.Type)
	case len(strings.Fields(k.PublicKey)) < 2 || strings.ContainsAny(k.PublicKey, "\r\n"):
		return fmt.Errorf("%w: public key of %q is not one OpenSSH line", ErrInvalid, k.Name)
	case k.Fingerprint == "":
		return fmt.Errorf("%w: key pair %q has no fingerprint", ErrInvalid, k.Name)
	}
	return nil
}

// GetKeyPair reads the key pair called name. Errors: ErrNotFound.
func GetKeyPair(tx Tx, name string) (*KeyPair, error) {
	b, err := tx.Get(keyPairPrefix + name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("key pair %s: %w", name, ErrNotFound)
		}
		return nil, err
	}
	return decodeKeyPair(b)
}

// CreateKeyPair validates and stores a new key pair. Errors: ErrInvalid,
// ErrKeyPairExists (a key pair of that name is stored).
func CreateKeyPair(tx Tx, k *KeyPair) error {
	if err := k.Validate(); err != nil {
		return err
	}
	_, err := tx.Get(keyPairPrefix + k.Name)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s", ErrKeyPairExists, k.Name)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	b, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode key pair: %w", err)
	}
	return tx.Put(keyPairPrefix+k.Name, b)
}

// DeleteKeyPair removes the key pair called name; a missing one is not an
// error (EC2's DeleteKeyPair by name is idempotent). Instances launched with
// it keep the key they were launched with.
func DeleteKeyPair(tx Tx, name string) error { return tx.Delete(keyPairPrefix + name) }

// ListKeyPairs calls fn for every key pair in name order.
func ListKeyPairs(tx Tx, fn func(*KeyPair) error) error {
	return tx.Scan(keyPairPrefix, func(_ string, v []byte) error {
		k, err := decodeKeyPair(v)
		if err != nil {
			return err
		}
		return fn(k)
	})
}

func decodeKeyPair(b []byte) (*KeyPair, error) {
	var k KeyPair
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("decode key pair: %w", err)
	}
	return &k, nil
}
