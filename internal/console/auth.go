package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
)

// Lifetimes of a login URL and of a session.
const (
	DefaultLoginTTL   = 10 * time.Minute
	DefaultSessionTTL = 12 * time.Hour
)

// The console authenticates with keys derived from the admin secret, one
// per purpose, so that a login token can never pass for a session or a
// CSRF token. Nothing is kept on the server: every node of a fleet (which
// shares the admin credentials) accepts a session made by another, and a
// restart logs nobody out. Rotating the admin secret ends every session.
func key(c controlplane.AdminCredentials, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(c.SecretAccessKey))
	m.Write([]byte("frontdesk-console/" + purpose + "/" + c.AccessKeyID))
	return m.Sum(nil)
}

func sign(k []byte, msg string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signed is "<payload>.<mac>"; payload is "<unix expiry>.<nonce>".
func mint(k []byte, exp time.Time) string {
	var n [12]byte
	_, _ = rand.Read(n[:])
	payload := strconv.FormatInt(exp.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(n[:])
	return payload + "." + sign(k, payload)
}

var errBadToken = errors.New("invalid or expired token")

func verify(k []byte, tok string, now time.Time) error {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return errBadToken
	}
	payload, mac := tok[:i], tok[i+1:]
	if subtle.ConstantTimeCompare([]byte(sign(k, payload)), []byte(mac)) != 1 {
		return errBadToken
	}
	exp, _, ok := strings.Cut(payload, ".")
	if !ok {
		return errBadToken
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(sec, 0)) {
		return errBadToken
	}
	return nil
}

// LoginToken returns a login token valid for ttl (DefaultLoginTTL if not
// positive), signed with the admin credentials.
func LoginToken(c controlplane.AdminCredentials, now time.Time, ttl time.Duration) string {
	if ttl <= 0 {
		ttl = DefaultLoginTTL
	}
	return mint(key(c, "login"), now.Add(ttl))
}

// LoginURL is the URL that opens the console at endpoint (the control
// plane's base URL) with a fresh login token.
func LoginURL(endpoint string, c controlplane.AdminCredentials, now time.Time, ttl time.Duration) string {
	return strings.TrimRight(endpoint, "/") + "/console/login?token=" + url.QueryEscape(LoginToken(c, now, ttl))
}

// csrfToken binds a CSRF token to one session.
func csrfToken(c controlplane.AdminCredentials, session string) string {
	return sign(key(c, "csrf"), session)
}

func checkSecret(c controlplane.AdminCredentials, id, secret string) bool {
	a := subtle.ConstantTimeCompare([]byte(id), []byte(c.AccessKeyID))
	b := subtle.ConstantTimeCompare([]byte(secret), []byte(c.SecretAccessKey))
	return a&b == 1 && c.AccessKeyID != ""
}

func subtleEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
