package controlplane

import (
	"context"
	"encoding/xml"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/usage"
)

type usageAnswer struct {
	XMLName       xml.Name
	RequestID     string `xml:"requestId"`
	WindowSeconds int    `xml:"windowSeconds"`
	Items         []struct {
		InstanceID    string `xml:"instanceId"`
		Calls         int64  `xml:"imdsV1Calls"`
		Rejected      int64  `xml:"imdsV1Rejected"`
		LastCall      string `xml:"lastCall"`
		LastPath      string `xml:"lastPath"`
		LastUserAgent string `xml:"lastUserAgent"`
	} `xml:"usageSet>item"`
}

func TestDescribeImdsUsage(t *testing.T) {
	last := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var gotWindow atomic.Int64
	h := &hookRecorder{}
	e := newEnv(t, func(o *Options) {
		h.install(o)
		o.V1Usage = func(_ context.Context, w time.Duration) (*usage.Report, error) {
			gotWindow.Store(int64(w))
			return usage.NewReport(w, last, last.Add(-time.Hour), []usage.Summary{
				{InstanceID: "i-0bbbbbbbbbbbbbbbb", Calls: 3, LastCall: last, LastPath: "/latest/meta-data/", LastUserAgent: "curl/8.5.0"},
				{InstanceID: "i-0aaaaaaaaaaaaaaaa", Calls: 0, Rejected: 7, LastCall: last.Add(-time.Minute), LastPath: "/latest/user-data", LastUserAgent: "aws-sdk-go/1.44"},
			}), nil
		}
	})
	ask := func(kv ...string) (int, usageAnswer, string) {
		t.Helper()
		v := url.Values{"Action": {ActionDescribeImdsUsage}, "Version": {"2016-11-15"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		status, body := e.call(v.Encode())
		var a usageAnswer
		if status == 200 {
			if err := xml.Unmarshal([]byte(body), &a); err != nil || a.XMLName.Local != ActionDescribeImdsUsage+"Response" || a.XMLName.Space != ec2Namespace || a.RequestID == "" {
				t.Fatalf("answer %v %s", err, body)
			}
			return status, a, ""
		}
		c, _ := errorOf(t, body)
		return status, a, c
	}

	_, a, _ := ask()
	if a.WindowSeconds != 3600 || time.Duration(gotWindow.Load()) != time.Hour || len(a.Items) != 2 {
		t.Fatalf("default window: %+v (asked %v)", a, time.Duration(gotWindow.Load()))
	}
	first := a.Items[0]
	if first.InstanceID != "i-0aaaaaaaaaaaaaaaa" || first.Calls != 0 || first.Rejected != 7 || first.LastCall != "2030-01-02T03:03:05Z" ||
		first.LastPath != "/latest/user-data" || first.LastUserAgent != "aws-sdk-go/1.44" {
		t.Errorf("first item (sorted by instance) %+v", first)
	}
	_, a, _ = ask("WindowSeconds", "86400", "InstanceId.1", "i-0bbbbbbbbbbbbbbbb")
	if a.WindowSeconds != 86400 || time.Duration(gotWindow.Load()) != 24*time.Hour || len(a.Items) != 1 || a.Items[0].Calls != 3 {
		t.Errorf("filtered: %+v", a)
	}
	for _, bad := range []string{"0", "1209601", "soon"} {
		if s, _, c := ask("WindowSeconds", bad); s != 400 || c != "InvalidParameterValue" {
			t.Errorf("WindowSeconds=%s: %d %s", bad, s, c)
		}
	}
	if _, _, c := ask("InstanceId.1", "web-1"); c != "InvalidInstanceID.Malformed" {
		t.Errorf("malformed id: %s", c)
	}
	if _, changes := h.take(); len(changes) != 0 {
		t.Errorf("a usage report is not a change: %+v", changes)
	}

	bare := newEnv(t, nil)
	status, body := bare.call("Action=" + ActionDescribeImdsUsage + "&Version=2016-11-15")
	if status != 400 || !strings.Contains(body, "<Code>UnsupportedOperation</Code>") {
		t.Errorf("without V1Usage: %d %s, want UnsupportedOperation (an empty set would read as no IMDSv1 calls)", status, body)
	}
}

// flakyStore is a store whose transactions run but then fail to commit
// (or to read), as an unreachable etcd does.
