// Package imdstest runs an EC2 Instance Metadata Service inside a Go test,
// in the spirit of net/http/httptest: frontdesk's own data plane (the same
// handler, metadata tree, token rules and bytes as the daemon), serving one
// instance on a loopback port, with an in-memory store, stopped when the
// test ends.
//
// A Server needs no root, no tools and no network beyond 127.0.0.1, and
// servers share nothing, so tests using them can run in parallel. It
// answers callers from 127.0.0.1 and ::1 as its instance; the instance's own
// address (meta-data/local-ipv4) is 192.0.2.10.
//
// What a new Server serves, unless options say otherwise: a random instance
// id, t3.micro in us-east-1a, the role DefaultRole with credentials lasting
// six hours, and IMDSv2 required (HttpTokens=required), which makes a
// tokenless request fail with 401, as it does on a hardened EC2 instance.
//
// Calls records every request, so a test can assert that the code under
// test uses IMDSv2 only. The controls change the instance while the test
// runs (metadata options, Spot interruption, rebalance recommendation,
// scheduled maintenance, Auto Scaling lifecycle state, throttling) and the
// role credentials (rotate, fail, recover). The server's clock stands still
// until Advance moves it, so token and credential expiry happen exactly when
// the test says.
//
// A complete test:
//
//	package app_test
//
//	import (
//		"context"
//		"io"
//		"net/http"
//		"testing"
//
//		"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
//		"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
//		"github.com/frontdesk-imds/frontdesk/imdstest"
//	)
//
//	func TestUsesIMDSv2Only(t *testing.T) {
//		s := imdstest.New(t, imdstest.WithRegion("eu-west-1"))
//		client := imds.New(imds.Options{Endpoint: s.URL()})
//
//		out, err := client.GetMetadata(context.Background(), &imds.GetMetadataInput{Path: "instance-id"})
//		if err != nil {
//			t.Fatal(err)
//		}
//		id, _ := io.ReadAll(out.Content)
//		if string(id) != s.InstanceID() {
//			t.Fatalf("instance id %q, want %q", id, s.InstanceID())
//		}
//		creds, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client }).Retrieve(context.Background())
//		if err != nil || creds.AccessKeyID != s.RoleCredentials().AccessKeyID {
//			t.Fatalf("role credentials: %v", err)
//		}
//		for _, c := range s.Calls() {
//			if c.Method != http.MethodPut && (!c.Token || c.Status != http.StatusOK) {
//				t.Errorf("%s %s: token %v, status %d", c.Method, c.Path, c.Token, c.Status)
//			}
//		}
//	}
//
// With config.LoadDefaultConfig, pass config.WithEC2IMDSEndpoint(s.URL());
// other languages' SDKs read AWS_EC2_METADATA_SERVICE_ENDPOINT (botocore
// wants a trailing slash). For code that is not written in Go, run the
// frontdesk binary instead: frontdesk serve --store memory --demo --listen
// 127.0.0.1:0 --api-listen 127.0.0.1:0 prints its addresses.
//
// The identity document's signatures (dynamic/instance-identity/signature,
// pkcs7, rsa2048) need signing keys, which take a few seconds to generate;
// a server makes them on the first request for a signature.
package imdstest
