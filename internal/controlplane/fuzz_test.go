package controlplane

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// FuzzParseRequest feeds arbitrary form bodies through parsing and every
// structured accessor the actions use: nothing may panic.
func FuzzParseRequest(f *testing.F) {
	f.Add("Action=RunInstances&NetworkInterface.1.PrivateIpAddresses.1.PrivateIpAddress=192.0.2.1&TagSpecification.1.Tag.1.Key=a")
	f.Add("Filter.1.Name=tag:x&Filter.1.Value.1=*&InstanceId.1=i-0123456789abcdef0&MaxResults=5&NextToken=ZmQxOmktMQ")
	f.Add("InstanceId.01=x&InstanceId.99999999999999999999=y&Tag..Key=&%zz")
	f.Fuzz(func(t *testing.T, body string) {
		r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/", RawQuery: body}, Header: http.Header{}}
		p, err := parseRequest(r, []byte(body))
		if err != nil {
			return
		}
		s := New(nil, AdminCredentials{}, Options{})
		_, _ = s.parseLaunch(p)
		_, _ = parseFilters(p, instanceFilters)
		_, _, _ = parsePaging(p, 5, 1000)
		_, _ = parseInstanceIDs(p)
		_, _ = parseTags(p, "Tag")
		_, _ = parseOptionsRequest(p)
		_, _ = resourceIDs(p)
		for _, k := range []string{"Filter", "NetworkInterface", "TagSpecification"} {
			items, _ := p.list(k)
			for _, it := range items {
				_, _ = it.strings("Value")
				_, _ = it.list("PrivateIpAddresses")
			}
		}
	})
}

// FuzzVerify sends arbitrary signature material, headers and bodies to the
// verifier: nothing may panic and nothing may authenticate without the
// secret.
func FuzzVerify(f *testing.F) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	good := "AWS4-HMAC-SHA256 Credential=" + testCreds.AccessKeyID + "/20250102/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + string(bytes.Repeat([]byte("a"), 64))
	f.Add(good, "20250102T030405Z", "application/x-www-form-urlencoded", "Action=DescribeInstances&Version=2016-11-15", "")
	f.Add("", "", "", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="+url.QueryEscape(testCreds.AccessKeyID+"/20250102/us-east-1/ec2/aws4_request")+"&X-Amz-Date=20250102T030405Z&X-Amz-SignedHeaders=host&X-Amz-Signature="+string(bytes.Repeat([]byte("0"), 64)))
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;, Signature=zz", "x", "", "", "X-Amz-Expires=-1")
	v := newVerifier(testCreds, "us-east-1", func() time.Time { return now })
	f.Fuzz(func(t *testing.T, auth, date, ctype, body, query string) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(body)))
		r.URL.RawQuery = query
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if err := v.verify(context.Background(), r, []byte(body)); err == nil {
			t.Fatalf("authenticated without the secret: auth=%q date=%q query=%q", auth, date, query)
		}
	})
}
