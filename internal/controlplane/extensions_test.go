package controlplane

import (
	"encoding/xml"
	"net/url"
	"strings"
	"testing"
	"time"
)

// ext calls an extension action and returns the EC2 error code ("" on
// success) and, on success, the eventId of the answer.
func (e *env) ext(action string, kv ...string) (string, string) {
	e.t.Helper()
	v := url.Values{"Action": {action}, "Version": {"2016-11-15"}}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	status, body := e.call(v.Encode())
	if status != 200 {
		c, _ := errorOf(e.t, body)
		return c, ""
	}
	var ok struct {
		XMLName xml.Name
		EventID string `xml:"eventId"`
		Return  bool   `xml:"return"`
	}
	if err := xml.Unmarshal([]byte(body), &ok); err != nil || ok.XMLName.Local != action+"Response" || !ok.Return {
		e.t.Fatalf("bad answer to %s: %v %s", action, err, body)
	}
	return "", ok.EventID
}

func TestSpotAndRebalanceExtensions(t *testing.T) {
	e := newEnv(t, nil)
	id := *e.launch("192.0.2.1", nil).InstanceId

	before := time.Now()
	if c, _ := e.ext(ActionSendSpotInterruption, "InstanceId", id); c != "" {
		t.Fatal(c)
	}
	sp := e.stored(id).Events.Spot
	if sp == nil || sp.Action != "terminate" || sp.Time.Before(before.Add(2*time.Minute-time.Second)) || sp.Time.After(time.Now().Add(2*time.Minute)) {
		t.Fatalf("default spot notice %+v", sp)
	}
	if c, _ := e.ext(ActionSendSpotInterruption, "InstanceId", id, "SpotAction", "hibernate", "Time", "2030-01-02T03:04:05Z"); c != "" {
		t.Fatal(c)
	}
	sp = e.stored(id).Events.Spot
	if sp.Action != "hibernate" || !sp.Time.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("spot notice %+v", sp)
	}
	if c, _ := e.ext(ActionSendSpotInterruption, "InstanceId", id, "SpotAction", "explode"); c != "InvalidParameterValue" {
		t.Errorf("bad spot action: %q", c)
	}
	if c, _ := e.ext(ActionSendSpotInterruption, "InstanceId", id, "Time", "soon"); c != "InvalidParameterValue" {
		t.Errorf("bad time: %q", c)
	}
	if c, _ := e.ext(ActionCancelSpotInterruption, "InstanceId", id); c != "" || e.stored(id).Events.Spot != nil {
		t.Fatalf("cancel spot: %q %+v", c, e.stored(id).Events.Spot)
	}

	if c, _ := e.ext(ActionSendRebalanceRecommendation, "InstanceId", id, "NoticeTime", "2030-01-02T03:00:00Z"); c != "" {
		t.Fatal(c)
	}
	if n := e.stored(id).Events.RebalanceNotice; n == nil || !n.Equal(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("rebalance %v", n)
	}
	if c, _ := e.ext(ActionCancelRebalanceRecommendation, "InstanceId", id); c != "" || e.stored(id).Events.RebalanceNotice != nil {
		t.Fatalf("cancel rebalance: %q", c)
	}

	if c, _ := e.ext(ActionSendSpotInterruption, "InstanceId", "i-0123456789abcdef0"); c != "InvalidInstanceID.NotFound" {
		t.Errorf("unknown instance: %q", c)
	}
	if c, _ := e.ext(ActionSendSpotInterruption); c != "MissingParameter" {
		t.Errorf("no instance: %q", c)
	}
}

