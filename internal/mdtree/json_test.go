package mdtree

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestJSONLayoutsMatchTheReference(t *testing.T) {
	berlin := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			name: "role_credentials_in_ec2_field_order",
			got: CredentialsJSON(Credentials{
				Code:            "Success",
				LastUpdated:     mustTime(t, "2023-06-30T19:06:42Z"),
				Expiration:      mustTime(t, "2023-07-01T01:25:35Z"),
				AccessKeyID:     "ASIAIOSFODNN7EXAMPLE",
				SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
				Token:           "IQoJb3JpZ2luX2VjEXAMPLE==",
			}),
			want: "{\n" +
				"  \"Code\" : \"Success\",\n" +
				"  \"LastUpdated\" : \"2023-06-30T19:06:42Z\",\n" +
				"  \"Type\" : \"AWS-HMAC\",\n" +
				"  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n" +
				"  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n" +
				"  \"Token\" : \"IQoJb3JpZ2luX2VjEXAMPLE==\",\n" +
				"  \"Expiration\" : \"2023-07-01T01:25:35Z\"\n" +
				"}",
		},
		{
			name: "credential_times_are_utc_whole_seconds",
			got: CredentialsJSON(Credentials{
				Code:        "Success",
				LastUpdated: time.Date(2023, 6, 30, 21, 6, 42, 999_000_000, berlin),
				Expiration:  time.Date(2023, 7, 1, 3, 25, 35, 1, berlin),
				AccessKeyID: "A", SecretAccessKey: "S", Token: "T",
			}),
			want: "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2023-06-30T19:06:42Z\",\n  \"Type\" : \"AWS-HMAC\",\n" +
				"  \"AccessKeyId\" : \"A\",\n  \"SecretAccessKey\" : \"S\",\n  \"Token\" : \"T\",\n  \"Expiration\" : \"2023-07-01T01:25:35Z\"\n}",
		},
		{
			name: "failed_credentials_carry_code_message_last_updated",
			got: CredentialsJSON(Credentials{
				Code:        "AssumeRoleUnauthorizedAccess",
				Message:     "EC2 cannot assume the role web-role.",
				LastUpdated: mustTime(t, "2023-06-30T19:06:42Z"),
				AccessKeyID: "ignored",
			}),
			want: "{\n" +
				"  \"Code\" : \"AssumeRoleUnauthorizedAccess\",\n" +
				"  \"Message\" : \"EC2 cannot assume the role web-role.\",\n" +
				"  \"LastUpdated\" : \"2023-06-30T19:06:42Z\"\n" +
				"}",
		},
		{
			name: "iam_info",
			got:  IAMInfoJSON("Success", mustTime(t, "2022-02-13T13:17:17Z"), "arn:aws:iam::123456789012:instance-profile/web", "AIPAABCDEFGHIJKLMNOPQ"),
			want: "{\n" +
				"  \"Code\" : \"Success\",\n" +
				"  \"LastUpdated\" : \"2022-02-13T13:17:17Z\",\n" +
				"  \"InstanceProfileArn\" : \"arn:aws:iam::123456789012:instance-profile/web\",\n" +
				"  \"InstanceProfileId\" : \"AIPAABCDEFGHIJKLMNOPQ\"\n" +
				"}",
		},
		{
			name: "identity_credentials_info",
			got:  IdentityCredentialsInfoJSON(mustTime(t, "2022-02-13T13:17:17Z"), "123456789012"),
			want: "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2022-02-13T13:17:17Z\",\n  \"AccountId\" : \"123456789012\"\n}",
		},
		{
			name: "identity_document_with_nulls",
			got: Build(&imds.Instance{
				AccountID:    "123456789012",
				Architecture: "arm64",
				ImageID:      "ami-0123456789abcdef0",
				InstanceID:   "i-0123456789abcdef0",
				InstanceType: "t4g.medium",
				LaunchTime:   mustTime(t, "2023-12-04T10:04:05Z"),
				Placement:    imds.Placement{Region: "eu-central-1", AvailabilityZone: "eu-central-1b"},
				NetworkInterfaces: []imds.NetworkInterface{
					{DeviceIndex: 0, MAC: "0e:00:00:00:00:01", PrivateIPv4s: []string{"192.0.2.30"}},
				},
			}).Document(),
			want: "{\n" +
				"  \"accountId\" : \"123456789012\",\n" +
				"  \"architecture\" : \"arm64\",\n" +
				"  \"availabilityZone\" : \"eu-central-1b\",\n" +
				"  \"billingProducts\" : null,\n" +
				"  \"devpayProductCodes\" : null,\n" +
				"  \"marketplaceProductCodes\" : null,\n" +
				"  \"imageId\" : \"ami-0123456789abcdef0\",\n" +
				"  \"instanceId\" : \"i-0123456789abcdef0\",\n" +
				"  \"instanceType\" : \"t4g.medium\",\n" +
				"  \"kernelId\" : null,\n" +
				"  \"pendingTime\" : \"2023-12-04T10:04:05Z\",\n" +
				"  \"privateIp\" : \"192.0.2.30\",\n" +
				"  \"ramdiskId\" : null,\n" +
				"  \"region\" : \"eu-central-1\",\n" +
				"  \"version\" : \"2017-09-30\"\n" +
				"}",
		},
		{
			name: "identity_document_lists_product_codes_inline",
			got:  documentField(t, Build(&imds.Instance{ProductCodes: []string{"1abc2", "3def4"}}), "marketplaceProductCodes"),
			want: `  "marketplaceProductCodes" : [ "1abc2", "3def4" ],`,
		},
		{
			name: "identity_document_without_ipv4_has_null_private_ip",
			got:  documentField(t, Build(&imds.Instance{}), "privateIp"),
			want: `  "privateIp" : null,`,
		},
		{
			name: "maintenance_history_in_ug_layout",
			got: []byte(eventsJSON([]imds.MaintenanceEvent{
				{EventID: "instance-event-0d59937288b749b32", Code: "system-reboot", Description: "[Canceled] scheduled reboot",
					NotBefore: mustTime(t, "2019-01-21T09:00:43Z"), NotAfter: mustTime(t, "2019-01-21T09:17:23Z"), State: "canceled"},
				{EventID: "instance-event-0d59937288b749b32", Code: "system-reboot", Description: "[Completed] scheduled reboot",
					NotBefore: mustTime(t, "2019-01-29T09:00:43Z"), NotAfter: mustTime(t, "2019-01-29T09:17:23Z"), State: "completed"},
			})),
			// The UG example without its trailing spaces after "[" and "}".
			want: "[\n" +
				"  {\n" +
				"    \"NotBefore\" : \"21 Jan 2019 09:00:43 GMT\",\n" +
				"    \"Code\" : \"system-reboot\",\n" +
				"    \"Description\" : \"[Canceled] scheduled reboot\",\n" +
				"    \"EventId\" : \"instance-event-0d59937288b749b32\",\n" +
				"    \"NotAfter\" : \"21 Jan 2019 09:17:23 GMT\",\n" +
				"    \"State\" : \"canceled\"\n" +
				"  },\n" +
				"  {\n" +
				"    \"NotBefore\" : \"29 Jan 2019 09:00:43 GMT\",\n" +
				"    \"Code\" : \"system-reboot\",\n" +
				"    \"Description\" : \"[Completed] scheduled reboot\",\n" +
				"    \"EventId\" : \"instance-event-0d59937288b749b32\",\n" +
				"    \"NotAfter\" : \"29 Jan 2019 09:17:23 GMT\",\n" +
				"    \"State\" : \"completed\"\n" +
				"  }\n" +
				"]",
		},
		{
			name: "event_days_are_not_zero_padded",
			got: []byte(eventsJSON([]imds.MaintenanceEvent{{EventID: "e", Code: "instance-stop", Description: "d",
				NotBefore: mustTime(t, "2019-03-05T01:02:03Z"), State: "active"}})),
			want: "[\n  {\n    \"NotBefore\" : \"5 Mar 2019 01:02:03 GMT\",\n    \"Code\" : \"instance-stop\",\n" +
				"    \"Description\" : \"d\",\n    \"EventId\" : \"e\",\n    \"State\" : \"active\"\n  }\n]",
		},
		{
			name: "spot_instance_action_as_in_the_ug",
			got:  lookupBody(t, Build(richInstance(t)), "meta-data/spot/instance-action"),
			want: `{"action": "terminate", "time": "2017-09-18T08:22:00Z"}`,
		},
		{
			name: "rebalance_notice_as_in_the_ug",
			got:  lookupBody(t, Build(richInstance(t)), "meta-data/events/recommendations/rebalance"),
			want: `{"noticeTime": "2020-11-05T08:22:00Z"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", tc.got, tc.want)
			}
		})
	}
}

func lookupBody(t *testing.T, tree *Tree, p string) []byte {
	t.Helper()
	n, ok := tree.Lookup("latest", p)
	if !ok {
		t.Fatalf("%s: 404", p)
	}
	return n.Body
}

// documentField returns the identity document's line for key.
func documentField(t *testing.T, tree *Tree, key string) []byte {
	t.Helper()
	var v map[string]any
	doc := tree.Document()
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("document is not JSON: %v\n%s", err, doc)
	}
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(`  "`+key+`" : `)) {
			return line
		}
	}
	t.Fatalf("document has no %s:\n%s", key, doc)
	return nil
}

func TestJSONStringsAreEscaped(t *testing.T) {
	tricky := "quote\" back\\slash\nnew\ttab \x01 <html>&amp; é \xff end"
	body := CredentialsJSON(Credentials{Code: "Failed", Message: tricky})
	var got struct{ Code, Message, LastUpdated string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, body)
	}
	want := "quote\" back\\slash\nnew\ttab \x01 <html>&amp; é \ufffd end"
	if got.Message != want {
		t.Errorf("Message round-trips as %q, want %q", got.Message, want)
	}
	if !json.Valid(body) || string(body[len(body)-1]) != "}" {
		t.Errorf("body must be valid JSON ending at }: %q", body)
	}
	// Jackson leaves HTML characters alone; encoding/json would write \u003c.
	if s := string(body); !strings.Contains(s, "<html>&amp;") {
		t.Errorf("HTML characters were escaped: %s", s)
	}
	// The Spot action is the one value spliced into a compact layout.
	in := plainInstance(t)
	in.Events.Spot = &imds.SpotAction{Action: `stop"`, Time: mustTime(t, "2017-09-18T08:22:00Z")}
	if b := lookupBody(t, Build(in), "meta-data/spot/instance-action"); !json.Valid(b) {
		t.Errorf("spot instance-action is not valid JSON: %s", b)
	}
}
