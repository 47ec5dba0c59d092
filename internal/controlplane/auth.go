package controlplane

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	amzDateFormat = "20060102T150405Z"
	// maxClockSkew is how far X-Amz-Date may be from our clock, as on AWS.
	maxClockSkew = 5 * time.Minute
	// maxPresignExpiry is SigV4's upper bound on X-Amz-Expires (7 days).
	maxPresignExpiry = 7 * 24 * time.Hour
	signingService   = "ec2"
)

// verifier checks SigV4 signatures. It does not reimplement the signature
// arithmetic: it rebuilds a copy of the request holding only what the client
// claims to have signed, signs that copy with the AWS SDK's signer using the
// claimed date, region and service, and compares the signatures in constant
// time.
type verifier struct {
	creds  AdminCredentials
	region string
	now    func() time.Time
	signer *v4.Signer
}

func newVerifier(creds AdminCredentials, region string, now func() time.Time) *verifier {
	return &verifier{
		creds:  creds,
		region: region,
		now:    now,
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true }),
	}
}

// sigRequest is what a client claims about its signature.
type sigRequest struct {
	accessKeyID   string
	date          string // yyyymmdd of the credential scope
	region        string
	service       string
	signedHeaders []string
	signature     string
	at            time.Time
	expires       time.Duration // presigned only; 0 = not given
	presigned     bool
}

// verify returns nil when r (whose body has already been read into body)
// carries a valid signature by the admin credentials.
func (v *verifier) verify(ctx context.Context, r *http.Request, body []byte) *apiError {
	sr, err := v.claim(r)
	if err != nil {
		return err
	}
	return v.check(ctx, r, body, sr)
}

// claim checks everything about a signature that the request head alone
// tells (the access key is the admin key, the scope is this region and
// service, the date is within the allowed skew), so that a request that
// cannot be authentic is refused before its body is read.
func (v *verifier) claim(r *http.Request) (sigRequest, *apiError) {
	var (
		sr  sigRequest
		err *apiError
	)
	q := r.URL.Query()
	switch {
	case r.Header.Get("Authorization") != "":
		sr, err = parseAuthorizationHeader(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"))
	case q.Get("X-Amz-Signature") != "" || q.Get("X-Amz-Algorithm") != "":
		sr, err = parsePresignedQuery(q)
	default:
		return sr, errAuthMissing
	}
	if err != nil {
		return sr, err
	}
	if !v.creds.valid() || subtle.ConstantTimeCompare([]byte(sr.accessKeyID), []byte(v.creds.AccessKeyID)) != 1 {
		return sr, errAuthKey
	}
	if sr.region != v.region || sr.service != signingService {
		return sr, errAuthScope
	}
	if sr.date != sr.at.Format("20060102") {
		return sr, errSignature
	}
	now := v.now()
	if sr.presigned && sr.expires > 0 {
		if now.Before(sr.at.Add(-maxClockSkew)) || now.After(sr.at.Add(sr.expires)) {
			return sr, errExpired
		}
	} else if d := now.Sub(sr.at); d > maxClockSkew || d < -maxClockSkew {
		return sr, errExpired
	}
	return sr, nil
}

// check verifies the signature of a request whose claim passed, over its
// body.
func (v *verifier) check(ctx context.Context, r *http.Request, body []byte, sr sigRequest) *apiError {
	want, ok := v.sign(ctx, r, body, sr)
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(sr.signature)) != 1 {
		return errSignature
	}
	return nil
}

