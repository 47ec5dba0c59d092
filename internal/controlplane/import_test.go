package controlplane

import (
	"encoding/xml"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// importLines sends lines as one FrontdeskImportInstances request, numbered
// from first; it returns the error code and message, or the imported ids.
func (e *env) importLines(first int, lines ...string) (code, msg string, ids []string) {
	e.t.Helper()
	v := url.Values{"Action": {ActionImportInstances}, "Version": {"2016-11-15"}}
	for i, l := range lines {
		n := strconv.Itoa(i + 1)
		v.Set("Instance."+n+".Json", l)
		v.Set("Instance."+n+".Line", strconv.Itoa(first+i))
	}
	status, body := e.call(v.Encode())
	if status != 200 {
		c, m := errorOf(e.t, body)
		return c, m, nil
	}
	var ok struct {
		Items []struct {
			Line       int    `xml:"line"`
			InstanceID string `xml:"instanceId"`
		} `xml:"instancesSet>item"`
	}
	if err := xml.Unmarshal([]byte(body), &ok); err != nil {
		e.t.Fatalf("bad import answer: %v %s", err, body)
	}
	for _, it := range ok.Items {
		ids = append(ids, it.InstanceID)
	}
	return "", "", ids
}

// exportAll pages through FrontdeskExportInstances.
func (e *env) exportAll(page int) []string {
	e.t.Helper()
	var lines []string
	token := ""
	for {
		v := url.Values{"Action": {ActionExportInstances}, "Version": {"2016-11-15"}, "MaxResults": {strconv.Itoa(page)}}
		if token != "" {
			v.Set("NextToken", token)
		}
		status, body := e.call(v.Encode())
		if status != 200 {
			e.t.Fatalf("export: %d %s", status, body)
		}
		var ok struct {
			Lines     []string `xml:"lineSet>item"`
			NextToken string   `xml:"nextToken"`
		}
		if err := xml.Unmarshal([]byte(body), &ok); err != nil {
			e.t.Fatalf("bad export answer: %v %s", err, body)
		}
		lines = append(lines, ok.Lines...)
		if ok.NextToken == "" {
			return lines
		}
		token = ok.NextToken
	}
}

const (
	lineA = `{"ImageId":"ami-0123456789abcdef0","InstanceType":"m5.large","PrivateIpAddress":"192.0.2.10","Ipv6Addresses":[{"Ipv6Address":"2001:db8::10"}],"Placement":{"HostId":"host-a"},"KeyName":"","UserData":"aGVsbG8=","TagSpecifications":[{"ResourceType":"instance","Tags":[{"Key":"Name","Value":"web-1"}]}],"MetadataOptions":{"HttpTokens":"required","HttpPutResponseHopLimit":2}}`
	lineB = `{"ImageId":"ami-0123456789abcdef0","PrivateIpAddress":"192.0.2.11","Placement":{"HostId":"host-b"}}`
)

func TestImportInstances(t *testing.T) {
	e := newEnv(t, nil)
	code, msg, ids := e.importLines(1, strings.Replace(lineA, `"KeyName":"",`, "", 1), lineB)
	if code != "" || len(ids) != 2 {
		t.Fatalf("import: %s %s %v", code, msg, ids)
	}
	a := e.stored(ids[0])
	if a.Placement.HostID != "host-a" || a.InstanceType != "m5.large" || string(a.UserData) != "hello" ||
		a.MetadataOptions.HttpTokens != imds.Required || a.MetadataOptions.HttpPutResponseHopLimit != 2 ||
		len(a.Tags) != 1 || a.Tags[0].Value != "web-1" || !slices.Contains(a.Addresses(), "2001:db8::10") {
		t.Fatalf("imported instance %+v", a)
	}
	if b := e.stored(ids[1]); b.Placement.HostID != "host-b" || b.Addresses()[0] != "192.0.2.11" {
		t.Fatalf("imported instance %+v", b)
	}
}

func TestImportBatchIsAllOrNothing(t *testing.T) {
	e := newEnv(t, nil)
	before := e.revision()
	dup := strings.Replace(lineB, "host-b", "host-c", 1) // same address as lineB
	code, msg, _ := e.importLines(40, lineB, `{"ImageId":"ami-0123456789abcdef0","PrivateIpAddress":"192.0.2.12"}`, dup)
	if code != "InvalidIPAddress.InUse" || !strings.HasPrefix(msg, "line 42: ") {
		t.Fatalf("duplicate address in a batch: %q %q, want InvalidIPAddress.InUse on line 42", code, msg)
	}
	if r := e.revision(); r != before {
		t.Fatalf("a refused batch wrote to the store (revision %d -> %d)", before, r)
	}
	for _, tc := range []struct{ line, code, in string }{
		{"line 7: field SecurityGroupIds is not supported", "InvalidParameterValue", `{"ImageId":"ami-0123456789abcdef0","SecurityGroupIds":["sg-1"]}`},
		{"line 7: not a JSON object", "InvalidParameterValue", `{"ImageId":`},
		{"line 7: ", "MissingParameter", `{"PrivateIpAddress":"192.0.2.13"}`},
		{"line 7: ", "InvalidAMIID.Malformed", `{"ImageId":"img-1","PrivateIpAddress":"192.0.2.13"}`},
	} {
		code, msg, _ := e.importLines(7, tc.in)
		if code != tc.code || !strings.HasPrefix(msg, tc.line) {
			t.Errorf("import %s: %q %q, want %s with %q", tc.in, code, msg, tc.code, tc.line)
		}
	}
	if r := e.revision(); r != before {
		t.Fatalf("refused lines wrote to the store (revision %d -> %d)", before, r)
	}
}

func TestExportRoundTrips(t *testing.T) {
	e := newEnv(t, nil)
	if code, msg, _ := e.importLines(1, lineA, lineB); code != "" {
		t.Fatalf("import: %s %s", code, msg)
	}
	// A launched instance, then a terminated one, which is not exported.
	e.launch("192.0.2.20", nil)
	gone := e.launch("192.0.2.21", nil)
	if status, body := e.call(url.Values{"Action": {"TerminateInstances"}, "Version": {"2016-11-15"}, "InstanceId.1": {*gone.InstanceId}}.Encode()); status != 200 {
		t.Fatalf("terminate: %s", body)
	}
	first := e.exportAll(1)
	if len(first) != 3 {
		t.Fatalf("export gave %d lines, want 3 live instances:\n%s", len(first), strings.Join(first, "\n"))
	}
	if all := e.exportAll(1000); !slices.Equal(all, first) {
		t.Fatalf("paged export differs from one page:\n%q\n%q", first, all)
	}
	other := newEnv(t, nil)
	if code, msg, _ := other.importLines(1, first...); code != "" {
		t.Fatalf("re-import of the export: %s %s", code, msg)
	}
	again := other.exportAll(2)
	slices.Sort(first)
	slices.Sort(again)
	if !slices.Equal(first, again) {
		t.Fatalf("inventory did not round-trip:\n%s\n---\n%s", strings.Join(first, "\n"), strings.Join(again, "\n"))
	}
}
