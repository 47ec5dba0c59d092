package credentials

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// STS defaults.
const (
	DefaultSTSDuration = time.Hour
	DefaultSTSRegion   = "us-east-1"
)

// STSConfig configures an STS provider. Only RoleArn matters for most uses;
// the zero value of the rest works.
type STSConfig struct {
	// RoleArn is the role to assume; when empty, each target's RoleArn
	// (the instance profile's role) is assumed.
	RoleArn string
	// ExternalID is passed when set.
	ExternalID string
	// Duration is the session length; DefaultSTSDuration when zero.
	Duration time.Duration
	// Region is the STS region; the host's configured region, else
	// DefaultSTSRegion, when empty.
	Region string
	// Endpoint is an STS-compatible endpoint URL (VPC endpoint, tests).
	Endpoint string
	// SourceIdentity passes the instance id as the session's source
	// identity, which then follows the session through any role chaining.
	// The role's trust policy must allow sts:SetSourceIdentity.
	SourceIdentity bool

	// Credentials are the host's own identity; the SDK's default chain
	// (environment, shared files, SSO, web identity, container, IMDS) when
	// nil.
	Credentials aws.CredentialsProvider
	// HTTPClient replaces the SDK's default HTTP client when set.
	HTTPClient *http.Client
	// RetryMaxAttempts bounds the SDK's own retries of one call; the SDK's
	// default (3) when zero. The Refresher retries failed fetches anyway.
	RetryMaxAttempts int
	// Now is the clock for LastUpdated; time.Now when nil.
	Now func() time.Time
}

// STS gets real temporary credentials with AssumeRole, signed with the
// host's identity, as EC2 does for an instance profile. The role session
// name is the instance id, so CloudTrail shows which instance used the
// credentials rather than one session shared by every instance of a role.
type STS struct {
	client     *sts.Client
	roleArn    string
	externalID string
	duration   time.Duration
	sourceID   bool
	now        func() time.Time
}

// NewSTS loads the host's AWS configuration (no network calls) and returns
// the provider.
func NewSTS(ctx context.Context, cfg STSConfig) (*STS, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.RetryMaxAttempts > 0 {
		opts = append(opts, awsconfig.WithRetryMaxAttempts(cfg.RetryMaxAttempts))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws configuration: %w", err)
	}
	if ac.Region == "" {
		ac.Region = DefaultSTSRegion
	}
	s := &STS{
		client: sts.NewFromConfig(ac, func(o *sts.Options) {
			if cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Endpoint)
			}
		}),
		roleArn:    cfg.RoleArn,
		externalID: cfg.ExternalID,
		duration:   cfg.Duration,
		sourceID:   cfg.SourceIdentity,
		now:        cfg.Now,
	}
	if s.duration <= 0 {
		s.duration = DefaultSTSDuration
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Retrieve assumes the role for t's instance.
func (s *STS) Retrieve(ctx context.Context, t Target) (Credentials, error) {
	arn := s.roleArn
	if arn == "" {
		arn = t.RoleArn
	}
	if arn == "" {
		return Credentials{}, fmt.Errorf("assume role for %s: no role arn configured or known", t)
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(arn),
		RoleSessionName: aws.String(sessionName(t.InstanceID)),
		DurationSeconds: aws.Int32(int32(s.duration / time.Second)),
	}
	if s.externalID != "" {
		in.ExternalId = aws.String(s.externalID)
	}
	if s.sourceID {
		in.SourceIdentity = aws.String(sessionName(t.InstanceID))
	}
	out, err := s.client.AssumeRole(ctx, in)
	if err != nil {
		return Credentials{}, assumeRoleError(t, arn, err)
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return Credentials{}, fmt.Errorf("assume role %s for %s: response without credentials", arn, t.InstanceID)
	}
	return Credentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: *c.SecretAccessKey,
		SessionToken:    *c.SessionToken,
		Expiration:      c.Expiration.UTC().Truncate(time.Second),
		LastUpdated:     s.now().UTC().Truncate(time.Second),
	}, nil
}

// roleTroubleshooting is the page real IMDS points at when EC2 cannot
// assume a role (its exact message, two spaces included).
const roleTroubleshooting = "http://docs.amazonwebservices.com/IAM/latest/UserGuide/RolesTroubleshooting.html"

// assumeRoleError gives a refusal by IAM the Code and Message real IMDS
// serves for it; anything else (throttling, outages, network) stays an
// internal error whose detail only reaches the log.
func assumeRoleError(t Target, arn string, err error) error {
	err = fmt.Errorf("assume role %s for %s: %w", arn, t.InstanceID, err)
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied", "AccessDeniedException":
			return &Error{
				Code:    CodeAssumeRoleUnauthorized,
				Message: fmt.Sprintf("EC2 cannot assume the role %s.  Please see documentation at %s.", roleName(t), roleTroubleshooting),
				Err:     err,
			}
		}
	}
	return err
}

// sessionName fits an instance id to STS's rules for session names and
// source identities: 2 to 64 of [A-Za-z0-9+=,.@-].
func sessionName(id string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("+=,.@-_", r):
			return r
		}
		return '-'
	}, id)
	if len(name) > 64 {
		name = name[:64]
	}
	for len(name) < 2 {
		name += "-"
	}
	return name
}
