package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Each events subcommand makes its notice appear in (or leave) the demo
// instance's metadata, read as the guest with IMDSv2.
func TestCLIEventsReachTheMetadata(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo", "--demo-http-tokens", "optional")
	const guest = "127.0.0.1" // the demo instance's address
	id := demoInstanceID

	t.Run("spot_interruption_serves_instance_action", func(t *testing.T) {
		d.cli(t, "events", "spot", id, "--action", "stop", "--time", "2030-01-02T03:04:05Z")
		var ia struct{ Action, Time string }
		body := d.waitGuest(t, guest, "/latest/meta-data/spot/instance-action", true, 200)
		if err := json.Unmarshal([]byte(body), &ia); err != nil || ia.Action != "stop" || ia.Time != "2030-01-02T03:04:05Z" {
			t.Errorf("spot/instance-action = %q (%v)", body, err)
		}
		if s, body := d.guestGet(t, guest, "/latest/meta-data/spot/termination-time", d.guestToken(t, guest)); s != 200 || body != "2030-01-02T03:04:05Z" {
			t.Errorf("spot/termination-time = %d %q", s, body)
		}
		d.cli(t, "events", "spot-cancel", id)
		d.waitGuest(t, guest, "/latest/meta-data/spot/instance-action", true, 404)
	})

	t.Run("rebalance_recommendation_serves_notice_time", func(t *testing.T) {
		d.cli(t, "events", "rebalance", id, "--time", "2030-05-06T07:08:09Z")
		body := d.waitGuest(t, guest, "/latest/meta-data/events/recommendations/rebalance", true, 200)
		var n struct {
			NoticeTime string `json:"noticeTime"`
		}
		if err := json.Unmarshal([]byte(body), &n); err != nil || n.NoticeTime != "2030-05-06T07:08:09Z" {
			t.Errorf("rebalance = %q (%v)", body, err)
		}
		d.cli(t, "events", "rebalance-cancel", id)
		d.waitGuest(t, guest, "/latest/meta-data/events/recommendations/rebalance", true, 404)
	})

	t.Run("maintenance_event_moves_from_scheduled_to_history", func(t *testing.T) {
		type event struct {
			Code, Description, EventId, NotBefore, State string
		}
		read := func(which string) []event {
			t.Helper()
			var evs []event
			body := d.waitGuest(t, guest, "/latest/meta-data/events/maintenance/"+which, true, 200)
			if err := json.Unmarshal([]byte(body), &evs); err != nil {
				t.Fatalf("%s: %q: %v", which, body, err)
			}
			return evs
		}
		waitFor := func(which string, ok func([]event) bool) []event {
			t.Helper()
			for range 250 {
				if evs := read(which); ok(evs) {
					return evs
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatalf("events/maintenance/%s never reached the expected state: %+v", which, read(which))
			return nil
		}
		out := d.cli(t, "events", "maintenance", "create", id, "--code", "system-reboot", "--description", "host swap", "--not-before", "2030-01-02T03:04:05Z")
		ev1 := strings.TrimSpace(out)
		if !regexp.MustCompile(`^instance-event-[0-9a-f]+$`).MatchString(ev1) {
			t.Fatalf("maintenance create printed %q, want an event id", out)
		}
		sched := waitFor("scheduled", func(evs []event) bool { return len(evs) == 1 })
		if e := sched[0]; e.EventId != ev1 || e.Code != "system-reboot" || e.State != "active" || e.Description != "host swap" {
			t.Errorf("scheduled = %+v", sched)
		}
		d.cli(t, "events", "maintenance", "complete", id, ev1)
		hist := waitFor("history", func(evs []event) bool { return len(evs) == 1 })
		if e := hist[0]; e.EventId != ev1 || e.State != "completed" || !strings.HasPrefix(e.Description, "[Completed] ") {
			t.Errorf("history = %+v", hist)
		}
		if s := read("scheduled"); len(s) != 0 {
			t.Errorf("scheduled after complete = %+v, want []", s)
		}

		ev2 := strings.TrimSpace(d.cli(t, "events", "maintenance", "create", id, "--code", "instance-stop"))
		waitFor("scheduled", func(evs []event) bool { return len(evs) == 1 && evs[0].EventId == ev2 })
		d.cli(t, "events", "maintenance", "cancel", id, ev2)
		hist = waitFor("history", func(evs []event) bool { return len(evs) == 2 })
		var canceled bool
		for _, e := range hist {
			canceled = canceled || (e.EventId == ev2 && e.State == "canceled" && strings.HasPrefix(e.Description, "[Canceled] "))
		}
		if !canceled {
			t.Errorf("history after cancel = %+v", hist)
		}
		// Completing an event twice is the server's error: exit 1 naming it.
		if r := d.cliResult(t, "events", "maintenance", "complete", id, ev1); r.code() != 1 || !strings.Contains(r.err.Error(), "api error") {
			t.Errorf("second complete: code %d err %v", r.code(), r.err)
		}
	})

	t.Run("lifecycle_state_is_served_and_cleared", func(t *testing.T) {
		d.cli(t, "events", "lifecycle", id, "Warmed:Stopped")
		if got := d.waitGuest(t, guest, "/latest/meta-data/autoscaling/target-lifecycle-state", true, 200); got != "Warmed:Stopped" {
			t.Errorf("target-lifecycle-state = %q", got)
		}
		d.cli(t, "events", "lifecycle", "--clear", id)
		d.waitGuest(t, guest, "/latest/meta-data/autoscaling/target-lifecycle-state", true, 404)
	})

	t.Run("unknown_instance_is_the_servers_not_found", func(t *testing.T) {
		r := d.cliResult(t, "events", "spot", "i-00000000000000000")
		if r.code() != 1 || !strings.Contains(r.err.Error(), "InvalidInstanceID.NotFound") {
			t.Errorf("code %d err %v", r.code(), r.err)
		}
	})
}
