package credentials

import (
	"strings"
	"testing"
	"time"
)

func TestIdentityCredentialsAreStableWithinAPeriodAndRotate(t *testing.T) {
	now := time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)
	d := NewIdentity(func() time.Time { return now })
	a, va := d.Get("i-0123456789abcdef0")
	if !strings.HasPrefix(a.AccessKeyID, "ASIA") || len(a.AccessKeyID) != 20 || len(a.SecretAccessKey) != 40 || !strings.HasPrefix(a.SessionToken, tokenPrefix) {
		t.Fatalf("credentials do not look like STS's: %s", a)
	}
	if !a.Valid(now) || a.LastUpdated.After(now) {
		t.Fatalf("credentials not valid now: %+v", a.Expiration)
	}
	now = now.Add(time.Hour)
	if b, vb := d.Get("i-0123456789abcdef0"); b != a || vb != va {
		t.Fatal("the set changed within a period")
	}
	if c, _ := d.Get("i-0fedcba9876543210"); c.AccessKeyID == a.AccessKeyID || c.SecretAccessKey == a.SecretAccessKey {
		t.Fatal("two instances share a set")
	}
	// The next period's set is served while the old one is still valid
	// for at least five minutes, as EC2 does.
	now = a.LastUpdated.Add(IdentityPeriod)
	next, vn := d.Get("i-0123456789abcdef0")
	if next.AccessKeyID == a.AccessKeyID || vn == va {
		t.Fatal("the set did not rotate at the period's end")
	}
	if !a.Valid(now.Add(5 * time.Minute)) {
		t.Fatal("the old set expired less than five minutes after the new one appeared")
	}
	if !next.Expiration.After(a.Expiration) {
		t.Fatal("the served Expiration did not move forward")
	}
}
