// Package token mints and verifies IMDSv2 session tokens without keeping any
// per-token state: a token carries everything needed to check it.
//
// A token is sealed with an HMAC over its own header, the key id, its expiry,
// a random nonce, and two values that are not in the token at all: the
// instance id and the instance's launch generation. The verifier supplies the
// caller's, so a token replayed from another instance, or from an earlier
// launch that held the same address, fails. Verifying needs only the key
// ring, which lives in the Store: tokens survive restarts, verify on every
// replica, and keep verifying across key rotation while inside their TTL.
//
// The wire form copies real EC2's shape (docs/behaviour.md, "Tokens"): 40 bytes,
// URL-safe base64 with padding, 56 characters, beginning 01 00:
//
//	offset  size  field
//	0       1     version (0x01)
//	1       1     flags (0x00)
//	2       2     key id, big endian
//	4       4     expiry, unix seconds, big endian (exclusive)
//	8       8     random nonce
//	16      24    HMAC-SHA256(key, bytes 0..15 ‖ instance id ‖ generation), truncated
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Token geometry. EncodedLen is what clients see as Content-Length: 56.
const (
	rawLen     = 40
	headLen    = 16 // version, flags, key id, expiry, nonce: the authenticated prefix
	macLen     = rawLen - headLen
	EncodedLen = 56
	version    = 0x01
	flags      = 0x00
	secretLen  = 32
)

// MaxTTL is the longest lifetime IMDS grants (21600 s, docs/behaviour.md "Tokens"). A key is kept
// at least this long after it stops minting, so no token outlives its key.
const MaxTTL = 21600 * time.Second

// Errors. Verify tells its caller only "invalid" or "expired": the data plane
// answers both with 401 and uses the distinction for metrics alone.
var (
	// ErrInvalid: the token is malformed, forged, for another instance or
	// launch, or signed with a key the ring no longer has.
	ErrInvalid = errors.New("invalid token")
	// ErrExpired: the token is authentic but its lifetime has ended.
	ErrExpired = errors.New("expired token")
	// ErrTTL: Mint was asked for a lifetime outside 1 s .. MaxTTL.
	ErrTTL = errors.New("token ttl out of range")
	// ErrNoKey: the ring holds no key, so nothing can be minted or verified.
	ErrNoKey = errors.New("token key ring is empty")
)

// encoding is strict so that every 40-byte token has exactly one accepted
// spelling: lax decoding ignores the last character's four spare bits, which
// would let a changed character still verify. Never modified.
var encoding = base64.URLEncoding.Strict()

// Ring is an immutable set of token keys. It is safe for concurrent use; a
// Keeper publishes a new Ring rather than changing one.
type Ring struct {
	keys []key // ascending by activation time; the newest active one mints
}

// key is one HMAC key with its pads precomputed, so a MAC is two SHA-256
// sums over stack buffers and costs no allocation.
type key struct {
	id      uint16
	created time.Time
	active  time.Time // from then on this key mints (it verifies from the start)
	secret  []byte
	ipad    [sha256.BlockSize]byte
	opad    [sha256.BlockSize]byte
}

func newKey(id uint16, secret []byte, created, active time.Time) (key, error) {
	if len(secret) != secretLen {
		return key{}, fmt.Errorf("token key %d: secret is %d bytes, want %d", id, len(secret), secretLen)
	}
	k := key{id: id, created: created, active: active, secret: append([]byte(nil), secret...)}
	for i := range k.ipad {
		k.ipad[i], k.opad[i] = 0x36, 0x5c
	}
	for i, b := range secret {
		k.ipad[i] ^= b
		k.opad[i] ^= b
	}
	return k, nil
}

// newRing builds a ring; keys must have distinct ids.
func newRing(keys []key) (*Ring, error) {
	seen := make(map[uint16]bool, len(keys))
	for _, k := range keys {
		if seen[k.id] {
			return nil, fmt.Errorf("token key ring: duplicate key id %d", k.id)
		}
		seen[k.id] = true
	}
	ks := append([]key(nil), keys...)
	sort.SliceStable(ks, func(i, j int) bool {
		if !ks[i].active.Equal(ks[j].active) {
			return ks[i].active.Before(ks[j].active)
		}
		return ks[i].created.Before(ks[j].created)
	})
	return &Ring{keys: ks}, nil
}

// Len reports how many keys the ring holds (for health output and tests).
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.keys)
}

// minting returns the key that mints at now: the newest one already active.
// A key published by a rotation becomes active only after a propagation
// delay, so every replica can verify it before any replica mints with it. If
// the clock is behind every activation time, the oldest key mints.
func (r *Ring) minting(now time.Time) *key {
	if len(r.keys) == 0 {
		return nil
	}
	k := &r.keys[0]
	for i := 1; i < len(r.keys); i++ {
		if r.keys[i].active.After(now) {
			break
		}
		k = &r.keys[i]
	}
	return k
}

