package imdstest

import (
	"context"
	"sync"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/credentials"
	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Every control below changes the stored instance (or the credential
// source) and returns once the data plane serves the change, so the next
// request sees it.

// ModifyMetadataOptions changes the instance's metadata options as EC2's
// ModifyInstanceMetadataOptions does: empty fields keep their value. For
// example HttpTokens "optional" allows IMDSv1, HttpEndpoint "disabled" makes
// every request answer 403.
func (s *Server) ModifyMetadataOptions(o MetadataOptions) {
	s.helper()
	s.update("modify metadata options", func(in *imds.Instance, rev int64) error {
		in.MetadataOptions = in.MetadataOptions.Apply(o.request())
		in.OptionsRevision = rev
		return nil
	})
}

// InterruptSpot makes the instance a Spot instance with a pending
// interruption: meta-data/spot/instance-action and spot/termination-time
// appear. action is "terminate", "stop" or "hibernate"; at is when it
// happens (EC2 gives two minutes' notice).
func (s *Server) InterruptSpot(action string, at time.Time) {
	s.helper()
	switch action {
	case "terminate", "stop", "hibernate":
	default:
		s.fatalf("spot interruption action %q is not terminate, stop or hibernate", action)
	}
	s.update("interrupt spot", func(in *imds.Instance, _ int64) error {
		in.InstanceLifecycle = "spot"
		in.Events.Spot = &imds.SpotAction{Action: action, Time: at.UTC().Truncate(time.Second)}
		return nil
	})
}

// RecommendRebalance publishes a rebalance recommendation
// (meta-data/events/recommendations/rebalance) with the given notice time.
func (s *Server) RecommendRebalance(notice time.Time) {
	s.helper()
	s.update("recommend rebalance", func(in *imds.Instance, _ int64) error {
		t := notice.UTC().Truncate(time.Second)
		in.Events.RebalanceNotice = &t
		return nil
	})
}

// MaintenanceEvent is a scheduled event, as listed at
// meta-data/events/maintenance/scheduled.
type MaintenanceEvent struct {
	// ID defaults to a random instance-event-… id.
	ID string
	// Code is e.g. "system-reboot", "instance-reboot", "system-maintenance",
	// "instance-retirement" or "instance-stop".
	Code        string
	Description string
	NotBefore   time.Time
	NotAfter    time.Time // optional
}

// ScheduleMaintenance adds a scheduled maintenance event.
func (s *Server) ScheduleMaintenance(e MaintenanceEvent) {
	s.helper()
	if e.Code == "" || e.NotBefore.IsZero() {
		s.fatalf("a maintenance event needs a Code and a NotBefore")
	}
	if e.ID == "" {
		e.ID = "instance-event-" + randomHex(17)
	}
	s.update("schedule maintenance", func(in *imds.Instance, _ int64) error {
		in.Events.Scheduled = append(in.Events.Scheduled, imds.MaintenanceEvent{
			EventID: e.ID, Code: e.Code, Description: e.Description, State: "active",
			NotBefore: e.NotBefore.UTC().Truncate(time.Second), NotAfter: e.NotAfter.UTC().Truncate(time.Second),
		})
		return nil
	})
}

// SetTargetLifecycleState sets meta-data/autoscaling/target-lifecycle-state,
// e.g. "InService", "Terminated", "Warmed:Stopped"; "" removes it.
func (s *Server) SetTargetLifecycleState(state string) {
	s.helper()
	s.update("set target lifecycle state", func(in *imds.Instance, _ int64) error {
		in.Events.TargetLifecycleState = state
		return nil
	})
}

// ClearEvents withdraws every spot interruption, rebalance recommendation,
// scheduled event and lifecycle state.
func (s *Server) ClearEvents() {
	s.helper()
	s.update("clear events", func(in *imds.Instance, _ int64) error {
		in.Events = imds.Events{}
		return nil
	})
}

// SetRateLimit throttles the instance: at most burst requests at once and
// perSecond requests per second of the server's clock; over it the answer
// is 429 with Retry-After, as from the daemon. The clock stands still until
// Advance, so a throttled test stays throttled until it advances the
// clock. perSecond 0 removes the limit (the default).
func (s *Server) SetRateLimit(perSecond float64, burst int) {
	s.helper()
	if perSecond < 0 || burst < 0 {
		s.fatalf("rate limit %v/s burst %d is negative", perSecond, burst)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setHandler(dataplane.Limits{Rate: perSecond, Burst: burst})
}

// Now is the time on the server's clock. It stands still until Advance.
func (s *Server) Now() time.Time { return s.clock.Now() }

// Advance moves the server's clock forward: tokens and credentials expire,
// and credentials due for a refresh are refreshed (as on the daemon, well
// before they expire), before Advance returns.
func (s *Server) Advance(d time.Duration) {
	s.helper()
	if d < 0 {
		s.fatalf("Advance(%v): the clock only moves forward", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock.Advance(d)
	if err := s.settle(); err != nil {
		s.fatalf("%v", err)
	}
}

// Credentials are the role credentials the server serves.
type Credentials struct {
	// Code is "Success" while valid credentials are served; otherwise an
	// EC2-style error code, explained by Message.
	Code, Message   string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	LastUpdated     time.Time
}

// RoleCredentials returns what iam/security-credentials/ROLE serves now.
func (s *Server) RoleCredentials() Credentials {
	s.helper()
	if s.role == "" {
		s.fatalf("the instance has no role (WithRole(\"\"))")
	}
	c, _, ok := s.served.Credentials(s.id, s.role)
	if !ok {
		return Credentials{}
	}
	return Credentials{Code: c.Code, Message: c.Message, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		SessionToken: c.Token, Expiration: c.Expiration, LastUpdated: c.LastUpdated}
}

// RotateCredentials fetches a new set of role credentials now.
func (s *Server) RotateCredentials() {
	s.helper()
	s.refetch("rotate credentials", func(p *roleProvider) { p.fail = nil })
}

// FailCredentials makes every fetch of role credentials fail from now on,
// with an EC2-style code and message (e.g. "AssumeRoleUnauthorizedAccess").
// As on the daemon, credentials that are still valid keep being served:
// Advance past their Expiration to see the failure served.
func (s *Server) FailCredentials(code, message string) {
	s.helper()
	if code == "" || code == credentials.CodeSuccess {
		s.fatalf("FailCredentials needs an error code, not %q", code)
	}
	s.refetch("fail credentials", func(p *roleProvider) {
		p.fail = &credentials.Error{Code: code, Message: message}
	})
}

// RecoverCredentials ends FailCredentials and fetches a new set now.
func (s *Server) RecoverCredentials() {
	s.helper()
	s.refetch("recover credentials", func(p *roleProvider) { p.fail = nil })
}

// refetch changes the credential source, then makes the refresher fetch
// from it and waits until it has.
func (s *Server) refetch(what string, change func(*roleProvider)) {
	s.helper()
	if s.role == "" {
		s.fatalf("%s: the instance has no role (WithRole(\"\"))", what)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles.mu.Lock()
	change(s.roles)
	s.roles.mu.Unlock()
	deadline := time.Now().Add(settleTimeout)
	for {
		before := s.roles.fetches()
		s.refresher.Refresh(s.id, s.role)
		if err := s.settle(); err != nil {
			s.fatalf("%s: %v", what, err)
		}
		// A fetch already in flight when the source changed does not count.
		if s.roles.fetches() > before {
			return
		}
		if time.Now().After(deadline) {
			s.fatalf("%s: the credential refresher did not fetch", what)
		}
	}
}

// update changes the stored instance in one transaction and waits until the
// data plane serves the result. fn gets the revision the change will have.
func (s *Server) update(what string, fn func(in *imds.Instance, rev int64) error) {
	s.helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var rev int64
	err := s.store.Update(context.Background(), func(tx imds.Tx) error {
		in, err := imds.GetInstance(tx, s.id)
		if err != nil {
			return err
		}
		rev = tx.Revision() + 1
		if err := fn(in, rev); err != nil {
			return err
		}
		return imds.PutInstance(tx, in)
	})
	if err != nil {
		s.fatalf("%s: %v", what, err)
	}
	deadline := time.Now().Add(settleTimeout)
	for s.follower.Applied() < rev {
		if time.Now().After(deadline) {
			s.fatalf("%s: the data plane did not apply revision %d", what, rev)
		}
		time.Sleep(time.Millisecond)
	}
}

// roleProvider is the credential source behind the server's role: the
// daemon's local provider, or a failure the test asked for.
type roleProvider struct {
	local *credentials.Local
	mu    sync.Mutex
	fail  *credentials.Error
	n     int // fetches started
}

func (p *roleProvider) Retrieve(ctx context.Context, t credentials.Target) (credentials.Credentials, error) {
	p.mu.Lock()
	p.n++
	fail := p.fail
	p.mu.Unlock()
	if fail != nil {
		e := *fail
		return credentials.Credentials{}, &e
	}
	return p.local.Retrieve(ctx, t)
}

func (p *roleProvider) fetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
