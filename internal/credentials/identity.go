package credentials

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// IdentityPeriod is how often instance-identity credentials change.
const IdentityPeriod = 6 * time.Hour

// identityOverlap is how long a period's credentials stay valid after the
// next period's are served: EC2 publishes new credentials at least five
// minutes before the old ones expire.
const identityOverlap = 15 * time.Minute

// Identity derives the instance-identity credentials
// (identity-credentials/ec2/security-credentials/ec2-instance) instead of
// storing them: within a period they are a keyed hash of the instance and
// the period, so they cost no memory per instance and no work at launch,
// and every request in a period sees the same set. They authenticate
// nowhere, like the local provider's; AWS itself only accepts its own.
type Identity struct {
	key [32]byte
	now func() time.Time
}

// NewIdentity returns a deriver keyed with fresh random bytes (a restart
// changes the sets, which nothing can tell: they are checked nowhere).
func NewIdentity(now func() time.Time) *Identity {
	d := &Identity{now: now}
	if d.now == nil {
		d.now = time.Now
	}
	_, _ = rand.Read(d.key[:])
	return d
}

// Get returns the current set for an instance, and a version that changes
// exactly when the set does (the data plane's render cache keys on it).
func (d *Identity) Get(instanceID string) (Credentials, uint64) {
	now := d.now().UTC()
	period := uint64(now.Unix()) / uint64(IdentityPeriod/time.Second)
	start := time.Unix(int64(period)*int64(IdentityPeriod/time.Second), 0).UTC()

	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], period)
	stream := func(label byte, n int) []byte {
		out := make([]byte, 0, n+sha256.Size)
		for i := byte(0); len(out) < n; i++ {
			m := hmac.New(sha256.New, d.key[:])
			m.Write([]byte{label, i})
			m.Write(msg[:])
			m.Write([]byte(instanceID))
			out = m.Sum(out)
		}
		return out[:n]
	}
	tok := stream('t', tokenRandom)
	return Credentials{
		AccessKeyID:     "ASIA" + base32.StdEncoding.EncodeToString(stream('k', keyIDRandom)),
		SecretAccessKey: base64.StdEncoding.EncodeToString(stream('s', secretRandom)),
		SessionToken:    tokenPrefix + base64.StdEncoding.EncodeToString(tok),
		LastUpdated:     start,
		Expiration:      start.Add(IdentityPeriod + identityOverlap),
	}, period + 1
}
