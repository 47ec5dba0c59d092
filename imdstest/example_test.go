package imdstest_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/frontdesk-imds/frontdesk/imdstest"
)

// The SDK's IMDS client reads the instance id, over IMDSv2.
func Example() {
	// In a test: s := imdstest.New(t), and no Close.
	s, err := imdstest.Start(imdstest.WithInstanceID("i-0123456789abcdef0"), imdstest.WithRegion("eu-west-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	client := imds.New(imds.Options{Endpoint: s.URL()})
	out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if err != nil {
		log.Fatal(err)
	}
	id, _ := io.ReadAll(out.Content)
	region, err := client.GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(id), region.Region)

	for _, c := range s.Calls() {
		fmt.Println(c.Method, c.Path, c.Token, c.Status)
	}
	// Output:
	// i-0123456789abcdef0 eu-west-1
	// PUT /latest/api/token false 200
	// GET /latest/meta-data/instance-id true 200
	// GET /latest/dynamic/instance-identity/document true 200
}

// ec2rolecreds retrieves the instance role's credentials.
func Example_roleCredentials() {
	s, err := imdstest.Start(imdstest.WithRole("app-role"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	provider := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.New(imds.Options{Endpoint: s.URL()})
	})
	creds, err := provider.Retrieve(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(creds.Source, creds.AccessKeyID == s.RoleCredentials().AccessKeyID, creds.CanExpire)
	// Output: EC2RoleProvider true true
}

// The default credential chain finds the role's credentials through IMDS
// once its endpoint is set (and no other credentials are configured).
func Example_defaultCredentialChain() {
	s, err := imdstest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithEC2IMDSEndpoint(s.URL()), config.WithRegion("us-east-1"))
	if err != nil {
		log.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(creds.Source, creds.AccessKeyID == s.RoleCredentials().AccessKeyID)
	// Output: EC2RoleProvider true
}