func (r *Ring) lookup(id uint16) *key {
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i]
		}
	}
	return nil
}

// Mint returns a new token for the instance's current launch, valid while
// now < expires. The issue time is truncated to whole seconds, so a token
// never lives longer than ttl (and up to a second less). ttl must be whole
// seconds from 1 s to MaxTTL; the data plane validates the client's header
// before calling. The only allocation is the returned string.
func (r *Ring) Mint(instanceID string, generation uint64, ttl time.Duration, now time.Time) (token string, expires time.Time, err error) {
	if ttl < time.Second || ttl > MaxTTL {
		return "", time.Time{}, ErrTTL
	}
	k := r.minting(now)
	if k == nil {
		return "", time.Time{}, ErrNoKey
	}
	exp := now.Unix() + int64(ttl/time.Second)
	if now.Unix() < 0 || exp > math.MaxUint32 {
		return "", time.Time{}, fmt.Errorf("token expiry %d does not fit the format: %w", exp, ErrTTL)
	}
	var raw [rawLen]byte
	raw[0], raw[1] = version, flags
	binary.BigEndian.PutUint16(raw[2:4], k.id)
	binary.BigEndian.PutUint32(raw[4:8], uint32(exp))
	if _, err := rand.Read(raw[8:16]); err != nil {
		return "", time.Time{}, fmt.Errorf("token nonce: %w", err)
	}
	k.mac((*[macLen]byte)(raw[headLen:]), raw[:headLen], instanceID, generation)
	var enc [EncodedLen]byte
	encoding.Encode(enc[:], raw[:])
	return string(enc[:]), time.Unix(exp, 0), nil
}

// Verify checks a token presented by instanceID at its launch generation.
// It returns the time left, rounded down to whole seconds but at least one
// second (the last fraction of a second is reported as 1 s, never 0), for the
// TTL response header. Expiry is exclusive: a token is valid while
// now < expires. Errors: ErrInvalid or ErrExpired, nothing more specific, so
// a caller cannot become a forgery oracle. Verify never panics, compares MACs
// in constant time and does not allocate.
func (r *Ring) Verify(token, instanceID string, generation uint64, now time.Time) (remaining time.Duration, err error) {
	if r == nil || len(token) != EncodedLen {
		return 0, ErrInvalid
	}
	var enc [EncodedLen]byte
	copy(enc[:], token)
	var raw [rawLen + 2]byte // Decode needs room for DecodedLen(56) = 42 bytes
	n, err := encoding.Decode(raw[:], enc[:])
	if err != nil || n != rawLen {
		return 0, ErrInvalid
	}
	if raw[0] != version || raw[1] != flags {
		return 0, ErrInvalid
	}
	k := r.lookup(binary.BigEndian.Uint16(raw[2:4]))
	if k == nil {
		return 0, ErrInvalid
	}
	var want [macLen]byte
	k.mac(&want, raw[:headLen], instanceID, generation)
	if !hmac.Equal(want[:], raw[headLen:rawLen]) {
		return 0, ErrInvalid
	}
	left := time.Unix(int64(binary.BigEndian.Uint32(raw[4:8])), 0).Sub(now)
	if left <= 0 {
		return 0, ErrExpired
	}
	if left = left.Truncate(time.Second); left == 0 {
		left = time.Second
	}
	return left, nil
}

// inlineID is the longest instance id whose MAC is computed on the stack.
// EC2 ids are 19 characters; longer ones take the allocating crypto/hmac path.
const inlineID = 128

// mac writes the truncated HMAC-SHA256 of head ‖ instanceID ‖ generation.
// It is HMAC by hand (RFC 2104, with pads precomputed per key) only so that it
// does not allocate; TestMACMatchesCryptoHMAC holds it to crypto/hmac. The
// instance id is the only variable-length field, so the encoding is unambiguous.
func (k *key) mac(out *[macLen]byte, head []byte, instanceID string, generation uint64) {
	if len(instanceID) > inlineID {
		// Copy into one heap message: handing head to the hash.Hash
		// interface directly would make every caller's stack buffer escape.
		msg := make([]byte, 0, len(head)+len(instanceID)+8)
		msg = append(append(msg, head...), instanceID...)
		msg = binary.BigEndian.AppendUint64(msg, generation)
		h := hmac.New(sha256.New, k.secret)
		h.Write(msg)
		copy(out[:], h.Sum(nil))
		return
	}
	var in [sha256.BlockSize + headLen + inlineID + 8]byte
	n := copy(in[:], k.ipad[:])
	n += copy(in[n:], head)
	n += copy(in[n:], instanceID)
	binary.BigEndian.PutUint64(in[n:], generation)
	inner := sha256.Sum256(in[:n+8])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	sum := sha256.Sum256(outer[:])
	copy(out[:], sum[:macLen])
}
