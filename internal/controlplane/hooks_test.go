package controlplane

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type requestEvent struct{ action, code string }

type changeEvent struct {
	key, action string
	ids         []string
	detail      map[string]string
}

// hookRecorder collects what OnRequest and OnChange are told.
type hookRecorder struct {
	mu       sync.Mutex
	requests []requestEvent
	changes  []changeEvent
}

func (h *hookRecorder) install(o *Options) { o.Observer = h }

func (h *hookRecorder) Request(action, code string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, requestEvent{action, code})
}

func (h *hookRecorder) Change(key, action string, ids []string, detail map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, changeEvent{key, action, ids, detail})
}

// take returns and clears what was recorded.
func (h *hookRecorder) take() ([]requestEvent, []changeEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, c := h.requests, h.changes
	h.requests, h.changes = nil, nil
	return r, c
}

func TestRequestAndChangeHooks(t *testing.T) {
	h := &hookRecorder{}
	e := newEnv(t, h.install)
	ctx := context.Background()

	id := *e.launch("192.0.2.1", nil).InstanceId
	reqs, changes := h.take()
	if !slices.Equal(reqs, []requestEvent{{"RunInstances", ""}}) {
		t.Fatalf("launch requests %+v", reqs)
	}
	if len(changes) != 1 || changes[0].key != testCreds.AccessKeyID || changes[0].action != "RunInstances" ||
		!slices.Equal(changes[0].ids, []string{id}) || changes[0].detail["HttpTokens"] != "required" ||
		changes[0].detail["ImageId"] != "ami-0123456789abcdef0" || !strings.HasPrefix(changes[0].detail["ReservationId"], "r-") {
		t.Fatalf("launch change %+v", changes)
	}

	tests := []struct {
		name        string
		call        func() error
		wantRequest requestEvent
		wantChange  *changeEvent
	}{
		{
			name: "a metadata options change reports the settings given",
			call: func() error {
				_, err := e.client.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpTokens: types.HttpTokensStateOptional})
				return err
			},
			wantRequest: requestEvent{"ModifyInstanceMetadataOptions", ""},
			wantChange:  &changeEvent{action: "ModifyInstanceMetadataOptions", ids: []string{id}, detail: map[string]string{"HttpTokens": "optional"}},
		},
		{
			name: "a user data change reports its size, never its body",
			call: func() error {
				_, err := e.client.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
					UserData: &types.SecureBlobAttributeValue{Value: []byte("password=hunter2")}})
				return err
			},
			wantRequest: requestEvent{"ModifyInstanceAttribute", ""},
			wantChange:  &changeEvent{action: "ModifyInstanceAttribute", ids: []string{id}, detail: map[string]string{"Attribute": "userData", "UserDataBytes": "16"}},
		},
		{
			name: "a tag change reports keys, not values",
			call: func() error {
				_, err := e.client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: tags("Owner", "alice")})
				return err
			},
			wantRequest: requestEvent{"CreateTags", ""},
			wantChange:  &changeEvent{action: "CreateTags", ids: []string{id}, detail: map[string]string{"TagKeys": "Owner"}},
		},
		{
			name: "account defaults change no instance",
			call: func() error {
				_, err := e.client.ModifyInstanceMetadataDefaults(ctx, &ec2.ModifyInstanceMetadataDefaultsInput{HttpTokens: types.MetadataDefaultHttpTokensStateRequired})
				return err
			},
			wantRequest: requestEvent{"ModifyInstanceMetadataDefaults", ""},
			wantChange:  &changeEvent{action: "ModifyInstanceMetadataDefaults", detail: map[string]string{"HttpTokens": "required"}},
		},
		{
			name: "a describe is not a change",
			call: func() error {
				_, err := e.client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
				return err
			},
			wantRequest: requestEvent{"DescribeInstances", ""},
		},
		{
			name: "a dry run is not a change",
			call: func() error {
				_, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}, DryRun: aws.Bool(true)})
				return err
			},
			wantRequest: requestEvent{"TerminateInstances", "DryRunOperation"},
		},
		{
			name: "a failed action is not a change",
			call: func() error {
				_, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0000000000000000f"}})
				return err
			},
			wantRequest: requestEvent{"TerminateInstances", "InvalidInstanceID.NotFound"},
		},
		{
			name: "a badly signed request names its known action",
			call: func() error {
				_, err := newClient(e.url, AdminCredentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: "wrong/secret/wrong/secret/wrong/secret00"}).
					DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
				return err
			},
			wantRequest: requestEvent{"DescribeInstances", "SignatureDoesNotMatch"},
		},
		{
			name: "an unknown action is reported as the empty action",
			call: func() error {
				if status, _ := e.call("Action=RebootInstances&Version=2016-11-15"); status != 400 {
					return errors.New("unknown action answered " + http.StatusText(status))
				}
				return nil
			},
			wantRequest: requestEvent{"", "InvalidAction"},
		},
		{
			name: "a termination reports its instances",
			call: func() error {
				_, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
				return err
			},
			wantRequest: requestEvent{"TerminateInstances", ""},
			wantChange:  &changeEvent{action: "TerminateInstances", ids: []string{id}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_ = tc.call()
			reqs, changes := h.take()
			if !slices.Equal(reqs, []requestEvent{tc.wantRequest}) {
				t.Errorf("requests %+v, want %+v", reqs, tc.wantRequest)
			}
			if tc.wantChange == nil {
				if len(changes) != 0 {
					t.Errorf("unexpected changes %+v", changes)
				}
				return
			}
			if len(changes) != 1 {
				t.Fatalf("changes %+v", changes)
			}
			c := changes[0]
			w := tc.wantChange
			if c.key != testCreds.AccessKeyID || c.action != w.action || !slices.Equal(c.ids, w.ids) || len(c.detail) != len(w.detail) {
				t.Fatalf("change %+v, want %+v", c, *w)
			}
			for k, v := range w.detail {
				if c.detail[k] != v {
					t.Errorf("detail %s = %q, want %q", k, c.detail[k], v)
				}
			}
			for _, v := range c.detail {
				if strings.Contains(v, "hunter2") || strings.Contains(v, "alice") {
					t.Errorf("detail leaks user content: %v", c.detail)
				}
			}
		})
	}
}

