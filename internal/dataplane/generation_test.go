package dataplane

import (
	"context"
	"net/http"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// TestRelaunchRefusesTheOldLaunchsTokens bumps an instance's launch
// generation in the store, as a relaunch under the same id does, and
// expects a token minted before it refused and a new one accepted. The
// handler must mint and verify with the generation of the instance it
// serves now.
func TestRelaunchRefusesTheOldLaunchsTokens(t *testing.T) {
	p := newPlane(t, testInstance(idA, addrA, imds.Required))
	mint := func() string {
		t.Helper()
		resp := p.do(req{method: http.MethodPut, path: "/latest/api/token", from: addrA,
			headers: map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"}})
		if resp.StatusCode != 200 {
			t.Fatalf("token PUT: %d", resp.StatusCode)
		}
		return body(t, resp)
	}
	get := func(tok string) int {
		t.Helper()
		return p.do(req{path: "/latest/meta-data/instance-id", from: addrA,
			headers: map[string]string{"X-aws-ec2-metadata-token": tok}}).StatusCode
	}
	old := mint()
	if s := get(old); s != 200 {
		t.Fatalf("a fresh token: %d, want 200", s)
	}

	var gen uint64
	if err := p.store.Update(context.Background(), func(tx imds.Tx) error {
		in, err := imds.GetInstance(tx, idA)
		if err != nil {
			return err
		}
		in.Generation++
		gen = in.Generation
		return imds.PutInstance(tx, in)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := p.f.Snapshot().GuestByID(idA).Instance.Generation; g != gen {
		t.Fatalf("the snapshot serves generation %d, want %d", g, gen)
	}
	if s := get(old); s != 401 {
		t.Errorf("the previous launch's token: %d, want 401", s)
	}
	if s := get(mint()); s != 200 {
		t.Errorf("a token of the new launch: %d, want 200", s)
	}
}
