package dataplane

import (
	"net/http"
	"time"
)

// Outcome says how a request was answered, for metrics and audit.
type Outcome uint8

// Outcomes.
const (
	OutcomeOther            Outcome = iota // 404s, 405s, bad input
	OutcomeServed                          // a metadata answer
	OutcomeTokenIssued                     // a token PUT succeeded
	OutcomeUnknownCaller                   // no instance at the source address
	OutcomeEndpointDisabled                // HttpEndpoint=disabled
	OutcomeForwarded                       // X-Forwarded-For on an IMDSv2 request
	OutcomeBadToken                        // invalid, expired or foreign token
	OutcomeNoTokenRejected                 // tokenless GET under HttpTokens=required
	OutcomeThrottled                       // over the instance's rate limit
)

var outcomeNames = [...]string{"other", "served", "token_issued", "unknown_caller", "endpoint_disabled", "forwarded", "bad_token", "no_token_rejected", "throttled"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "other"
}

// RequestEvent describes one answered request. It is passed by pointer and
// must not be kept after Request returns.
type RequestEvent struct {
	Method      string
	InstanceID  string // "" for unknown callers
	IMDSVersion int    // 1 tokenless, 2 token PUT or token-bearing GET, 0 unknown
	Status      int
	Outcome     Outcome
	Start       time.Time
	Duration    time.Duration
	// Delivery is set when role or identity credentials were handed out.
	Delivery *Delivery
	delivery Delivery // storage for Delivery, so that it costs no allocation
}

// Delivery records a credential hand-out: never the secret or session token.
type Delivery struct {
	Role        string // "" for the instance identity credentials
	AccessKeyID string
	Code        string
}

// Observer is told about every answered request (metrics, audit log). It
// runs on the request path, so it must be fast and must not block. r is nil
// for a request answered before HTTP parsing (a 429 from the listener's
// Guard: IMDSVersion 0, Outcome OutcomeThrottled).
type Observer interface {
	Request(r *http.Request, ev *RequestEvent)
}

type nopObserver struct{}

func (nopObserver) Request(*http.Request, *RequestEvent) {}
