package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// cmdEvents is `frontdesk events …`: the extension actions that make EC2's
// own notices (Spot interruptions, rebalance recommendations, scheduled
// maintenance, Auto Scaling lifecycle) appear in an instance's metadata, so
// the software inside can be tested against them.
func cmdEvents(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "events", args, map[string]subcommand{
		"spot":             {cmdEventsSpot, "announce a Spot interruption (spot/instance-action)"},
		"spot-cancel":      {cmdEventsSpotCancel, "withdraw the Spot interruption notice"},
		"rebalance":        {cmdEventsRebalance, "send a rebalance recommendation (events/recommendations/rebalance)"},
		"rebalance-cancel": {cmdEventsRebalanceCancel, "withdraw the rebalance recommendation"},
		"maintenance":      {cmdEventsMaintenance, "create, complete or cancel a scheduled maintenance event"},
		"lifecycle":        {cmdEventsLifecycle, "set the Auto Scaling target lifecycle state"},
	})
}

// eventCall parses an events subcommand that takes exactly n positional
// arguments, the first an instance id, runs check (nil: none) on its flags
// before it asks for the client (so a bad flag is reported as such even
// without credentials), then call.
func eventCall(ctx context.Context, e *env, c *command, args []string, n int, check func() error, call func(cl *apiclient.Client, pos []string) error) error {
	pos, err := c.parse(args, n, n)
	if err != nil {
		return err
	}
	if err := checkInstanceIDs(pos[0]); err != nil {
		return err
	}
	err = func() error {
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		cl, err := c.api.client(ctx, e)
		if err != nil {
			return err
		}
		return call(cl, pos)
	}()
	if err != nil && !strings.HasPrefix(err.Error(), c.fs.Name()+": ") {
		return fmt.Errorf("%s: %w", c.fs.Name(), err)
	}
	return err
}

func cmdEventsSpot(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "events spot", "frontdesk events spot ID [--action terminate|stop|hibernate] [--time RFC3339]")
	action := c.fs.String("action", "terminate", "what EC2 will do: terminate, stop or hibernate")
	at := c.fs.String("time", "", "when (RFC 3339; default: now + 2 minutes, as EC2 announces)")
	var t time.Time
	check := func() (err error) {
		if err := oneOf("action", *action, "terminate", "stop", "hibernate"); err != nil {
			return err
		}
		t, err = parseTime("time", *at)
		return err
	}
	return eventCall(ctx, e, c, args, 1, check, func(cl *apiclient.Client, pos []string) error {
		if err := cl.SendSpotInterruption(ctx, pos[0], *action, t); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: spot interruption (%s) announced\n", pos[0], *action)
		return nil
	})
}

func cmdEventsSpotCancel(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "events spot-cancel", "frontdesk events spot-cancel ID")
	return eventCall(ctx, e, c, args, 1, nil, func(cl *apiclient.Client, pos []string) error {
		if err := cl.CancelSpotInterruption(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: spot interruption withdrawn\n", pos[0])
		return nil
	})
}

func cmdEventsRebalance(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "events rebalance", "frontdesk events rebalance ID [--time RFC3339]")
	at := c.fs.String("time", "", "notice time (RFC 3339; default now)")
	var t time.Time
	check := func() (err error) {
		t, err = parseTime("time", *at)
		return err
	}
	return eventCall(ctx, e, c, args, 1, check, func(cl *apiclient.Client, pos []string) error {
		if err := cl.SendRebalanceRecommendation(ctx, pos[0], t); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: rebalance recommendation sent\n", pos[0])
		return nil
	})
}

func cmdEventsRebalanceCancel(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "events rebalance-cancel", "frontdesk events rebalance-cancel ID")
	return eventCall(ctx, e, c, args, 1, nil, func(cl *apiclient.Client, pos []string) error {
		if err := cl.CancelRebalanceRecommendation(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: rebalance recommendation withdrawn\n", pos[0])
		return nil
	})
}