func TestActionsListsEveryAnsweredAction(t *testing.T) {
	e := newEnv(t, nil)
	names := Actions()
	if !slices.IsSorted(names) {
		t.Errorf("Actions() not sorted: %v", names)
	}
	for _, want := range []string{"RunInstances", "ModifyInstancePlacement", ActionDescribeImdsUsage, ActionSendSpotInterruption} {
		if !slices.Contains(names, want) {
			t.Errorf("Actions() lacks %s", want)
		}
	}
	if len(names) != len(e.srv.actions) {
		t.Errorf("Actions() has %d names, the server answers %d", len(names), len(e.srv.actions))
	}
	for _, n := range names {
		// Without Version every known action is MissingParameter, an
		// unknown one InvalidAction.
		status, body := e.call("Action=" + n)
		if c, _ := errorOf(t, body); status != 400 || c != "MissingParameter" {
			t.Errorf("%s: %d %s", n, status, c)
		}
	}
}

func TestReadyzListsComponents(t *testing.T) {
	var ready error
	health := map[string]error{"data_plane": nil, "store": errors.New("etcd: context deadline exceeded")}
	e := newEnv(t, func(o *Options) {
		o.Health = healthFuncs{func() error { return ready }, func() map[string]error { return health }}
	})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name       string
		ready      error
		path       string
		wantStatus int
		wantBody   string
	}{
		{"ready lists every component even if one is down", nil, "/readyz", 200, "data_plane: ok\nstore: unavailable: etcd: context deadline exceeded\n"},
		{"not ready says why and lists components", errors.New("snapshot not loaded"), "/readyz", 503, "not ready: snapshot not loaded\ndata_plane: ok\nstore: unavailable: etcd: context deadline exceeded\n"},
		{"a down component alone is 503", nil, "/readyz?component=store", 503, "store: unavailable: etcd: context deadline exceeded\n"},
		{"a healthy component alone is 200 even when not ready", errors.New("snapshot not loaded"), "/readyz?component=data_plane", 200, "data_plane: ok\n"},
		{"an unknown component is 404", nil, "/readyz?component=nope", 404, "unknown component \"nope\"\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready = tc.ready
			if s, b := get(tc.path); s != tc.wantStatus || b != tc.wantBody {
				t.Errorf("%s: %d %q, want %d %q", tc.path, s, b, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestChangeDetailNeverHoldsUserData(t *testing.T) {
	// Guard for the detail test above: the SDK sends user data base64
	// encoded, so the detail check must also look for the encoded form.
	h := &hookRecorder{}
	e := newEnv(t, h.install)
	id := *e.launch("192.0.2.1", nil).InstanceId
	h.take()
	secret := []byte("#!/bin/sh\nexport TOKEN=s3cr3t\n")
	if _, err := e.client.ModifyInstanceAttribute(context.Background(), &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		UserData: &types.SecureBlobAttributeValue{Value: secret}}); err != nil {
		t.Fatal(err)
	}
	_, changes := h.take()
	if len(changes) != 1 {
		t.Fatalf("changes %+v", changes)
	}
	enc := base64.StdEncoding.EncodeToString(secret)
	for k, v := range changes[0].detail {
		if strings.Contains(v, "s3cr3t") || strings.Contains(v, enc[:12]) {
			t.Errorf("detail %s leaks user data: %q", k, v)
		}
	}
}
