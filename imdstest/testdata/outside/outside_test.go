// Package outside is a module of its own that uses imdstest the way a
// project outside frontdesk does: through its public import path only.
// imdstest's integration test copies it to a temporary directory, points
// a replace directive at the checkout and runs it.
package outside

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/frontdesk-imds/frontdesk/imdstest"
)

func TestFirstServer(t *testing.T)  { t.Parallel(); check(t) }
func TestSecondServer(t *testing.T) { t.Parallel(); check(t) }

func check(t *testing.T) {
	s := imdstest.New(t)
	other := imdstest.New(t)
	ctx := context.Background()
	client := imds.New(imds.Options{Endpoint: s.URL()})

	out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := io.ReadAll(out.Content)
	if string(id) != s.InstanceID() {
		t.Fatalf("instance id %q, want %q", id, s.InstanceID())
	}
	creds, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client }).Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID == "" || creds.AccessKeyID != s.RoleCredentials().AccessKeyID {
		t.Fatalf("role credentials %q, server serves %q", creds.AccessKeyID, s.RoleCredentials().AccessKeyID)
	}
	calls := s.Calls()
	var metadata int
	for _, c := range calls {
		if c.Method == http.MethodPut && c.Path == "/latest/api/token" {
			continue
		}
		metadata++
		if !c.Token || c.Status != http.StatusOK {
			t.Errorf("%s %s: token %v, status %d", c.Method, c.Path, c.Token, c.Status)
		}
	}
	if metadata < 3 { // instance-id, the role listing, the role's credentials
		t.Fatalf("only %d metadata calls recorded: %+v", metadata, calls)
	}
	if n := len(other.Calls()); n != 0 {
		t.Fatalf("the second server recorded %d calls: %+v", n, other.Calls())
	}
	t.Logf("%s: %d calls, all IMDSv2, none on %s", s.InstanceID(), len(calls), other.InstanceID())
}
