package controlplane

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// apiError is an EC2 error: the code and message clients see. Handlers build
// them for everything the caller got wrong; anything else is mapped by
// toAPIError, the one place that turns an error into what the client sees.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newAPIError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

func errMissing(param string) *apiError {
	return newAPIError(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter "+param+".")
}

func errInvalid(msg string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidParameterValue", msg)
}

func errCombination(msg string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidParameterCombination", msg)
}

func errInstanceNotFound(ids ...string) *apiError {
	if len(ids) == 1 {
		return newAPIError(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '"+ids[0]+"' does not exist")
	}
	return newAPIError(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance IDs '"+strings.Join(ids, ", ")+"' do not exist")
}

func errInstanceMalformed(id string) *apiError {
	return errMalformedID("InvalidInstanceID.Malformed", id, "i")
}

// errMalformedID is EC2's answer to an id that cannot be of its kind
// (prefix "vpc" for vpc-..., "i" for i-...).
func errMalformedID(code, id, prefix string) *apiError {
	return newAPIError(http.StatusBadRequest, code, "Invalid id: \""+id+"\" (expecting \""+prefix+"-...\")")
}

func errIncorrectState(id, state string) *apiError {
	return newAPIError(http.StatusBadRequest, "IncorrectInstanceState", "The instance '"+id+"' is not in a state from which the operation can be performed (it is "+state+").")
}

func errAddressInUse(addr string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidIPAddress.InUse", "Address "+addr+" is in use.")
}

// errTokensEnforced is EC2's answer when the account enforces IMDSv2. AWS
// documents UnsupportedOperation for a modification that would enable IMDSv1
// (User Guide, "Modify instance metadata options for existing instances");
// frontdesk uses the same code for a launch that would.
func errTokensEnforced() *apiError {
	return newAPIError(http.StatusBadRequest, "UnsupportedOperation", "The account enforces IMDSv2 (HttpTokensEnforced=enabled): HttpTokens must be required.")
}

var (
	errAuthMissing = newAPIError(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
	errAuthKey     = newAPIError(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
	errAuthScope   = newAPIError(http.StatusUnauthorized, "AuthFailure", "Credential should be scoped to a valid region and to the ec2 service.")
	errIncomplete  = newAPIError(http.StatusBadRequest, "IncompleteSignature", "The request signature does not conform to AWS standards.")
	errSignature   = newAPIError(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	errExpired     = newAPIError(http.StatusBadRequest, "RequestExpired", "Request has expired.")
	errTooLarge    = newAPIError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is larger than the control plane accepts.")
	errDryRun      = newAPIError(http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	errInternal    = newAPIError(http.StatusInternalServerError, "InternalError", "An internal error has occurred.")
	errUnavailable = newAPIError(http.StatusServiceUnavailable, "Unavailable", "The service is unavailable. Please try again shortly.")
)

// toAPIError maps any error to what the client sees. Domain errors that the
// handlers did not already translate get a fixed message; the detail is only
// logged by the caller.
func toAPIError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, imds.ErrAddressInUse):
		return newAPIError(http.StatusBadRequest, "InvalidIPAddress.InUse", "An address of the instance is already in use.")
	case errors.Is(err, imds.ErrTokensEnforced):
		return errTokensEnforced()
	case errors.Is(err, imds.ErrInvalid):
		// Domain validation messages name the field and the offending value,
		// never a secret.
		return errInvalid(strings.TrimPrefix(err.Error(), imds.ErrInvalid.Error()+": "))
	case errors.Is(err, imds.ErrUnavailable), errors.Is(err, imds.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errUnavailable
	default:
		return errInternal
	}
}
