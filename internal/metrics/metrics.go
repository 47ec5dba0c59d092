// Package metrics exposes frontdesk's Prometheus metrics, among them the
// fleet's IMDSv1 usage as package usage stores it. It is the only package
// that imports the Prometheus client library.
//
// Every metric lives in the Metrics value's own registry, never the global
// one, so tests and several daemons in one process do not interfere.
//
// # Label cardinality
//
// A fleet can have many thousands of instances, and a series per instance on
// every metric would overwhelm Prometheus. Cardinality is bounded like this:
//
//   - Only the two counters that mirror EC2's per-instance CloudWatch
//     metrics, frontdesk_metadata_no_token_total and
//     frontdesk_metadata_no_token_rejected_total, carry an instance_id
//     label, and an instance gets a series only once it makes a tokenless
//     call. Instances that only use IMDSv2 cost nothing.
//   - At most Options.MaxInstanceSeries (default 10000) distinct instance_id
//     values are exported. The calls of further instances are added to the
//     series instance_id="_other"; an instance stays there until it is
//     forgotten.
//   - ForgetInstance (or KeepInstances after a snapshot swap) deletes a
//     terminated instance's series and frees its slot, so the series count
//     follows the live fleet rather than its history.
//   - Role labels (credential refresh and expiry) are capped at
//     Options.MaxRoleSeries (default 1000), then role="_other"; ForgetRole
//     deletes a role's series. Store operations and control-plane error codes
//     are capped at 64 values each, then "_other". Control-plane actions are
//     the fixed set in Options.ControlPlaneActions (any other name is
//     "_unknown"); without that set the first 64 names seen are kept.
//   - Every other label (status, imds_version, outcome) has a small fixed
//     set of values.
//
// Instance IDs only ever come from the data plane's snapshot (a caller at an
// unknown address has no instance ID), so a guest cannot invent new series.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
)

// Default limits on label values.
const (
	DefaultMaxInstanceSeries = 10000
	DefaultMaxRoleSeries     = 1000
	maxFreeLabels            = 64
)

// Label values used when a real value is not exported.
const (
	// OtherLabel replaces label values beyond a cardinality cap.
	OtherLabel = "_other"
	// UnknownActionLabel replaces control-plane action names that are not
	// in Options.ControlPlaneActions.
	UnknownActionLabel = "_unknown"
	// IdentityRoleLabel is the role label of the instance identity
	// credentials (role "").
	IdentityRoleLabel = "_identity"
)

// Options are the optional knobs of New. The zero value works.
type Options struct {
	// MaxInstanceSeries caps the distinct instance_id label values
	// (default DefaultMaxInstanceSeries).
	MaxInstanceSeries int
	// MaxRoleSeries caps the distinct role label values
	// (default DefaultMaxRoleSeries).
	MaxRoleSeries int
	// ControlPlaneActions is the set of control-plane action names exported
	// as the action label; other names become "_unknown". Empty keeps the
	// first 64 names seen.
	ControlPlaneActions []string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Metrics holds frontdesk's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	// Data plane, resolved ahead of time so Request does not allocate.
	requests      *prometheus.CounterVec
	requestByCode [3][600]atomic.Pointer[prometheus.Counter] // [version][status]
	duration      [3]prometheus.Observer
	outcomes      [outcomeCount]prometheus.Counter
	tokensIssued  prometheus.Counter
	unknownCaller prometheus.Counter
	noToken       *prometheus.CounterVec
	noTokenReject *prometheus.CounterVec

	// Per-instance state of instances that made tokenless calls.
	instMu     sync.RWMutex
	instances  map[string]*instance
	labelled   int // instances exported under their own instance_id
	maxInst    int
	connReject prometheus.Counter

	// Everything else.
	snapRevision prometheus.Gauge
	instanceNum  prometheus.Gauge
	applyLatency prometheus.Histogram
	storeErrors  *prometheus.CounterVec
	watchLag     prometheus.Gauge
	reloads      prometheus.Counter
	storeOps     *labelSet
	credRefresh  *prometheus.CounterVec
	credExpiry   *prometheus.GaugeVec
	roles        *labelSet
	cpRequests   *prometheus.CounterVec
	cpActions    *labelSet
	cpCodes      *labelSet

	// IMDSv1 usage as stored (package usage).
	v1Instances   prometheus.Gauge
	v1Calls       prometheus.Gauge
	usageObserved prometheus.Gauge
	usageFlushes  *prometheus.CounterVec
	usageWritten  prometheus.Counter
}

// outcomeCount is the number of dataplane.Outcome values, with room to
// spare; unknown outcomes are counted as "other".
const outcomeCount = 16

var versionLabels = [3]string{"none", "1", "2"}

