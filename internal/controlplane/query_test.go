package controlplane

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// call sends a signed form POST and returns status, body.
func (e *env) call(form string) (int, string) {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(signedPost(e.t, e.url, form, testCreds, "us-east-1", time.Now(), true))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func errorOf(t *testing.T, body string) (string, string) {
	t.Helper()
	var er struct {
		Code    string `xml:"Errors>Error>Code"`
		Message string `xml:"Errors>Error>Message"`
	}
	if err := xml.Unmarshal([]byte(body), &er); err != nil {
		t.Fatalf("not an error document: %s", body)
	}
	return er.Code, er.Message
}

func TestQueryProtocolErrors(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, form, wantCode, wantMsg string
	}{
		{"unknown_action", "Action=LaunchRockets&Version=2016-11-15", "InvalidAction", "LaunchRockets"},
		{"missing_action", "Version=2016-11-15", "MissingParameter", "Action"},
		{"missing_version", "Action=DescribeInstances", "MissingParameter", "Version"},
		{"other_version", "Action=DescribeInstances&Version=2014-10-01", "NoSuchVersion", "2014-10-01"},
		{"create_tags_without_resources", "Action=CreateTags&Version=2016-11-15&Tag.1.Key=k", "MissingParameter", "ResourceId"},
		{"create_tags_without_tags", "Action=CreateTags&Version=2016-11-15&ResourceId.1=i-0123456789abcdef0", "MissingParameter", "Tag.1.Key"},
		{"bad_list_index", "Action=DescribeInstances&Version=2016-11-15&InstanceId.x=i-0123456789abcdef0", "InvalidParameterValue", "InstanceId"},
		{"bad_integer", "Action=DescribeInstances&Version=2016-11-15&MaxResults=ten", "InvalidParameterValue", "MaxResults"},
		{"bad_boolean", "Action=DescribeInstances&Version=2016-11-15&DryRun=perhaps", "InvalidParameterValue", "DryRun"},
		{"filter_without_value", "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-id", "InvalidParameterValue", "instance-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.call(tt.form)
			c, msg := errorOf(t, body)
			if status != http.StatusBadRequest || c != tt.wantCode || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("got %d %s %q, want 400 %s mentioning %q", status, c, msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestSuccessfulAnswerIsNamespacedXMLWithRequestID(t *testing.T) {
	e := newEnv(t, nil)
	status, body := e.call("Action=GetInstanceMetadataDefaults&Version=2016-11-15")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var doc struct {
		XMLName   xml.Name
		RequestID string `xml:"requestId"`
	}
	if err := xml.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.XMLName.Local != "GetInstanceMetadataDefaultsResponse" || doc.XMLName.Space != "http://ec2.amazonaws.com/doc/2016-11-15/" || len(doc.RequestID) != 36 {
		t.Fatalf("root %+v request id %q", doc.XMLName, doc.RequestID)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var notReady error = errors.New("store not loaded")
	e := newEnv(t, func(o *Options) { o.Health = healthFuncs{ready: func() error { return notReady }} })
	get := func(path string) (int, string) {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, b := get("/healthz"); s != 200 || b != "ok" {
		t.Errorf("healthz %d %q", s, b)
	}
	if s, b := get("/readyz"); s != 503 || !strings.Contains(b, "store not loaded") {
		t.Errorf("readyz while not ready %d %q", s, b)
	}
	notReady = nil
	if s, b := get("/readyz"); s != 200 || b != "ok" {
		t.Errorf("readyz when ready %d %q", s, b)
	}
}

func TestExtraRoutesAreServed(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.ExtraRoutes = map[string]http.Handler{"GET /metrics": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "frontdesk_up 1\n")
		})}
	})
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "frontdesk_up 1\n" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}
