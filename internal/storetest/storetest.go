// Package storetest is the behaviour suite every imds.Store backend must
// pass. It pins down the contract documented on imds.Store and imds.Tx (key
// order, reads-your-writes, atomicity, revisions, the change feed, Close) and
// the typed records built on it, so the in-memory store is a trustworthy
// fake for bolt and etcd and a new backend has one test to satisfy.
package storetest

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Options tune the suite for one backend. The zero value runs everything a
// backend must support.
type Options struct {
	// Compact makes every revision before the store's current one
	// unwatchable: etcd compacts; a store with bounded in-process history
	// writes past it (see WritePast). Nil skips the compaction checks, for
	// a backend that keeps its whole history.
	Compact func(t *testing.T, s imds.Store)
	// Writers and Increments size the concurrent-update check (defaults 8
	// and 25). A backend whose commits are slow may lower them.
	Writers, Increments int
}

// wait bounds every wait for a watch batch: long enough for a loaded CI
// machine and an fsyncing etcd, short enough to fail a broken feed quickly.
const wait = 10 * time.Second

// quiet is how long the suite listens for a batch that must not come.
const quiet = 200 * time.Millisecond

// Run runs the whole suite with default options. open returns a new, empty
// store for one subtest; the suite closes it (a later Close returning
// ErrClosed is expected), so open only needs to clean up what lies beneath
// it (directories, servers) with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) imds.Store) {
	t.Helper()
	RunWith(t, open, Options{})
}

// RunWith runs the whole suite with opts.
func RunWith(t *testing.T, open func(t *testing.T) imds.Store, opts Options) {
	t.Helper()
	if opts.Writers <= 0 {
		opts.Writers = 8
	}
	if opts.Increments <= 0 {
		opts.Increments = 25
	}
	s := suite{open: open, opts: opts}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"get_missing_key_returns_not_found", s.getMissing},
		{"put_is_visible_to_later_views", s.putVisible},
		{"empty_value_is_stored_not_missing", s.emptyValue},
		{"put_copies_the_value", s.putCopies},
		{"delete_removes_key_and_missing_delete_is_no_change", s.deleteKey},
		{"scan_returns_prefix_in_key_order", s.scanOrder},
		{"scan_stops_at_first_error_and_returns_it", s.scanStops},
		{"update_reads_its_own_writes", s.readsYourWrites},
		{"view_rejects_writes", s.viewReadOnly},
		{"failed_update_writes_nothing", s.updateAtomic},
		{"update_with_canceled_context_writes_nothing", s.updateCanceled},
		{"revision_grows_once_per_committed_change", s.revisionGrows},
		{"watch_from_revision_replays_later_batches_in_order", s.watchReplay},
		{"watch_from_current_revision_delivers_new_batches", s.watchCurrent},
		{"watch_reports_deletions", s.watchDeletes},
		{"watch_cancel_closes_channel", s.watchCancel},
		{"watch_compacted_revision_reports_err_compacted", s.watchCompacted},
		{"close_makes_later_calls_return_err_closed", s.closeStore},
		{"concurrent_updates_lose_no_increment", s.concurrentUpdates},
		{"instance_round_trips_with_address_index", s.instanceRoundTrip},
		{"second_live_instance_on_address_is_refused", s.addressInUse},
		{"terminated_instance_releases_addresses", s.terminatedReleases},
		{"delete_instance_releases_addresses", s.deleteReleases},
		{"instance_address_change_moves_index", s.addressChange},
		{"list_instances_in_id_order", s.listInstances},
		{"defaults_start_with_no_preference_and_round_trip", s.defaults},
		{"secrets_round_trip", s.secrets},
		{"key_pairs_round_trip_by_name_and_refuse_duplicates", s.keyPairs}, // keypairs.go
		{"usage_records_per_node_merge_and_delete", s.usageRecords},
		{"change_records_list_in_time_order_and_prune", s.changeRecords},
	}
	tests = append(tests, s.networkTests()...)
	tests = append(tests, s.placementTests()...) // placement.go
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

// WritePast returns a Compact hook for a store that keeps only its last
// history batches: it commits history+1 updates so that every earlier
// revision has left the history.
func WritePast(history int) func(t *testing.T, s imds.Store) {
	return func(t *testing.T, s imds.Store) {
		t.Helper()
		for i := 0; i <= history; i++ {
			mustPut(t, s, "storetest/compact", strconv.Itoa(i))
		}
	}
}

// NewInstance returns a valid running instance with one interface holding
// addrs (IPv4 and IPv6 mixed); n picks the id (i- and 17 hex digits), the
// MAC and the ENI id, so different n give different instances.
func NewInstance(t testing.TB, n int, addrs ...string) *imds.Instance {
	t.Helper()
	opts, err := imds.LaunchOptions(imds.OptionsRequest{}, imds.DefaultAccountDefaults(), false)
	if err != nil {
		t.Fatalf("launch options: %v", err)
	}
	ni := imds.NetworkInterface{
		MAC:         fmt.Sprintf("0e:00:00:00:%02x:%02x", (n>>8)&0xff, n&0xff),
		InterfaceID: fmt.Sprintf("eni-%017x", n),
		OwnerID:     "123456789012",
		SubnetID:    "subnet-0123456789abcdef0",
		VPCID:       "vpc-0123456789abcdef0",
	}
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("address %q: %v", s, err)
		}
		if a.Is4() {
			ni.PrivateIPv4s = append(ni.PrivateIPv4s, a.String())
		} else {
			ni.IPv6s = append(ni.IPv6s, a.String())
		}
	}
	in := &imds.Instance{
		InstanceID:        fmt.Sprintf("i-%017x", n),
		ReservationID:     fmt.Sprintf("r-%017x", n),
		AccountID:         "123456789012",
		Generation:        1,
		State:             imds.StateRunning,
		ImageID:           "ami-0123456789abcdef0",
		InstanceType:      "t3.micro",
		Architecture:      "x86_64",
		LaunchTime:        time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		InstanceLifecycle: "on-demand",
		Placement: imds.Placement{
			Region:             "us-east-1",
			AvailabilityZone:   "us-east-1a",
			AvailabilityZoneID: "use1-az1",
		},
		NetworkInterfaces: []imds.NetworkInterface{ni},
		MetadataOptions:   opts,
	}
	if err := in.Validate(); err != nil {
		t.Fatalf("NewInstance built an invalid instance: %v", err)
	}
	return in
}

type suite struct {
	open func(t *testing.T) imds.Store
	opts Options
}

// store opens a fresh store that is closed when the subtest ends.
func (s suite) store(t *testing.T) imds.Store {
	t.Helper()
	st := s.open(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil && !errors.Is(err, imds.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

var errStop = errors.New("storetest: stop")
