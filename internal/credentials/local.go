package credentials

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"time"
)

// DefaultLocalLifetime is how long local credentials last: EC2 hands out
// instance profile credentials valid for about six hours.
const DefaultLocalLifetime = 6 * time.Hour

// LocalOptions configure a Local provider. The zero value works.
type LocalOptions struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Lifetime is how long each set lasts; DefaultLocalLifetime when zero.
	Lifetime time.Duration
}

// Local is the development provider: it mints credentials that look like
// STS's (ASIA key ids, 40-character secrets, long session tokens) without
// calling anything. They authenticate nowhere; they let SDKs and tools run
// their credential logic unchanged.
type Local struct {
	now      func() time.Time
	lifetime time.Duration
}

// NewLocal returns a Local provider.
func NewLocal(opts LocalOptions) *Local {
	l := &Local{now: opts.Now, lifetime: opts.Lifetime}
	if l.now == nil {
		l.now = time.Now
	}
	if l.lifetime <= 0 {
		l.lifetime = DefaultLocalLifetime
	}
	return l
}

// Sizes of the random parts. The token is shorter than a real one (which runs
// past 1,000 characters) because 200,000 targets keep one each in memory.
const (
	keyIDRandom  = 10  // 16 base32 characters after "ASIA"
	secretRandom = 30  // 40 base64 characters
	tokenRandom  = 222 // 296 base64 characters after the prefix
)

// tokenPrefix is how every current STS session token begins (base64 of the
// token's version header), so tools that sniff tokens accept these.
const tokenPrefix = "IQoJb3JpZ2luX2Vj"

// Retrieve mints a new set; it never fails.
func (l *Local) Retrieve(_ context.Context, _ Target) (Credentials, error) {
	var b [keyIDRandom + secretRandom + tokenRandom]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	now := l.now().UTC().Truncate(time.Second)
	tok := make([]byte, len(tokenPrefix)+base64.StdEncoding.EncodedLen(tokenRandom))
	copy(tok, tokenPrefix)
	base64.StdEncoding.Encode(tok[len(tokenPrefix):], b[keyIDRandom+secretRandom:])
	return Credentials{
		AccessKeyID:     "ASIA" + base32.StdEncoding.EncodeToString(b[:keyIDRandom]),
		SecretAccessKey: base64.StdEncoding.EncodeToString(b[keyIDRandom : keyIDRandom+secretRandom]),
		SessionToken:    string(tok),
		Expiration:      now.Add(l.lifetime),
		LastUpdated:     now,
	}, nil
}
