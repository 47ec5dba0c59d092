package credentials

import (
	"context"
	"regexp"
	"testing"
	"time"
)

func TestLocalLooksLikeSTS(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 750_000_000, time.UTC)
	l := NewLocal(LocalOptions{Now: func() time.Time { return now }})
	c, err := l.Retrieve(context.Background(), Target{InstanceID: "i-0123456789abcdef0", Role: "r"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		re   string
		got  string
	}{
		{"access_key_id_is_ASIA_and_16_base32", `^ASIA[A-Z2-7]{16}$`, c.AccessKeyID},
		{"secret_is_40_base64_characters", `^[A-Za-z0-9+/]{40}$`, c.SecretAccessKey},
		{"session_token_has_sts_prefix", `^IQoJb3JpZ2luX2Vj[A-Za-z0-9+/]{296}$`, c.SessionToken},
		{"expiration_is_whole_seconds_six_hours_on", `^2026-03-01T18:00:00Z$`, c.Expiration.Format(time.RFC3339Nano)},
		{"last_updated_is_whole_seconds", `^2026-03-01T12:00:00Z$`, c.LastUpdated.Format(time.RFC3339Nano)},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if !regexp.MustCompile(tc.re).MatchString(tc.got) {
				t.Errorf("got %q, want match for %s", tc.got, tc.re)
			}
		})
	}
	t.Run("every_call_mints_new_keys", func(t *testing.T) {
		d, _ := l.Retrieve(context.Background(), Target{})
		if d.AccessKeyID == c.AccessKeyID || d.SecretAccessKey == c.SecretAccessKey || d.SessionToken == c.SessionToken {
			t.Error("second Retrieve repeated a key")
		}
	})
	t.Run("string_hides_secrets", func(t *testing.T) {
		for _, s := range []string{c.String(), c.GoString()} {
			if regexp.MustCompile(regexp.QuoteMeta(c.SecretAccessKey) + "|" + regexp.QuoteMeta(c.SessionToken)).MatchString(s) {
				t.Errorf("String() = %q shows a secret", s)
			}
		}
	})
}