func cmdEventsMaintenance(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "events maintenance", args, map[string]subcommand{
		"create":   {cmdMaintenanceCreate, "schedule an event (events/maintenance/scheduled); prints its id"},
		"complete": {cmdMaintenanceFinish(true), "move an event to the history as completed"},
		"cancel":   {cmdMaintenanceFinish(false), "move an event to the history as canceled"},
	})
}

func cmdMaintenanceCreate(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "events maintenance create", "frontdesk events maintenance create ID --code system-reboot|instance-reboot|system-maintenance|instance-stop|instance-retirement [--description TEXT] [--not-before RFC3339] [--not-after RFC3339]")
	code := c.fs.String("code", "", "event code (required): system-reboot, instance-reboot, system-maintenance, instance-stop or instance-retirement")
	desc := c.fs.String("description", "", "description (default: the code's usual text)")
	notBefore := c.fs.String("not-before", "", "earliest start (RFC 3339; default now + 24 h)")
	notAfter := c.fs.String("not-after", "", "latest end (RFC 3339; optional)")
	var ev apiclient.MaintenanceEvent
	check := func() (err error) {
		if *code == "" {
			return usageErr("events maintenance create: --code is required")
		}
		ev = apiclient.MaintenanceEvent{Code: *code, Description: *desc}
		if ev.NotBefore, err = parseTime("not-before", *notBefore); err != nil {
			return err
		}
		if ev.NotAfter, err = parseTime("not-after", *notAfter); err != nil {
			return err
		}
		if !ev.NotBefore.IsZero() && !ev.NotAfter.IsZero() && !ev.NotAfter.After(ev.NotBefore) {
			return usageErr("--not-after must be after --not-before")
		}
		return nil
	}
	return eventCall(ctx, e, c, args, 1, check, func(cl *apiclient.Client, pos []string) error {
		id, err := cl.CreateMaintenanceEvent(ctx, pos[0], ev)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, id)
		return nil
	})
}

func cmdMaintenanceFinish(complete bool) func(ctx context.Context, e *env, args []string) error {
	verb, name := "canceled", "cancel"
	if complete {
		verb, name = "completed", "complete"
	}
	return func(ctx context.Context, e *env, args []string) error {
		c := newCommand(e, "events maintenance "+name, "frontdesk events maintenance "+name+" ID EVENT_ID")
		return eventCall(ctx, e, c, args, 2, nil, func(cl *apiclient.Client, pos []string) error {
			var err error
			if complete {
				err = cl.CompleteMaintenanceEvent(ctx, pos[0], pos[1])
			} else {
				err = cl.CancelMaintenanceEvent(ctx, pos[0], pos[1])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: event %s %s\n", pos[0], pos[1], verb)
			return nil
		})
	}
}

func cmdEventsLifecycle(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "events lifecycle", "frontdesk events lifecycle ID STATE|--clear   (STATE: InService, Standby, Detached, Terminated, Warmed:Hibernated, Warmed:Running, Warmed:Stopped, Warmed:Terminated)")
	clearState := c.fs.Bool("clear", false, "remove the target lifecycle state instead of setting one")
	pos, err := c.parse(args, 1, 2)
	if err != nil {
		return err
	}
	switch {
	case *clearState && len(pos) == 2:
		return usageErr("events lifecycle: give STATE or --clear, not both")
	case !*clearState && len(pos) == 1:
		return usageErr("events lifecycle: STATE (or --clear) is required")
	}
	if err := checkInstanceIDs(pos[0]); err != nil {
		return err
	}
	state := ""
	if len(pos) == 2 {
		state = pos[1]
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	if err := cl.SetTargetLifecycleState(ctx, pos[0], state); err != nil {
		return fmt.Errorf("events lifecycle: %w", err)
	}
	if state == "" {
		fmt.Fprintf(e.stdout, "%s: target lifecycle state cleared\n", pos[0])
	} else {
		fmt.Fprintf(e.stdout, "%s: target lifecycle state %s\n", pos[0], state)
	}
	return nil
}
