package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The IPv6 endpoint (on EC2, [fd00:ec2::254]) exists only for instances with
// HttpProtocolIpv6=enabled: before that, a request on it gets no answer at
// all; after ModifyInstanceMetadataOptions it serves the same tree.
func TestIPv6EndpointFollowsHttpProtocolIpv6(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional", "--listen-ipv6", "[::1]:0")
	if d.data6URL == "" {
		t.Fatal("no IPv6 data plane URL printed")
	}
	get := func() (int, string, error) {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(d.data6URL + "/latest/meta-data/instance-id")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	if status, body, err := get(); err == nil {
		t.Fatalf("IPv6 endpoint answered %d %q while HttpProtocolIpv6 is disabled; want no answer", status, body)
	}
	// The IPv4 endpoint is unaffected.
	if status, _, _ := d.do(t, "GET", "/latest/meta-data/instance-id", nil); status != 200 {
		t.Fatalf("IPv4 endpoint: %d", status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := apiFor(t, d.dataDir, d.apiURL)
	if _, err := c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(demoInstanceID), HttpProtocolIpv6: types.InstanceMetadataProtocolStateEnabled,
	}); err != nil {
		t.Fatal(err)
	}
	waitApplied(ctx, t, c, 2*time.Second, demoInstanceID)
	status, body, err := get()
	if err != nil || status != 200 || body != demoInstanceID {
		t.Fatalf("after enabling IPv6: %d %q %v", status, body, err)
	}
}
