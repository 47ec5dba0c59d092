package controlplane

import (
	"errors"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// The action layer runs the Query API's own action: same store change, same
// refusals, same hooks, with the caller's principal.
func TestActionLayerRunsTheQueryAPIsAction(t *testing.T) {
	h := &hookRecorder{}
	e := newEnv(t, h.install)
	id := *e.launch("192.0.2.10", nil).InstanceId
	ctx := t.Context()
	who := Principal{ID: "console:AKIAEXAMPLE"}
	if _, err := e.srv.ModifyMetadataOptions(ctx, who, MetadataOptionsInput{InstanceID: id, HttpTokens: imds.Optional}); err != nil {
		t.Fatal(err)
	}
	h.take()

	if _, err := e.srv.ModifyMetadataOptions(ctx, who, MetadataOptionsInput{InstanceID: id, HttpTokens: imds.Required, DryRun: true}); !isCode(err, "DryRunOperation") {
		t.Fatalf("dry run = %v, want DryRunOperation", err)
	}
	if got := e.stored(id).MetadataOptions.HttpTokens; got != imds.Optional {
		t.Fatalf("a dry run changed HttpTokens to %s", got)
	}
	o, err := e.srv.ModifyMetadataOptions(ctx, who, MetadataOptionsInput{InstanceID: id, HttpTokens: imds.Required})
	if err != nil || o.HttpTokens != imds.Required || e.stored(id).MetadataOptions.HttpTokens != imds.Required {
		t.Fatalf("require: %+v, %v; stored %s", o, err, e.stored(id).MetadataOptions.HttpTokens)
	}
	reqs, changes := h.take()
	if len(changes) != 1 || changes[0].key != who.ID || changes[0].action != "ModifyInstanceMetadataOptions" || changes[0].ids[0] != id || changes[0].detail["HttpTokens"] != imds.Required {
		t.Errorf("OnChange saw %+v, want one change by %s", changes, who.ID)
	}
	if len(reqs) != 2 || reqs[0].code != "DryRunOperation" || reqs[1].code != "" {
		t.Errorf("OnRequest saw %+v", reqs)
	}

	if err := e.srv.ModifyMetadataDefaults(ctx, who, MetadataDefaultsInput{HttpTokens: imds.Required, HttpTokensEnforced: imds.Enabled}); err != nil {
		t.Fatal(err)
	}
	if d, err := e.srv.MetadataDefaults(ctx); err != nil || d.HttpTokensEnforced != imds.Enabled {
		t.Fatalf("defaults %+v, %v", d, err)
	}
	if _, err := e.srv.ModifyMetadataOptions(ctx, who, MetadataOptionsInput{InstanceID: id, HttpTokens: imds.Optional}); !isCode(err, "UnsupportedOperation") {
		t.Errorf("optional under enforcement = %v, want UnsupportedOperation as the Query API answers", err)
	}
	if _, err := e.srv.ModifyMetadataOptions(ctx, who, MetadataOptionsInput{InstanceID: "i-0000000000000dead"}); !isCode(err, "InvalidInstanceID.NotFound") {
		t.Errorf("unknown instance = %v", err)
	}
}

func isCode(err error, code string) bool {
	var ae *ActionError
	return errors.As(err, &ae) && ae.Code == code
}