// New returns a Metrics with every metric registered in its own registry,
// together with the Go runtime and process collectors.
func New(opts Options) *Metrics {
	if opts.MaxInstanceSeries <= 0 {
		opts.MaxInstanceSeries = DefaultMaxInstanceSeries
	}
	if opts.MaxRoleSeries <= 0 {
		opts.MaxRoleSeries = DefaultMaxRoleSeries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		now:       opts.Now,
		instances: map[string]*instance{},
		maxInst:   opts.MaxInstanceSeries,
		storeOps:  newLabelSet(maxFreeLabels, nil, OtherLabel),
		roles:     newLabelSet(opts.MaxRoleSeries, nil, OtherLabel),
		cpCodes:   newLabelSet(maxFreeLabels, nil, OtherLabel),
	}
	if len(opts.ControlPlaneActions) > 0 {
		m.cpActions = newLabelSet(0, opts.ControlPlaneActions, UnknownActionLabel)
	} else {
		m.cpActions = newLabelSet(maxFreeLabels, nil, UnknownActionLabel)
	}

	r := registrar{m.reg}
	m.requests = r.counterVec("frontdesk_metadata_requests_total",
		"Metadata requests answered, by HTTP status (none: connection closed without an answer) and IMDS version (none: not established).",
		"status", "imds_version")
	duration := r.histogramVec("frontdesk_metadata_request_duration_seconds", "Time to answer a metadata request, by IMDS version.",
		[]float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}, "imds_version")
	for i, v := range versionLabels {
		m.duration[i] = duration.WithLabelValues(v)
	}
	outcomes := r.counterVec("frontdesk_metadata_outcomes_total",
		"Metadata requests by outcome (served, token_issued, unknown_caller, endpoint_disabled, forwarded, bad_token, no_token_rejected, throttled, other).",
		"outcome")
	for i := range m.outcomes {
		m.outcomes[i] = outcomes.WithLabelValues(dataplane.Outcome(i).String())
	}
	m.tokensIssued = r.counter("frontdesk_tokens_issued_total", "IMDSv2 session tokens issued.")
	m.unknownCaller = r.counter("frontdesk_unknown_callers_total", "Metadata requests from a source address that belongs to no instance.")
	m.noToken = r.counterVec("frontdesk_metadata_no_token_total",
		"Tokenless (IMDSv1) metadata requests answered with 200, as EC2's MetadataNoToken. Capped instance_id values, see package doc.",
		"instance_id")
	m.noTokenReject = r.counterVec("frontdesk_metadata_no_token_rejected_total",
		"Tokenless (IMDSv1) metadata requests refused with 401 because the instance requires tokens, as EC2's MetadataNoTokenRejected.",
		"instance_id")
	m.connReject = r.counter("frontdesk_connections_rejected_total",
		"Data plane connections closed without an answer: over every bound of the connection Guard (refusals within the bounds are answered 429).")

	m.snapRevision = r.gauge("frontdesk_snapshot_revision", "Store revision of the snapshot the data plane serves.")
	m.instanceNum = r.gauge("frontdesk_instances", "Instances in the snapshot the data plane serves.")
	m.applyLatency = r.histogram("frontdesk_snapshot_apply_seconds", "Time from a store change to the data plane serving it.",
		prometheus.ExponentialBuckets(.001, 2.5, 12)) // 1 ms .. ~60 s
	m.watchLag = r.gauge("frontdesk_watch_lag_revisions",
		"Store revisions the data plane's snapshot is behind the store, as of the last health probe.")
	m.reloads = r.counter("frontdesk_store_reloads_total",
		"Full reloads of the store after the watch history was compacted away (and the first load).")
	m.storeErrors = r.counterVec("frontdesk_store_errors_total", "Store operations that failed, by operation.", "op")
	m.credRefresh = r.counterVec("frontdesk_credential_refreshes_total",
		"Credential refreshes by role (_identity: instance identity credentials) and outcome (success, failure).", "role", "outcome")
	m.credExpiry = r.gaugeVec("frontdesk_credential_expiry_seconds", "Seconds until the cached credentials of a role expire.", "role")
	m.cpRequests = r.counterVec("frontdesk_controlplane_requests_total",
		"Control-plane API requests by action and EC2 error code (ok: success).", "action", "code")

	m.v1Instances = r.gauge("frontdesk_imds_v1_instances",
		"Instances of the fleet (every node) that made IMDSv1 calls in the last 24 hours, from the stored usage.")
	m.v1Calls = r.gauge("frontdesk_imds_v1_calls_24h",
		"IMDSv1 calls of the fleet (every node, answered and refused) in the last 24 hours, from the stored usage.")
	m.usageObserved = r.gauge("frontdesk_imds_v1_usage_observed_seconds",
		"How long IMDSv1 usage has been recorded (capped at the retention): a short history proves no instance quiet.")
	m.usageFlushes = r.counterVec("frontdesk_usage_flushes_total",
		"Batched writes of this node's IMDSv1 usage to the store, by outcome (success, failure).", "outcome")
	m.usageWritten = r.counter("frontdesk_usage_calls_written_total",
		"IMDSv1 calls this node has written to the store's usage records.")

	m.reg.MustRegister(
		// The live heap as of the last GC (go_gc_heap_live_bytes): what a
		// leak grows, without the garbage that heap_alloc also counts.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: liveHeapMetric})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// registrar makes collectors already registered in reg, one call each.
type registrar struct{ reg prometheus.Registerer }

func (r registrar) counter(name, help string) prometheus.Counter {
	return promauto.With(r.reg).NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func (r registrar) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return promauto.With(r.reg).NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func (r registrar) gauge(name, help string) prometheus.Gauge {
	return promauto.With(r.reg).NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func (r registrar) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return promauto.With(r.reg).NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func (r registrar) histogram(name, help string, buckets []float64) prometheus.Histogram {
	return promauto.With(r.reg).NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

func (r registrar) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return promauto.With(r.reg).NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

// Handler serves the registry in the Prometheus exposition formats, for
// GET /metrics on the control-plane listener.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// SnapshotApplied records that the data plane now serves the snapshot of
// store revision revision, holding instances instances, applyLatency after
// the change was made.
func (m *Metrics) SnapshotApplied(revision int64, instances int, applyLatency time.Duration) {
	m.snapRevision.Set(float64(revision))
	m.instanceNum.Set(float64(instances))
	m.applyLatency.Observe(max(applyLatency, 0).Seconds())
}

// WatchLag records how many revisions the snapshot is behind the store.
func (m *Metrics) WatchLag(revisions int64) { m.watchLag.Set(float64(max(revisions, 0))) }

// StoreReload counts a full reload of the store.
func (m *Metrics) StoreReload() { m.reloads.Inc() }

// StoreError counts a failed store operation. op should come from a small
// fixed set (e.g. "watch", "get", "update"); past 64 names it is "_other".
func (m *Metrics) StoreError(op string) {
	m.storeErrors.WithLabelValues(m.storeOps.value(op)).Inc()
}

// CredentialRefresh counts a credential refresh of role ("" for instance
// identity credentials). outcome is "success"; anything else counts as
// "failure".
func (m *Metrics) CredentialRefresh(role, outcome string) {
	if outcome != "success" {
		outcome = "failure"
	}
	m.credRefresh.WithLabelValues(m.roleLabel(role), outcome).Inc()
}

// CredentialExpiry sets the seconds until role's cached credentials expire
// ("" for instance identity credentials). Negative means already expired.
func (m *Metrics) CredentialExpiry(role string, secondsLeft float64) {
	m.credExpiry.WithLabelValues(m.roleLabel(role)).Set(secondsLeft)
}

// ForgetRole deletes the series of a role that is no longer used and frees
// its label slot. Roles counted under "_other" have nothing to delete.
func (m *Metrics) ForgetRole(role string) {
	if role == "" {
		role = IdentityRoleLabel
	}
	if !m.roles.forget(role) {
		return
	}
	m.credRefresh.DeletePartialMatch(prometheus.Labels{"role": role})
	m.credExpiry.DeleteLabelValues(role)
}

func (m *Metrics) roleLabel(role string) string {
	if role == "" {
		role = IdentityRoleLabel
	}
	return m.roles.value(role)
}

// ConnRejected counts a data plane connection refused by the connection cap.
func (m *Metrics) ConnRejected() { m.connReject.Inc() }

// ControlPlaneRequest counts a control-plane API request. code is the EC2
// error code, "" for success (exported as "ok").
func (m *Metrics) ControlPlaneRequest(action, code string) {
	if code == "" {
		code = "ok"
	} else {
		code = m.cpCodes.value(code)
	}
	m.cpRequests.WithLabelValues(m.cpActions.value(action), code).Inc()
}

// Observers returns one Observer that passes each event to every non-nil
// observer in order (for example the metrics and the audit log).
func Observers(obs ...dataplane.Observer) dataplane.Observer {
	var list tee
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	if len(list) == 1 {
		return list[0]
	}
	return list
}

type tee []dataplane.Observer

func (t tee) Request(r *http.Request, ev *dataplane.RequestEvent) {
	for _, o := range t {
		o.Request(r, ev)
	}
}

// FleetV1Usage sets the fleet's stored IMDSv1 usage of the last 24 hours:
// instances with calls, their calls, and how long usage has been observed.
func (m *Metrics) FleetV1Usage(instances int, calls int64, observed time.Duration) {
	m.v1Instances.Set(float64(instances))
	m.v1Calls.Set(float64(calls))
	m.usageObserved.Set(observed.Seconds())
}

// UsageFlush counts one batched write of IMDSv1 usage that wrote calls.
func (m *Metrics) UsageFlush(calls int64, err error) {
	m.usageWritten.Add(float64(calls))
	outcome := "success"
	if err != nil {
		outcome = "failure"
	}
	m.usageFlushes.WithLabelValues(outcome).Inc()
}
