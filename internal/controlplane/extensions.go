package controlplane

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Extension actions simulate what EC2 does to an instance on its own, so the
// notices appear in the metadata tree. They use the same signature, request
// and XML conventions as the EC2 actions; EXTENSIONS.md documents them.

// spotNoticeLead is how far ahead EC2 announces a Spot interruption.
const spotNoticeLead = 2 * time.Minute

// maintenanceCodes are the event codes EC2 uses for scheduled events.
var maintenanceCodes = map[string]string{
	"system-reboot":       "scheduled reboot",
	"instance-reboot":     "scheduled reboot",
	"system-maintenance":  "scheduled maintenance",
	"instance-stop":       "The instance is running on degraded hardware",
	"instance-retirement": "The instance is running on degraded hardware",
}

// targetLifecycleStates are the Auto Scaling states IMDS can report.
var targetLifecycleStates = []string{
	"Detached", "InService", "Standby", "Terminated",
	"Warmed:Hibernated", "Warmed:Running", "Warmed:Stopped", "Warmed:Terminated",
}

type extensionResponse struct {
	respMeta
	InstanceID string `xml:"instanceId"`
	EventID    string `xml:"eventId,omitempty"`
	Return     bool   `xml:"return"`
}

// sendSpotInterruption: InstanceId, SpotAction (terminate|stop|hibernate,
// default terminate; not "Action", which names the Query action), Time (RFC 3339, default now + 2 minutes). Serves
// spot/instance-action and spot/termination-time.
func (s *Server) sendSpotInterruption(ctx context.Context, p params) (response, error) {
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	act := "terminate"
	if a, err := p.enumOpt("SpotAction", "terminate", "stop", "hibernate"); err != nil {
		return nil, err
	} else if a != nil {
		act = *a
	}
	at := s.opts.Now().UTC().Add(spotNoticeLead).Truncate(time.Second)
	if t, err := p.timeOpt("Time"); err != nil {
		return nil, err
	} else if t != nil {
		at = t.Truncate(time.Second)
	}
	err = s.modifyLive(ctx, false, id, func(_ imds.Tx, in *imds.Instance) error {
		in.Events.Spot = &imds.SpotAction{Action: act, Time: at}
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, map[string]string{"SpotAction": act, "Time": at.Format(time.RFC3339)})
	return &extensionResponse{InstanceID: id, Return: true}, nil
}

func (s *Server) cancelSpotInterruption(ctx context.Context, p params) (response, error) {
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	err = s.modifyLive(ctx, false, id, func(_ imds.Tx, in *imds.Instance) error {
		in.Events.Spot = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, nil)
	return &extensionResponse{InstanceID: id, Return: true}, nil
}

// sendRebalanceRecommendation: InstanceId, NoticeTime (default now). Serves
// events/recommendations/rebalance.
func (s *Server) sendRebalanceRecommendation(ctx context.Context, p params) (response, error) {
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	at := s.opts.Now().UTC().Truncate(time.Second)
	if t, err := p.timeOpt("NoticeTime"); err != nil {
		return nil, err
	} else if t != nil {
		at = t.Truncate(time.Second)
	}
	err = s.modifyLive(ctx, false, id, func(_ imds.Tx, in *imds.Instance) error {
		in.Events.RebalanceNotice = &at
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, map[string]string{"NoticeTime": at.Format(time.RFC3339)})
	return &extensionResponse{InstanceID: id, Return: true}, nil
}

func (s *Server) cancelRebalanceRecommendation(ctx context.Context, p params) (response, error) {
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	err = s.modifyLive(ctx, false, id, func(_ imds.Tx, in *imds.Instance) error {
		in.Events.RebalanceNotice = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, nil)
	return &extensionResponse{InstanceID: id, Return: true}, nil
}

// createMaintenanceEvent: InstanceId, Code (required), Description,
// NotBefore (default now + 24h), NotAfter (optional, after NotBefore).
// Answers the new EventId (instance-event-…).
func (s *Server) createMaintenanceEvent(ctx context.Context, p params) (response, error) {
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	code, err := p.required("Code")
	if err != nil {
		return nil, err
	}
	desc, known := maintenanceCodes[code]
	if !known {
		return nil, errInvalid("Invalid value '" + code + "' for Code. Valid values: instance-reboot, instance-retirement, instance-stop, system-maintenance, system-reboot.")
	}
	if d, ok := p.get("Description"); ok && d != "" {
		desc = d
	}
	if len(desc) > 1024 {
		return nil, errInvalid("Description is limited to 1024 characters.")
	}
	notBefore := s.opts.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)
	if t, err := p.timeOpt("NotBefore"); err != nil {
		return nil, err
	} else if t != nil {
		notBefore = t.Truncate(time.Second)
	}
	var notAfter time.Time
	if t, err := p.timeOpt("NotAfter"); err != nil {
		return nil, err
	} else if t != nil {
		notAfter = t.Truncate(time.Second)
		if !notAfter.After(notBefore) {
			return nil, errInvalid("NotAfter must be later than NotBefore.")
		}
	}
	eventID, err := newID("instance-event-")
	if err != nil {
		return nil, err
	}
	err = s.modifyLive(ctx, false, id, func(_ imds.Tx, in *imds.Instance) error {
		if len(in.Events.Scheduled) >= 20 {
			return errInvalid("The instance already has 20 scheduled events.")
		}
		in.Events.Scheduled = append(in.Events.Scheduled, imds.MaintenanceEvent{
			EventID: eventID, Code: code, Description: desc,
			NotBefore: notBefore, NotAfter: notAfter, State: "active",
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, map[string]string{"Code": code, "EventId": eventID, "NotBefore": notBefore.Format(time.RFC3339)})
	return &extensionResponse{InstanceID: id, EventID: eventID, Return: true}, nil
}

// completeMaintenanceEvent and cancelMaintenanceEvent move a scheduled
// event to the history, as EC2 does: State completed or canceled and the
// description prefixed with [Completed] or [Canceled].
func (s *Server) completeMaintenanceEvent(ctx context.Context, p params) (response, error) {
	return s.endMaintenanceEvent(ctx, p, "completed", "[Completed] ")
}

func (s *Server) cancelMaintenanceEvent(ctx context.Context, p params) (response, error) {
	return s.endMaintenanceEvent(ctx, p, "canceled", "[Canceled] ")
}

// maxEventHistory bounds the history kept per instance.
const maxEventHistory = 50

func (s *Server) endMaintenanceEvent(ctx context.Context, p params, state, prefix string) (response, error) {
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	eventID, err := p.required("EventId")
	if err != nil {
		return nil, err
	}
	err = s.modifyLive(ctx, false, id, func(_ imds.Tx, in *imds.Instance) error {
		for i, ev := range in.Events.Scheduled {
			if ev.EventID != eventID {
				continue
			}
			in.Events.Scheduled = append(in.Events.Scheduled[:i:i], in.Events.Scheduled[i+1:]...)
			ev.State = state
			if !strings.HasPrefix(ev.Description, prefix) {
				ev.Description = prefix + ev.Description
			}
			in.Events.History = append(in.Events.History, ev)
			if n := len(in.Events.History); n > maxEventHistory {
				in.Events.History = append(in.Events.History[:0:0], in.Events.History[n-maxEventHistory:]...)
			}
			return nil
		}
		return newAPIError(http.StatusBadRequest, "InvalidParameterValue", "The event ID '"+eventID+"' is not scheduled for instance "+id+".")
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, map[string]string{"EventId": eventID, "State": state})
	return &extensionResponse{InstanceID: id, EventID: eventID, Return: true}, nil
}

// setTargetLifecycleState: InstanceId, State (one of the Auto Scaling
// states; empty clears it). Serves autoscaling/target-lifecycle-state.
func (s *Server) setTargetLifecycleState(ctx context.Context, p params) (response, error) {
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	state, ok := p.get("State")
	if !ok {
		return nil, errMissing("State")
	}
	if state != "" {
		if _, err := p.enumOpt("State", targetLifecycleStates...); err != nil {
			return nil, err
		}
	}
	err = s.modifyLive(ctx, false, id, func(_ imds.Tx, in *imds.Instance) error {
		in.Events.TargetLifecycleState = state
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, map[string]string{"State": state})
	return &extensionResponse{InstanceID: id, Return: true}, nil
}
