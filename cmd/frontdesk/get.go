package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// cmdGet is the guest-side client, like AWS's ec2-metadata tool: it does the
// IMDSv2 token flow through the AWS SDK's own IMDS client and prints one
// path's body.
func cmdGet(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "IMDS endpoint (default $AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254)")
	v1 := fs.Bool("allow-v1", false, "fall back to IMDSv1 when no token can be had (off: IMDSv2 only)")
	const synopsis = "frontdesk get [--endpoint URL] [--allow-v1] PATH"
	usage := func(w io.Writer) {
		printUsage(w, fs, synopsis, "Fetches one metadata path the way a guest does: a token first (IMDSv2), then the path.\nPATH is below /latest/, e.g. meta-data/instance-id, meta-data/, dynamic/instance-identity/document, user-data.")
	}
	if err := parseFlags(e, fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: errors.New("get: exactly one PATH is required (usage: " + synopsis + ")")}
	}
	ep := *endpoint
	if ep == "" {
		ep = e.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	}
	if ep == "" {
		ep = "http://169.254.169.254"
	}
	fallback := aws.FalseTernary
	if *v1 {
		fallback = aws.TrueTernary
	}
	client := imds.New(imds.Options{Endpoint: ep, EnableFallback: fallback})

	p := strings.TrimPrefix(strings.TrimPrefix(fs.Arg(0), "/"), "latest/")
	var body io.ReadCloser
	switch {
	case p == "meta-data" || strings.HasPrefix(p, "meta-data/"):
		out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: strings.TrimPrefix(strings.TrimPrefix(p, "meta-data"), "/")})
		if err != nil {
			return fmt.Errorf("get %s: %w", p, err)
		}
		body = out.Content
	case p == "dynamic" || strings.HasPrefix(p, "dynamic/"):
		out, err := client.GetDynamicData(ctx, &imds.GetDynamicDataInput{Path: strings.TrimPrefix(strings.TrimPrefix(p, "dynamic"), "/")})
		if err != nil {
			return fmt.Errorf("get %s: %w", p, err)
		}
		body = out.Content
	case p == "user-data":
		out, err := client.GetUserData(ctx, &imds.GetUserDataInput{})
		if err != nil {
			return fmt.Errorf("get %s: %w", p, err)
		}
		body = out.Content
	default:
		return &exitError{code: 2, err: fmt.Errorf("get: %q is not below meta-data/, dynamic/ or user-data", fs.Arg(0))}
	}
	defer body.Close()
	if _, err := io.Copy(e.stdout, body); err != nil {
		return err
	}
	// Bodies carry no trailing newline; add one for a terminal, as curl users do by hand.
	_, err := io.WriteString(e.stdout, "\n")
	return err
}
