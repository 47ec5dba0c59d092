package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// waitRoleCredentials polls the data plane (IMDSv2) until the role's
// credentials are served.
func waitRoleCredentials(t *testing.T, dataURL, role string) {
	t.Helper()
	client := imds.New(imds.Options{Endpoint: dataURL})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := client.GetMetadata(context.Background(), &imds.GetMetadataInput{Path: "iam/security-credentials/" + role})
		if err == nil {
			out.Content.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("role credentials not served within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
