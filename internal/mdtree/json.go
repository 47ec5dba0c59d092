package mdtree

import (
	"time"
	"unicode/utf8"
)

// EC2 writes its JSON documents the way Jackson's default pretty printer does:
// one member per line, two-space indent, `"Key" : value`, arrays inline as
// `[ "a", "b" ]`, and no newline after the closing brace. Clients parse it,
// but BOTO uses some bodies verbatim, so the bytes are copied exactly.

// timeLayout is the only timestamp form IMDS uses in credentials: UTC, whole
// seconds. BOTO parses Expiration with exactly this layout.
const timeLayout = "2006-01-02T15:04:05Z"

// eventTimeLayout is the maintenance-event time form of the UG example
// ("21 Jan 2019 09:00:43 GMT", Java's Date.toGMTString).
const eventTimeLayout = "2 Jan 2006 15:04:05 GMT"

// formatTime renders t for credentials, iam/info and the identity document.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// object builds one pretty-printed JSON object.
type object struct {
	buf    []byte
	indent string // indent of the members; the braces get two spaces less
	n      int
}

func newObject(indent string) *object {
	return &object{buf: []byte("{\n"), indent: indent}
}

// raw adds a member whose value is already JSON.
func (o *object) raw(key, value string) {
	if o.n > 0 {
		o.buf = append(o.buf, ",\n"...)
	}
	o.n++
	o.buf = append(o.buf, o.indent...)
	o.buf = appendString(o.buf, key)
	o.buf = append(o.buf, " : "...)
	o.buf = append(o.buf, value...)
}

// str adds a string member.
func (o *object) str(key, value string) { o.raw(key, string(appendString(nil, value))) }

// strOrNull adds a string member, or null when the value is empty (the
// identity document's kernelId, ramdiskId, privateIp).
func (o *object) strOrNull(key, value string) {
	if value == "" {
		o.raw(key, "null")
		return
	}
	o.str(key, value)
}

// list adds an array of strings, or null when there are none.
func (o *object) list(key string, values []string) {
	if len(values) == 0 {
		o.raw(key, "null")
		return
	}
	b := []byte("[ ")
	for i, v := range values {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, v)
	}
	b = append(b, " ]"...)
	o.raw(key, string(b))
}

// bytes closes the object.
func (o *object) bytes() []byte {
	o.buf = append(o.buf, '\n')
	if len(o.indent) >= 2 {
		o.buf = append(o.buf, o.indent[2:]...)
	}
	return append(o.buf, '}')
}

// appendString appends s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone, as Jackson does; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Credentials are the values of iam/security-credentials/<role> and of
// identity-credentials/ec2/security-credentials/ec2-instance. The data plane
// fills them from its credential provider at request time.
type Credentials struct {
	// Code is "Success" when credentials are present; anything else renders
	// the failure form with Message.
	Code, Message           string
	LastUpdated, Expiration time.Time
	AccessKeyID             string
	SecretAccessKey, Token  string
}

// CredentialsJSON renders c in EC2's field order (docs/behaviour.md, "Credentials") (Code, LastUpdated, Type,
// AccessKeyId, SecretAccessKey, Token, Expiration). When Code is not
// "Success" it renders EC2's failure form {Code, Message, LastUpdated}, which
// SDKs read as an error rather than as empty credentials.
func CredentialsJSON(c Credentials) []byte {
	o := newObject("  ")
	if c.Code != "Success" {
		o.str("Code", c.Code)
		o.str("Message", c.Message)
		o.str("LastUpdated", formatTime(c.LastUpdated))
		return o.bytes()
	}
	o.str("Code", c.Code)
	o.str("LastUpdated", formatTime(c.LastUpdated))
	o.str("Type", "AWS-HMAC")
	o.str("AccessKeyId", c.AccessKeyID)
	o.str("SecretAccessKey", c.SecretAccessKey)
	o.str("Token", c.Token)
	o.str("Expiration", formatTime(c.Expiration))
	return o.bytes()
}

// IAMInfoJSON renders iam/info (docs/behaviour.md, "Credentials"). The data plane supplies code and
// lastUpdated because both follow the credential refresher's state.
func IAMInfoJSON(code string, lastUpdated time.Time, profileArn, profileID string) []byte {
	o := newObject("  ")
	o.str("Code", code)
	o.str("LastUpdated", formatTime(lastUpdated))
	o.str("InstanceProfileArn", profileArn)
	o.str("InstanceProfileId", profileID)
	return o.bytes()
}

// IdentityCredentialsInfoJSON renders identity-credentials/ec2/info (docs/behaviour.md, "Credentials").
func IdentityCredentialsInfoJSON(lastUpdated time.Time, accountID string) []byte {
	o := newObject("  ")
	o.str("Code", "Success")
	o.str("LastUpdated", formatTime(lastUpdated))
	o.str("AccountId", accountID)
	return o.bytes()
}
