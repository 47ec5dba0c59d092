package credentials

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CodeSuccess is the Code of an entry whose credentials are valid, spelled as
// IMDS spells it.
const CodeSuccess = "Success"

// Codes frontdesk sets on entries that carry no valid credentials. The first
// is the one real IMDS uses when EC2 may not assume the role; the others are
// frontdesk's own, in the same style, since EC2 documents no other codes.
const (
	CodeAssumeRoleUnauthorized = "AssumeRoleUnauthorizedAccess"
	CodeInternalError          = "InternalError"
	CodeNoProvider             = "NoCredentialProvider"
)

// Credentials are one set of temporary credentials. Expiration and
// LastUpdated are whole seconds in UTC, because botocore parses the served
// timestamps strictly as YYYY-MM-DDTHH:MM:SSZ.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	LastUpdated     time.Time
}

// Valid reports whether the credentials are present and unexpired at now.
func (c Credentials) Valid(now time.Time) bool {
	return c.AccessKeyID != "" && now.Before(c.Expiration)
}

func (c Credentials) equal(o Credentials) bool {
	return c.AccessKeyID == o.AccessKeyID && c.SecretAccessKey == o.SecretAccessKey &&
		c.SessionToken == o.SessionToken && c.Expiration.Equal(o.Expiration)
}

// String hides the secret parts, so credentials that reach a log line or a
// %v by accident give nothing away.
func (c Credentials) String() string {
	return fmt.Sprintf("{AccessKeyID:%s Expiration:%s}", c.AccessKeyID, c.Expiration.Format(time.RFC3339))
}

// GoString hides the secret parts from %#v too.
func (c Credentials) GoString() string { return c.String() }

// Entry is what the data plane renders for one (instance, role).
type Entry struct {
	// Credentials are zero when none are valid.
	Credentials Credentials
	// Code is CodeSuccess when Credentials are valid; otherwise an EC2-style
	// code, with Message explaining it (as IMDS does when a role cannot be
	// assumed).
	Code, Message string
	// LastUpdated is when this entry last changed: iam/info's LastUpdated
	// for a failed entry, which has no credentials to take it from.
	LastUpdated time.Time
	// Version changes whenever the entry changes, so the data plane can
	// cache the JSON it renders from an entry by Version.
	Version uint64
}

// Target is one set of credentials to keep fresh.
type Target struct {
	InstanceID string
	AccountID  string
	// Role is the instance profile's role name. (Instance-identity
	// credentials are not refreshed: Identity derives them on request.)
	Role string
	// RoleArn is the role's ARN. The STS provider assumes it unless its configuration names a role.
	RoleArn string
}

func (t Target) String() string { return t.InstanceID + " " + t.Role }

// Provider fetches fresh credentials for a target. Retrieve may block on the
// network; only the Refresher calls it, never a request.
type Provider interface {
	Retrieve(ctx context.Context, t Target) (Credentials, error)
}

// Poller is implemented by providers whose source can change before the
// credentials they returned expire (a file an operator edits). The Refresher
// retrieves again at least every PollInterval.
type Poller interface {
	PollInterval() time.Duration
}

// Resolver picks the provider for a role name; nil means no provider is
// configured, which the Refresher reports in the entry's Code.
type Resolver func(role string) Provider

// Error is a failure with an EC2-style Code and Message that may be shown to
// a guest. Err is the detail, for logs only.
type Error struct {
	Code, Message string
	Err           error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownTarget is returned by Wait for a target that is not in the
// desired set (never added, or removed).
var ErrUnknownTarget = errors.New("unknown credentials target")

// publicError turns any provider error into the Code and Message a guest may
// see. Errors that are not an *Error get a fixed message, so upstream detail
// (which can name accounts and policies) stays in the log.
func publicError(t Target, err error) (code, msg string) {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code, e.Message
	}
	return CodeInternalError, fmt.Sprintf("An internal error occurred while retrieving credentials for role %s.", roleName(t))
}

func roleName(t Target) string {
	if t.Role == "" {
		return "ec2-instance"
	}
	return t.Role
}
