package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	testID  = "i-0123456789abcdef0"
	testGen = uint64(7)
)

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testRing returns a ring with one deterministic key, active from epoch.
func testRing(t testing.TB, ids ...uint16) *Ring {
	t.Helper()
	if len(ids) == 0 {
		ids = []uint16{4}
	}
	var keys []key
	for i, id := range ids {
		secret := bytes.Repeat([]byte{byte(id), byte(i + 1)}, secretLen/2)
		at := epoch.Add(time.Duration(i) * time.Hour)
		k, err := newKey(id, secret, at, at)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	r, err := newRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mint(t testing.TB, r *Ring, id string, gen uint64, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, _, err := r.Mint(id, gen, ttl, now)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

func TestMintProducesEC2Shape(t *testing.T) {
	r := testRing(t)
	tok, exp, err := r.Mint(testID, testGen, 21600*time.Second, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 56 || !strings.HasSuffix(tok, "==") {
		t.Fatalf("token %q: want 56 characters ending ==", tok)
	}
	if strings.ContainsAny(tok, "+/") {
		t.Fatalf("token %q is not URL-safe base64", tok)
	}
	raw, err := base64.URLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 40 {
		t.Fatalf("decode: %d bytes, %v", len(raw), err)
	}
	if raw[0] != 1 || raw[1] != 0 || binary.BigEndian.Uint16(raw[2:4]) != 4 {
		t.Fatalf("header % x, want 01 00 00 04", raw[:4])
	}
	if got := int64(binary.BigEndian.Uint32(raw[4:8])); got != epoch.Unix()+21600 || !exp.Equal(time.Unix(got, 0)) {
		t.Fatalf("expiry field %d, returned %v; want %d", got, exp, epoch.Unix()+21600)
	}
	if other := mint(t, r, testID, testGen, 21600*time.Second, epoch); other == tok {
		t.Fatal("two mints returned the same token: nonce is not random")
	}
}

func TestVerify(t *testing.T) {
	r := testRing(t)
	ttl := 300 * time.Second
	tok := mint(t, r, testID, testGen, ttl, epoch)
	tests := []struct {
		name     string
		id       string
		gen      uint64
		now      time.Time
		wantErr  error
		wantLeft time.Duration
	}{
		{"valid_at_issue_reports_full_ttl", testID, testGen, epoch, nil, ttl},
		{"valid_midway_reports_whole_seconds_left", testID, testGen, epoch.Add(100*time.Second + 300*time.Millisecond), nil, 199 * time.Second},
		{"last_nanosecond_reports_one_second", testID, testGen, epoch.Add(ttl - time.Nanosecond), nil, time.Second},
		{"expired_exactly_at_issue_plus_ttl", testID, testGen, epoch.Add(ttl), ErrExpired, 0},
		{"expired_long_after", testID, testGen, epoch.Add(48 * time.Hour), ErrExpired, 0},
		{"other_instance_is_invalid", "i-0123456789abcdef1", testGen, epoch, ErrInvalid, 0},
		{"earlier_launch_is_invalid", testID, testGen - 1, epoch, ErrInvalid, 0},
		{"later_launch_is_invalid", testID, testGen + 1, epoch, ErrInvalid, 0},
		{"other_instance_after_expiry_is_invalid_not_expired", "i-0123456789abcdef1", testGen, epoch.Add(ttl), ErrInvalid, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			left, err := r.Verify(tok, tc.id, tc.gen, tc.now)
			if !errors.Is(err, tc.wantErr) || left != tc.wantLeft {
				t.Fatalf("Verify = %v, %v; want %v, %v", left, err, tc.wantLeft, tc.wantErr)
			}
		})
	}
}

func TestMintTruncatesIssueTimeSoTokenNeverOutlivesTTL(t *testing.T) {
	r := testRing(t)
	now := epoch.Add(700 * time.Millisecond)
	tok, exp, err := r.Mint(testID, testGen, 10*time.Second, now)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(epoch.Add(10 * time.Second)) {
		t.Fatalf("expires %v, want %v", exp, epoch.Add(10*time.Second))
	}
	if _, err := r.Verify(tok, testID, testGen, now.Add(10*time.Second-time.Second)); err != nil {
		t.Fatalf("inside ttl: %v", err)
	}
	if _, err := r.Verify(tok, testID, testGen, exp); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expires: %v, want ErrExpired", err)
	}
}

func TestMintRejectsTTLOutsideRange(t *testing.T) {
	r := testRing(t)
	for _, ttl := range []time.Duration{0, -time.Second, 999 * time.Millisecond, MaxTTL + time.Second} {
		if _, _, err := r.Mint(testID, testGen, ttl, epoch); !errors.Is(err, ErrTTL) {
			t.Errorf("ttl %v: err %v, want ErrTTL", ttl, err)
		}
	}
	if _, _, err := r.Mint(testID, testGen, 2*time.Second, time.Unix(math32Max-1, 0)); !errors.Is(err, ErrTTL) {
		t.Errorf("expiry past 2106: err %v, want ErrTTL", err)
	}
}

const math32Max = 1<<32 - 1

func TestEmptyRingMintsAndVerifiesNothing(t *testing.T) {
	for name, r := range map[string]*Ring{"nil": nil, "empty": {}} {
		t.Run(name, func(t *testing.T) {
			if r != nil {
				if _, _, err := r.Mint(testID, testGen, time.Minute, epoch); !errors.Is(err, ErrNoKey) {
					t.Fatalf("mint: %v, want ErrNoKey", err)
				}
			}
			tok := mint(t, testRing(t), testID, testGen, time.Minute, epoch)
			if _, err := r.Verify(tok, testID, testGen, epoch); !errors.Is(err, ErrInvalid) {
				t.Fatalf("verify: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestEveryChangedByteFails(t *testing.T) {
	r := testRing(t)
	tok := mint(t, r, testID, testGen, time.Hour, epoch)
	for i := 0; i < len(tok); i++ {
		for c := 0; c < 256; c++ {
			if byte(c) == tok[i] {
				continue
			}
			b := []byte(tok)
			b[i] = byte(c)
			if _, err := r.Verify(string(b), testID, testGen, epoch); err == nil {
				t.Fatalf("position %d changed to %#02x still verifies", i, c)
			}
		}
	}
}

func TestEveryFlippedRawBitFails(t *testing.T) {
	r := testRing(t)
	tok := mint(t, r, testID, testGen, time.Hour, epoch)
	raw, _ := base64.URLEncoding.DecodeString(tok)
	for i := 0; i < len(raw)*8; i++ {
		b := bytes.Clone(raw)
		b[i/8] ^= 1 << (i % 8)
		if _, err := r.Verify(base64.URLEncoding.EncodeToString(b), testID, testGen, epoch); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bit %d flipped: err %v, want ErrInvalid", i, err)
		}
	}
}

func TestMalformedTokensAreInvalid(t *testing.T) {
	r := testRing(t)
	tok := mint(t, r, testID, testGen, time.Hour, epoch)
	raw, _ := base64.URLEncoding.DecodeString(tok)
	unknownKey := bytes.Clone(raw)
	binary.BigEndian.PutUint16(unknownKey[2:4], 9)
	std := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 20)) // has + and /
	tests := map[string]string{
		"empty":                        "",
		"truncated_by_one":             tok[:55],
		"truncated_padding":            strings.TrimRight(tok, "="),
		"overlong_by_one":              tok + "A",
		"doubled":                      tok + tok,
		"newline_appended":             tok + "\n",
		"newline_inside":               tok[:20] + "\n" + tok[21:],
		"space_inside":                 tok[:20] + " " + tok[21:],
		"standard_base64_alphabet":     std,
		"not_base64":                   strings.Repeat("!", 56),
		"all_padding":                  strings.Repeat("=", 56),
		"nul_bytes":                    strings.Repeat("\x00", 56),
		"raw_bytes_not_encoded":        string(raw),
		"unknown_key_id":               base64.URLEncoding.EncodeToString(unknownKey),
		"wrong_version":                base64.URLEncoding.EncodeToString(append([]byte{2}, raw[1:]...)),
		"unpadded_url_encoding_of_raw": base64.RawURLEncoding.EncodeToString(raw),
		"forty_zero_bytes":             base64.URLEncoding.EncodeToString(make([]byte, 40)),
		"fortyone_bytes_encoded":       base64.URLEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
		"thirtynine_bytes_encoded":     base64.URLEncoding.EncodeToString(raw[:39]),
		"lowercase_of_token":           strings.ToLower(tok),
	}
	for name, bad := range tests {
		t.Run(name, func(t *testing.T) {
			if bad == tok {
				t.Skip("mutation left the token unchanged")
			}
			if _, err := r.Verify(bad, testID, testGen, epoch); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify(%q) = %v, want ErrInvalid", bad, err)
			}
		})
	}
}

func TestRingVerifiesEveryKeyAndMintsWithNewestActive(t *testing.T) {
	r := testRing(t, 1, 2, 3) // active at epoch, +1h, +2h
	for i, now := range []time.Time{epoch, epoch.Add(time.Hour), epoch.Add(3 * time.Hour), epoch.Add(-time.Hour)} {
		want := []uint16{1, 2, 3, 1}[i]
		tok := mint(t, r, testID, testGen, time.Minute, now)
		raw, _ := base64.URLEncoding.DecodeString(tok)
		if got := binary.BigEndian.Uint16(raw[2:4]); got != want {
			t.Errorf("at %v minted with key %d, want %d", now, got, want)
		}
		if _, err := r.Verify(tok, testID, testGen, now); err != nil {
			t.Errorf("key %d: %v", want, err)
		}
	}
}

func TestMACMatchesCryptoHMAC(t *testing.T) {
	r := testRing(t)
	k := &r.keys[0]
	head := []byte("0123456789abcdef")
	for _, id := range []string{"", testID, strings.Repeat("x", inlineID), strings.Repeat("y", inlineID+1), strings.Repeat("z", 1000)} {
		h := hmac.New(sha256.New, k.secret)
		h.Write(head)
		h.Write([]byte(id))
		var g [8]byte
		binary.BigEndian.PutUint64(g[:], 1<<40+5)
		h.Write(g[:])
		want := h.Sum(nil)[:macLen]
		var got [macLen]byte
		k.mac(&got, head, id, 1<<40+5)
		if !bytes.Equal(got[:], want) {
			t.Errorf("id of %d bytes: mac %x, want %x", len(id), got, want)
		}
	}
}

func TestLongInstanceIDsRoundTrip(t *testing.T) {
	r := testRing(t)
	long := "i-" + strings.Repeat("a", 300)
	tok := mint(t, r, long, testGen, time.Minute, epoch)
	if _, err := r.Verify(tok, long, testGen, epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Verify(tok, long+"b", testGen, epoch); !errors.Is(err, ErrInvalid) {
		t.Fatalf("longer id: %v, want ErrInvalid", err)
	}
}

func TestNewRingRejectsDuplicateIDsAndShortSecrets(t *testing.T) {
	k, err := newKey(1, make([]byte, secretLen), epoch, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newRing([]key{k, k}); err == nil {
		t.Error("duplicate key ids accepted")
	}
	if _, err := newKey(1, make([]byte, 16), epoch, epoch); err == nil {
		t.Error("16-byte secret accepted")
	}
}

func TestMintAndVerifyDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	r := testRing(t)
	tok := mint(t, r, testID, testGen, time.Hour, epoch)
	if n := testing.AllocsPerRun(100, func() { _, _ = r.Verify(tok, testID, testGen, epoch) }); n != 0 {
		t.Errorf("Verify allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = r.Verify("garbage", testID, testGen, epoch) }); n != 0 {
		t.Errorf("Verify of garbage allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = r.Mint(testID, testGen, time.Hour, epoch) }); n != 1 {
		t.Errorf("Mint allocates %v times, want 1 (the token string)", n)
	}
}

func BenchmarkMint(b *testing.B) {
	r := testRing(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Mint(testID, testGen, time.Hour, epoch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	r := testRing(b)
	tok := mint(b, r, testID, testGen, time.Hour, epoch)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Verify(tok, testID, testGen, epoch); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	r := testRing(f)
	// Fuzz workers are separate processes that rebuild this setup, so the
	// valid token must be deterministic: a fixed nonce instead of Mint's.
	var raw [rawLen]byte
	raw[0] = version
	binary.BigEndian.PutUint16(raw[2:4], r.keys[0].id)
	binary.BigEndian.PutUint32(raw[4:8], uint32(epoch.Add(time.Hour).Unix()))
	copy(raw[8:16], "fixnonce")
	r.keys[0].mac((*[macLen]byte)(raw[headLen:]), raw[:headLen], testID, testGen)
	valid := base64.URLEncoding.EncodeToString(raw[:])
	if _, err := r.Verify(valid, testID, testGen, epoch); err != nil {
		f.Fatalf("hand-built token: %v", err)
	}
	f.Add(valid)
	f.Add("")
	f.Add(valid[:55] + "B")
	f.Add(strings.Repeat("A", 56))
	f.Add("AQAEAIXk" + strings.Repeat("_", 46) + "==")
	f.Fuzz(func(t *testing.T, tok string) {
		left, err := r.Verify(tok, testID, testGen, epoch)
		if err == nil && tok != valid {
			t.Fatalf("accepted a token that was never minted: %q", tok)
		}
		if err == nil && (left <= 0 || left > time.Hour) {
			t.Fatalf("remaining %v outside (0, 1h]", left)
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
			t.Fatalf("unexpected error kind %v", err)
		}
	})
}
