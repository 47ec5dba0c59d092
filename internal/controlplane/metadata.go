package controlplane

import (
	"context"
	"strconv"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

type modifyOptionsResponse struct {
	respMeta
	InstanceID string             `xml:"instanceId"`
	Options    xmlMetadataOptions `xml:"instanceMetadataOptions"`
}

// modifyInstanceMetadataOptions changes the given options and keeps the
// others (EC2's semantics). The answer always says "pending";
// DescribeInstances says "applied" once the data plane has the change.
//
// Two refusals go beyond what EC2 documents and are frontdesk's choices:
//   - with HttpTokensEnforced=enabled, any modification whose result leaves
//     HttpTokens=optional is refused (UnsupportedOperation), not only one that
//     sets optional; include HttpTokens=required to fix a legacy instance.
//   - enabling InstanceMetadataTags on an instance that has a tag key the
//     metadata tree cannot serve is refused with InvalidParameterValue
//     naming the key (EC2's behaviour here is undocumented).
func (s *Server) modifyInstanceMetadataOptions(ctx context.Context, p params) (response, error) {
	dry, id, err := dryRunAndInstanceID(p)
	if err != nil {
		return nil, err
	}
	req, err := parseOptionsRequest(p)
	if err != nil {
		return nil, err
	}
	var result imds.MetadataOptions
	err = s.modifyLive(ctx, dry, id, func(tx imds.Tx, in *imds.Instance) error {
		acct, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		o := in.MetadataOptions.Apply(req)
		if err := acct.Enforce(o); err != nil {
			return errTokensEnforced()
		}
		if o.InstanceMetadataTags == imds.Enabled {
			if err := checkMetadataTagKeys(in.Tags); err != nil {
				return err
			}
		}
		in.MetadataOptions = o
		in.OptionsRevision = tx.Revision() + 1
		result = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, optionsDetail(p, "HttpTokens", "HttpEndpoint", "HttpProtocolIpv6", "InstanceMetadataTags", "HttpPutResponseHopLimit"))
	return &modifyOptionsResponse{InstanceID: id, Options: optionsXML(result, imds.OptionsPending)}, nil
}

type xmlAccountDefaults struct {
	HttpTokens              string `xml:"httpTokens,omitempty"`
	HttpPutResponseHopLimit *int   `xml:"httpPutResponseHopLimit,omitempty"`
	HttpEndpoint            string `xml:"httpEndpoint,omitempty"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags,omitempty"`
	HttpTokensEnforced      string `xml:"httpTokensEnforced,omitempty"`
	ManagedBy               string `xml:"managedBy"`
}

type getDefaultsResponse struct {
	respMeta
	AccountLevel xmlAccountDefaults `xml:"accountLevel"`
}

// getInstanceMetadataDefaults shows the account-level defaults; a setting
// with no preference is left out, as EC2 does.
func (s *Server) getInstanceMetadataDefaults(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	if dry {
		return nil, errDryRun
	}
	var d imds.AccountDefaults
	if err := s.store.View(ctx, func(tx imds.Tx) error {
		var err error
		d, err = imds.GetDefaults(tx)
		return err
	}); err != nil {
		return nil, err
	}
	pref := func(v string) string {
		if v == imds.NoPreference {
			return ""
		}
		return v
	}
	x := xmlAccountDefaults{
		HttpTokens:           pref(d.HttpTokens),
		HttpEndpoint:         pref(d.HttpEndpoint),
		InstanceMetadataTags: pref(d.InstanceMetadataTags),
		HttpTokensEnforced:   pref(d.HttpTokensEnforced),
		ManagedBy:            "account",
	}
	if d.HttpPutResponseHopLimit > 0 {
		h := d.HttpPutResponseHopLimit
		x.HttpPutResponseHopLimit = &h
	}
	return &getDefaultsResponse{AccountLevel: x}, nil
}

// modifyInstanceMetadataDefaults changes the given account defaults and
// keeps the others; no-preference (or hop limit -1) clears a setting.
// Existing instances are not changed, as on EC2.
func (s *Server) modifyInstanceMetadataDefaults(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	tokens, err := p.enumOpt("HttpTokens", imds.Optional, imds.Required, imds.NoPreference)
	if err != nil {
		return nil, err
	}
	endpoint, err := p.enumOpt("HttpEndpoint", imds.Enabled, imds.Disabled, imds.NoPreference)
	if err != nil {
		return nil, err
	}
	tags, err := p.enumOpt("InstanceMetadataTags", imds.Enabled, imds.Disabled, imds.NoPreference)
	if err != nil {
		return nil, err
	}
	enforced, err := p.enumOpt("HttpTokensEnforced", imds.Enabled, imds.Disabled, imds.NoPreference)
	if err != nil {
		return nil, err
	}
	hop, err := p.intOpt("HttpPutResponseHopLimit")
	if err != nil {
		return nil, err
	}
	if hop != nil && *hop != imds.HopLimitNoPreference && (*hop < 1 || *hop > imds.MaxHopLimit) {
		return nil, errInvalid("Invalid value '" + strconv.Itoa(*hop) + "' for HttpPutResponseHopLimit. Valid values: 1-64, or -1 for no preference.")
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		d, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&d.HttpTokens, tokens)
		set(&d.HttpEndpoint, endpoint)
		set(&d.InstanceMetadataTags, tags)
		set(&d.HttpTokensEnforced, enforced)
		if hop != nil {
			d.HttpPutResponseHopLimit = *hop
		}
		return imds.PutDefaults(tx, d)
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, nil, optionsDetail(p, "HttpTokens", "HttpEndpoint", "InstanceMetadataTags", "HttpTokensEnforced", "HttpPutResponseHopLimit"))
	return &returnResponse{Return: true}, nil
}

// optionsDetail is the OnChange detail of a metadata-options change: the
// settings the request gave, as given.
func optionsDetail(p params, keys ...string) map[string]string {
	d := map[string]string{}
	for _, k := range keys {
		if v, ok := p.get(k); ok {
			d[k] = v
		}
	}
	return d
}
