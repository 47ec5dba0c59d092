package controlplane

import (
	"context"
	"net/url"
	"strconv"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// This file is the control plane's action layer for callers inside the
// process (the web console, other integrations) that cannot sign SigV4
// requests: each method runs the very action function the EC2 Query API
// runs, with the same validation, the same single store transaction and the
// same OnRequest and OnChange reports, so a change made here is the change
// `aws ec2 ...` would have made.

// Principal is who asks for a change. ID is what OnChange and the audit
// trail record (an access key id, "console:AKIA..."); it is the caller's
// job to have authenticated it.
type Principal struct {
	ID string
}

// ActionError is an action's refusal, with EC2's error code and message
// (e.g. UnsupportedOperation when the account enforces IMDSv2).
type ActionError struct {
	Code    string
	Message string
}

func (e *ActionError) Error() string { return e.Code + ": " + e.Message }

// MetadataOptionsInput is ModifyInstanceMetadataOptions' input; an empty
// field (zero hop limit) leaves that option as it is.
type MetadataOptionsInput struct {
	InstanceID              string
	HttpTokens              string
	HttpEndpoint            string
	HttpProtocolIpv6        string
	InstanceMetadataTags    string
	HttpPutResponseHopLimit int
	// DryRun checks everything and changes nothing; it then answers an
	// ActionError with Code DryRunOperation, as EC2 does.
	DryRun bool
}

// ModifyMetadataOptions runs ModifyInstanceMetadataOptions for principal
// and returns the instance's resulting options.
func (s *Server) ModifyMetadataOptions(ctx context.Context, principal Principal, in MetadataOptionsInput) (imds.MetadataOptions, error) {
	v := url.Values{"InstanceId": {in.InstanceID}}
	setOpt(v, "HttpTokens", in.HttpTokens)
	setOpt(v, "HttpEndpoint", in.HttpEndpoint)
	setOpt(v, "HttpProtocolIpv6", in.HttpProtocolIpv6)
	setOpt(v, "InstanceMetadataTags", in.InstanceMetadataTags)
	if in.HttpPutResponseHopLimit != 0 {
		v.Set("HttpPutResponseHopLimit", strconv.Itoa(in.HttpPutResponseHopLimit))
	}
	if in.DryRun {
		v.Set("DryRun", "true")
	}
	resp, err := s.Invoke(ctx, principal, "ModifyInstanceMetadataOptions", v)
	if err != nil {
		return imds.MetadataOptions{}, err
	}
	r := resp.(*modifyOptionsResponse)
	o := r.Options
	return imds.MetadataOptions{HttpTokens: o.HttpTokens, HttpEndpoint: o.HttpEndpoint, HttpPutResponseHopLimit: o.HttpPutResponseHopLimit,
		HttpProtocolIPv6: o.HttpProtocolIpv6, InstanceMetadataTags: o.InstanceMetadataTags}, nil
}

// MetadataDefaultsInput is ModifyInstanceMetadataDefaults' input: an empty
// field is left as it is; imds.NoPreference clears a setting.
type MetadataDefaultsInput struct {
	HttpTokens           string
	HttpEndpoint         string
	InstanceMetadataTags string
	HttpTokensEnforced   string
	// HttpPutResponseHopLimit: nil leaves it, -1 clears it.
	HttpPutResponseHopLimit *int
	DryRun                  bool
}

// ModifyMetadataDefaults runs ModifyInstanceMetadataDefaults for principal.
func (s *Server) ModifyMetadataDefaults(ctx context.Context, principal Principal, in MetadataDefaultsInput) error {
	v := url.Values{}
	setOpt(v, "HttpTokens", in.HttpTokens)
	setOpt(v, "HttpEndpoint", in.HttpEndpoint)
	setOpt(v, "InstanceMetadataTags", in.InstanceMetadataTags)
	setOpt(v, "HttpTokensEnforced", in.HttpTokensEnforced)
	if in.HttpPutResponseHopLimit != nil {
		v.Set("HttpPutResponseHopLimit", strconv.Itoa(*in.HttpPutResponseHopLimit))
	}
	if in.DryRun {
		v.Set("DryRun", "true")
	}
	_, err := s.Invoke(ctx, principal, "ModifyInstanceMetadataDefaults", v)
	return err
}

// MetadataDefaults reads the account defaults (GetInstanceMetadataDefaults
// reads the same record).
func (s *Server) MetadataDefaults(ctx context.Context) (imds.AccountDefaults, error) {
	var d imds.AccountDefaults
	err := s.store.View(ctx, func(tx imds.Tx) error {
		var err error
		d, err = imds.GetDefaults(tx)
		return err
	})
	return d, err
}

// Invoke runs any control-plane action by its Query API name with its
// Query API parameters (without Action and Version), for principal, and
// returns the action's answer (the value the Query API would encode as
// XML). Errors are *ActionError for a refusal, or the store's error.
func (s *Server) Invoke(ctx context.Context, principal Principal, action string, params url.Values) (any, error) {
	fn, ok := s.actions[action]
	if !ok {
		return nil, &ActionError{Code: "InvalidAction", Message: "The action " + action + " is not valid for this web service."}
	}
	rec := &changeRecord{}
	ctx = context.WithValue(ctx, changeKey{}, rec)
	resp, err := fn(ctx, newParams(params))
	if err != nil {
		ae := toAPIError(err)
		if s.opts.Observer != nil {
			s.opts.Observer.Request(action, ae.Code)
		}
		s.log.Info("console action failed", "action", action, "principal", principal.ID, "code", ae.Code, "err", err)
		if ae.Status < 500 {
			return nil, &ActionError{Code: ae.Code, Message: ae.Message}
		}
		return nil, err
	}
	if s.opts.Observer != nil {
		s.opts.Observer.Request(action, "")
	}
	s.log.Info("console action", "action", action, "principal", principal.ID)
	if rec.changed && s.opts.Observer != nil {
		s.opts.Observer.Change(principal.ID, action, rec.instanceIDs, rec.detail)
	}
	return resp, nil
}

func setOpt(v url.Values, k, val string) {
	if val != "" {
		v.Set(k, val)
	}
}
