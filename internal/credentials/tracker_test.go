package credentials

import (
	"maps"
	"slices"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// fleet is a Instances made of a map; rev tells versions apart.
type fleet struct {
	rev int
	ins map[string]*imds.Instance
}

func (f *fleet) Len() int                              { return len(f.ins) }
func (f *fleet) InstanceByID(id string) *imds.Instance { return f.ins[id] }
func (f *fleet) EachInstance(fn func(*imds.Instance)) {
	for _, in := range f.ins {
		fn(in)
	}
}
func withRole(id, role string) *imds.Instance {
	return &imds.Instance{InstanceID: id, AccountID: "123456789012", IAMInstanceProfile: &imds.IAMInstanceProfile{Role: role}}
}

func TestTrackerMergesChangesUntilTaken(t *testing.T) {
	tr := NewTracker(nil, TrackerOptions{})
	if s, _ := tr.take(); s != nil {
		t.Fatal("an empty tracker gave a version")
	}
	a, b := &fleet{rev: 1}, &fleet{rev: 2}
	tr.Add(a, []string{"i-1"})
	tr.Add(b, []string{"i-2", "i-1"})
	s, changed := tr.take()
	if s != b || len(changed) != 2 {
		t.Fatalf("took %v with %v; want the newest and both changes", s, changed)
	}
	// A full load in between makes the next take "everything".
	tr.Add(&fleet{rev: 3}, []string{"i-3"})
	tr.Add(&fleet{rev: 4}, nil)
	last := &fleet{rev: 5}
	tr.Add(last, []string{"i-5"})
	if s, changed := tr.take(); s != last || changed != nil {
		t.Fatalf("after a full load: %v, changed %v; want the newest and nil (everything)", s, changed)
	}
	if s, _ := tr.take(); s != nil {
		t.Fatal("a second take gave the same version again")
	}
}

func TestTrackerSetsTargetsAndForgetsRemovedInstances(t *testing.T) {
	r := NewRefresher(func(string) Provider { return nil }, RefresherOptions{})
	var forgot []string
	var kept func(string) bool
	tr := NewTracker(r, TrackerOptions{
		Forget: func(id string) { forgot = append(forgot, id) },
		Keep:   func(served func(string) bool) { kept = served },
	})
	full := &fleet{ins: map[string]*imds.Instance{"i-1": withRole("i-1", "web"), "i-2": {InstanceID: "i-2"}}}
	tr.apply(full, nil)
	if kept == nil || !kept("i-1") || !kept("i-2") || kept("i-9") {
		t.Fatal("a full load did not report which instances are served")
	}
	if got := slices.Sorted(maps.Keys(r.targetsByInstance())); !slices.Equal(got, []string{"i-1"}) {
		t.Fatalf("targets after a full load: %v, want the instance with a role", got)
	}
	changed := &fleet{ins: map[string]*imds.Instance{"i-2": withRole("i-2", "db")}}
	tr.apply(changed, map[string]struct{}{"i-1": {}, "i-2": {}})
	if !slices.Equal(forgot, []string{"i-1"}) {
		t.Fatalf("forgot %v, want the removed instance i-1", forgot)
	}
	if got := slices.Sorted(maps.Keys(r.targetsByInstance())); !slices.Equal(got, []string{"i-2"}) {
		t.Fatalf("targets after the change: %v, want i-2 only", got)
	}
}

func TestTargetsOfNamesTheRoleARN(t *testing.T) {
	ts := TargetsOf(withRole("i-1", "web"), nil)
	want := Target{InstanceID: "i-1", AccountID: "123456789012", Role: "web", RoleArn: "arn:aws:iam::123456789012:role/web"}
	if len(ts) != 1 || ts[0] != want {
		t.Fatalf("TargetsOf = %+v, want %+v", ts, want)
	}
	if ts := TargetsOf(&imds.Instance{InstanceID: "i-2"}, nil); len(ts) != 0 {
		t.Fatalf("an instance without a profile has targets %+v", ts)
	}
}

// targetsByInstance is the refresher's current set, by instance.
func (r *Refresher) targetsByInstance() map[string]int {
	out := map[string]int{}
	for i := range r.targets {
		for id, slots := range *r.targets[i].Load() {
			if len(slots) > 0 {
				out[id] = len(slots)
			}
		}
	}
	return out
}

// Without role_arn, provider sts assumes the instance profile's role in the
// instance's account and its region's partition.
func TestDefaultRoleArnFollowsAccountAndPartition(t *testing.T) {
	for region, want := range map[string]string{
		"eu-west-1":     "arn:aws:iam::210987654321:role/web",
		"cn-north-1":    "arn:aws-cn:iam::210987654321:role/web",
		"us-gov-west-1": "arn:aws-us-gov:iam::210987654321:role/web",
	} {
		in := &imds.Instance{InstanceID: "i-0123456789abcdef0", AccountID: "210987654321", Placement: imds.Placement{Region: region},
			IAMInstanceProfile: &imds.IAMInstanceProfile{Role: "web"}}
		ts := TargetsOf(in, nil)
		if len(ts) != 1 || ts[0].RoleArn != want {
			t.Errorf("%s: targets %+v, want role ARN %s", region, ts, want)
		}
	}
}
