package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// cmdDefaults is `frontdesk defaults …`: the account-level metadata
// defaults that new launches inherit when the request says nothing.
func cmdDefaults(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "defaults", args, map[string]subcommand{
		"get": {cmdDefaultsGet, "show the account-level instance metadata defaults"},
		"set": {cmdDefaultsSet, "change the account-level instance metadata defaults"},
	})
}

// defaultsView is `defaults get --json`: a setting left to the other
// sources (no-preference) is omitted, as GetInstanceMetadataDefaults does.
type defaultsView struct {
	HttpTokens           string `json:"httpTokens,omitempty"`
	HopLimit             *int32 `json:"httpPutResponseHopLimit,omitempty"`
	HttpEndpoint         string `json:"httpEndpoint,omitempty"`
	InstanceMetadataTags string `json:"instanceMetadataTags,omitempty"`
	HttpTokensEnforced   string `json:"httpTokensEnforced,omitempty"`
	ManagedBy            string `json:"managedBy,omitempty"`
}

func cmdDefaultsGet(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "defaults get", "frontdesk defaults get [--json]")
	asJSON := c.fs.Bool("json", false, "print JSON instead of a list")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	out, err := cl.EC2().GetInstanceMetadataDefaults(ctx, &ec2.GetInstanceMetadataDefaultsInput{})
	if err != nil {
		return fmt.Errorf("defaults get: %w", err)
	}
	var v defaultsView
	if a := out.AccountLevel; a != nil {
		v = defaultsView{
			HttpTokens:           string(a.HttpTokens),
			HopLimit:             a.HttpPutResponseHopLimit,
			HttpEndpoint:         string(a.HttpEndpoint),
			InstanceMetadataTags: string(a.InstanceMetadataTags),
			HttpTokensEnforced:   string(a.HttpTokensEnforced),
			ManagedBy:            string(a.ManagedBy),
		}
	}
	if *asJSON {
		return writeJSON(e.stdout, v)
	}
	orNone := func(s string) string {
		if s == "" {
			return "no-preference"
		}
		return s
	}
	hop := "no-preference"
	if v.HopLimit != nil {
		hop = strconv.Itoa(int(*v.HopLimit))
	}
	return table(e.stdout, [][]string{
		{"SETTING", "ACCOUNT DEFAULT"},
		{"http-tokens", orNone(v.HttpTokens)},
		{"hop-limit", hop},
		{"http-endpoint", orNone(v.HttpEndpoint)},
		{"instance-metadata-tags", orNone(v.InstanceMetadataTags)},
		{"http-tokens-enforced", orNone(v.HttpTokensEnforced)},
	})
}

func cmdDefaultsSet(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "defaults set", "frontdesk defaults set [--http-tokens required|optional|no-preference] [--hop-limit N|-1] [--http-endpoint enabled|disabled|no-preference] [--instance-metadata-tags enabled|disabled|no-preference] [--http-tokens-enforced enabled|disabled|no-preference]")
	tokens := c.fs.String("http-tokens", "", "default HttpTokens: required, optional or no-preference (clears it)")
	hop := c.fs.Int("hop-limit", 0, "default hop limit 1-64, or -1 for no preference")
	endpoint := c.fs.String("http-endpoint", "", "default HttpEndpoint: enabled, disabled or no-preference")
	tags := c.fs.String("instance-metadata-tags", "", "default InstanceMetadataTags: enabled, disabled or no-preference")
	enforced := c.fs.String("http-tokens-enforced", "", "refuse launches and changes that leave HttpTokens=optional: enabled, disabled or no-preference")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	set := c.set()
	in := &ec2.ModifyInstanceMetadataDefaultsInput{}
	checks := []struct {
		name, v string
		allowed []string
	}{
		{"http-tokens", *tokens, []string{"required", "optional", "no-preference"}},
		{"http-endpoint", *endpoint, []string{"enabled", "disabled", "no-preference"}},
		{"instance-metadata-tags", *tags, []string{"enabled", "disabled", "no-preference"}},
		{"http-tokens-enforced", *enforced, []string{"enabled", "disabled", "no-preference"}},
	}
	changed := false
	for _, ch := range checks {
		if set[ch.name] {
			if err := oneOf(ch.name, ch.v, ch.allowed...); err != nil {
				return err
			}
			changed = true
		}
	}
	if set["hop-limit"] {
		if *hop != -1 && (*hop < 1 || *hop > 64) {
			return usageErr("--hop-limit must be between 1 and 64, or -1 for no preference, not %d", *hop)
		}
		in.HttpPutResponseHopLimit = aws.Int32(int32(*hop))
		changed = true
	}
	if !changed {
		return usageErr("defaults set: nothing to change: give at least one flag")
	}
	in.HttpTokens = types.MetadataDefaultHttpTokensState(*tokens)
	in.HttpEndpoint = types.DefaultInstanceMetadataEndpointState(*endpoint)
	in.InstanceMetadataTags = types.DefaultInstanceMetadataTagsState(*tags)
	in.HttpTokensEnforced = types.DefaultHttpTokensEnforcedState(*enforced)
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	if _, err := cl.EC2().ModifyInstanceMetadataDefaults(ctx, in); err != nil {
		return fmt.Errorf("defaults set: %w", err)
	}
	fmt.Fprintln(e.stdout, "account defaults updated (new launches only; running instances keep theirs)")
	return nil
}