// sign computes the signature of the claimed request. ok is false when the
// signer fails, which can only mean the request is unusable.
func (v *verifier) sign(ctx context.Context, r *http.Request, body []byte, sr sigRequest) (string, bool) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if sr.presigned {
		q := r.URL.Query()
		q.Del("X-Amz-Signature")
		u.RawQuery = q.Encode()
	}
	cp := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}}
	for _, h := range sr.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			cp.ContentLength = int64(len(body))
		default:
			key := textproto.CanonicalMIMEHeaderKey(h)
			if vals, ok := r.Header[key]; ok {
				cp.Header[key] = append([]string(nil), vals...)
			}
		}
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	creds := aws.Credentials{AccessKeyID: v.creds.AccessKeyID, SecretAccessKey: v.creds.SecretAccessKey}
	if sr.presigned {
		signed, _, err := v.signer.PresignHTTP(ctx, creds, cp, payloadHash, sr.service, sr.region, sr.at)
		if err != nil {
			return "", false
		}
		su, err := url.Parse(signed)
		if err != nil {
			return "", false
		}
		return su.Query().Get("X-Amz-Signature"), true
	}
	if err := v.signer.SignHTTP(ctx, creds, cp, payloadHash, sr.service, sr.region, sr.at); err != nil {
		return "", false
	}
	got, err := parseAuthorizationHeader(cp.Header.Get("Authorization"), cp.Header.Get("X-Amz-Date"))
	if err != nil {
		return "", false
	}
	if strings.Join(got.signedHeaders, ";") != strings.Join(sr.signedHeaders, ";") {
		// The client signed a header the SDK signer never signs (or omitted
		// one it always signs): the signatures cannot agree.
		return "", false
	}
	return got.signature, true
}

// parseAuthorizationHeader reads
// "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex".
func parseAuthorizationHeader(auth, amzDate string) (sigRequest, *apiError) {
	alg, rest, ok := strings.Cut(strings.TrimSpace(auth), " ")
	if !ok || alg != sigAlgorithm {
		return sigRequest{}, errIncomplete
	}
	var cred, signed, sig string
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sigRequest{}, errIncomplete
		}
		switch k {
		case "Credential":
			cred = val
		case "SignedHeaders":
			signed = val
		case "Signature":
			sig = val
		default:
			return sigRequest{}, errIncomplete
		}
	}
	if amzDate == "" {
		return sigRequest{}, errIncomplete
	}
	return buildSigRequest(cred, signed, sig, amzDate)
}

// parsePresignedQuery reads the X-Amz-* query parameters of a presigned URL.
func parsePresignedQuery(q url.Values) (sigRequest, *apiError) {
	if q.Get("X-Amz-Algorithm") != sigAlgorithm {
		return sigRequest{}, errIncomplete
	}
	sr, err := buildSigRequest(q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature"), q.Get("X-Amz-Date"))
	if err != nil {
		return sigRequest{}, err
	}
	sr.presigned = true
	if e := q.Get("X-Amz-Expires"); e != "" {
		n, perr := strconv.Atoi(e)
		if perr != nil || n < 1 || time.Duration(n)*time.Second > maxPresignExpiry {
			return sigRequest{}, errIncomplete
		}
		sr.expires = time.Duration(n) * time.Second
	}
	return sr, nil
}

func buildSigRequest(cred, signed, sig, amzDate string) (sigRequest, *apiError) {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return sigRequest{}, errIncomplete
	}
	if signed == "" || len(sig) != 64 {
		return sigRequest{}, errIncomplete
	}
	if _, err := hex.DecodeString(sig); err != nil {
		return sigRequest{}, errIncomplete
	}
	headers := strings.Split(signed, ";")
	hasHost := false
	for _, h := range headers {
		if h == "" || h != strings.ToLower(h) {
			return sigRequest{}, errIncomplete
		}
		if h == "host" {
			hasHost = true
		}
	}
	if !hasHost {
		return sigRequest{}, errIncomplete
	}
	at, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return sigRequest{}, errIncomplete
	}
	return sigRequest{
		accessKeyID:   parts[0],
		date:          parts[1],
		region:        parts[2],
		service:       parts[3],
		signedHeaders: headers,
		signature:     strings.ToLower(sig),
		at:            at.UTC(),
	}, nil
}