func TestMaintenanceEventExtensions(t *testing.T) {
	e := newEnv(t, nil)
	id := *e.launch("192.0.2.1", nil).InstanceId
	c, ev1 := e.ext(ActionCreateMaintenanceEvent, "InstanceId", id, "Code", "system-reboot",
		"NotBefore", "2030-01-21T09:00:00Z", "NotAfter", "2030-01-21T11:00:00Z")
	if c != "" || !strings.HasPrefix(ev1, "instance-event-") {
		t.Fatalf("create: %q %q", c, ev1)
	}
	_, ev2 := e.ext(ActionCreateMaintenanceEvent, "InstanceId", id, "Code", "instance-stop", "Description", "hardware")
	_, ev3 := e.ext(ActionCreateMaintenanceEvent, "InstanceId", id, "Code", "system-maintenance")
	sched := e.stored(id).Events.Scheduled
	if len(sched) != 3 || sched[0].EventID != ev1 || sched[0].State != "active" || sched[0].Description != "scheduled reboot" ||
		!sched[0].NotAfter.Equal(time.Date(2030, 1, 21, 11, 0, 0, 0, time.UTC)) || sched[1].Description != "hardware" {
		t.Fatalf("scheduled %+v", sched)
	}

	if c, _ := e.ext(ActionCompleteMaintenanceEvent, "InstanceId", id, "EventId", ev1); c != "" {
		t.Fatal(c)
	}
	if c, _ := e.ext(ActionCancelMaintenanceEvent, "InstanceId", id, "EventId", ev2); c != "" {
		t.Fatal(c)
	}
	evs := e.stored(id).Events
	if len(evs.Scheduled) != 1 || evs.Scheduled[0].EventID != ev3 {
		t.Fatalf("scheduled after completion %+v", evs.Scheduled)
	}
	if len(evs.History) != 2 ||
		evs.History[0].EventID != ev1 || evs.History[0].State != "completed" || evs.History[0].Description != "[Completed] scheduled reboot" ||
		evs.History[1].EventID != ev2 || evs.History[1].State != "canceled" || evs.History[1].Description != "[Canceled] hardware" {
		t.Fatalf("history %+v", evs.History)
	}

	for _, tt := range []struct {
		name string
		kv   []string
		want string
	}{
		{"unknown_code", []string{"InstanceId", id, "Code", "meteor-strike"}, "InvalidParameterValue"},
		{"missing_code", []string{"InstanceId", id}, "MissingParameter"},
		{"not_after_before_not_before", []string{"InstanceId", id, "Code", "system-reboot", "NotBefore", "2030-01-02T00:00:00Z", "NotAfter", "2030-01-01T00:00:00Z"}, "InvalidParameterValue"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if c, _ := e.ext(ActionCreateMaintenanceEvent, tt.kv...); c != tt.want {
				t.Fatalf("got %q, want %q", c, tt.want)
			}
		})
	}
	t.Run("completing_an_unknown_event", func(t *testing.T) {
		if c, _ := e.ext(ActionCompleteMaintenanceEvent, "InstanceId", id, "EventId", ev1); c != "InvalidParameterValue" {
			t.Fatalf("got %q", c)
		}
	})
}

func TestTargetLifecycleStateExtension(t *testing.T) {
	e := newEnv(t, nil)
	id := *e.launch("192.0.2.1", nil).InstanceId
	if c, _ := e.ext(ActionSetTargetLifecycleState, "InstanceId", id, "State", "Warmed:Hibernated"); c != "" {
		t.Fatal(c)
	}
	if s := e.stored(id).Events.TargetLifecycleState; s != "Warmed:Hibernated" {
		t.Fatalf("state %q", s)
	}
	if c, _ := e.ext(ActionSetTargetLifecycleState, "InstanceId", id, "State", "Sleeping"); c != "InvalidParameterValue" {
		t.Fatalf("bad state: %q", c)
	}
	if c, _ := e.ext(ActionSetTargetLifecycleState, "InstanceId", id, "State", ""); c != "" || e.stored(id).Events.TargetLifecycleState != "" {
		t.Fatalf("clearing: %q", c)
	}
}

func TestExtensionsRefuseTerminatedInstances(t *testing.T) {
	e := newEnv(t, nil)
	id := *e.launch("192.0.2.1", nil).InstanceId
	if status, body := e.call("Action=TerminateInstances&Version=2016-11-15&InstanceId.1=" + id); status != 200 {
		t.Fatal(body)
	}
	if c, _ := e.ext(ActionSendRebalanceRecommendation, "InstanceId", id); c != "IncorrectInstanceState" {
		t.Fatalf("got %q", c)
	}
}

func TestExtensionsRequireSignature(t *testing.T) {
	e := newEnv(t, nil)
	bad := testCreds
	bad.SecretAccessKey = "wrong/secret/0123456789abcdefghijklmnopq"
	r := signedPost(t, e.url, "Action="+ActionSetTargetLifecycleState+"&Version=2016-11-15&InstanceId=i-0123456789abcdef0&State=InService", bad, "us-east-1", time.Now(), true)
	if _, c := do(t, r); c != "SignatureDoesNotMatch" {
		t.Fatalf("got %q", c)
	}
}
