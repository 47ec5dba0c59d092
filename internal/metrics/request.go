package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
)

// instance is the state kept for an instance that made tokenless calls.
type instance struct {
	labelled bool // exported under its own instance_id, not "_other"
	noToken  prometheus.Counter
	rejected prometheus.Counter
}

// Request records one answered metadata request; it implements
// dataplane.Observer. It runs on every metadata request: an IMDSv2 request
// costs a few atomic adds and no allocation. Only tokenless (IMDSv1)
// requests touch per-instance state.
//
// frontdesk_metadata_no_token_total counts tokenless requests answered with
// 200, because EC2's MetadataNoToken counts calls that "successfully
// reached" IMDS; a tokenless 404 is not counted there (EC2's documentation
// leaves it open; docs/behaviour.md, "IMDSv1 usage"). Durable IMDSv1 usage
// per instance, which does count it, is kept by package usage. HEAD
// requests answered with 200
// count like GETs.
func (m *Metrics) Request(r *http.Request, ev *dataplane.RequestEvent) {
	v := ev.IMDSVersion
	if v < 0 || v > 2 {
		v = 0
	}
	m.requestCounter(v, ev.Status).Inc()
	m.duration[v].Observe(ev.Duration.Seconds())
	o := int(ev.Outcome)
	if o >= len(m.outcomes) {
		o = int(dataplane.OutcomeOther)
	}
	m.outcomes[o].Inc()
	switch ev.Outcome {
	case dataplane.OutcomeTokenIssued:
		m.tokensIssued.Inc()
	case dataplane.OutcomeUnknownCaller:
		m.unknownCaller.Inc()
	}
	if v == 1 && ev.InstanceID != "" {
		m.tokenless(r, ev)
	}
}

// requestCounter returns the requests_total child of (version, status),
// resolving it on first use. Reads are a single atomic load.
func (m *Metrics) requestCounter(version, status int) prometheus.Counter {
	if status < 100 || status >= len(m.requestByCode[0]) {
		status = 0
	}
	slot := &m.requestByCode[version][status]
	if c := slot.Load(); c != nil {
		return *c
	}
	label := "none"
	if status != 0 {
		label = strconv.Itoa(status)
	}
	c := m.requests.WithLabelValues(label, versionLabels[version])
	slot.Store(&c)
	return c
}

func (m *Metrics) tokenless(_ *http.Request, ev *dataplane.RequestEvent) {
	in := m.instance(ev.InstanceID)
	rejected := ev.Outcome == dataplane.OutcomeNoTokenRejected
	switch {
	case rejected:
		in.rejected.Inc()
	case ev.Outcome == dataplane.OutcomeServed && ev.Status == http.StatusOK:
		in.noToken.Inc()
	}
}

// instance returns id's state, creating it (and its series) on first use.
func (m *Metrics) instance(id string) *instance {
	m.instMu.RLock()
	in := m.instances[id]
	m.instMu.RUnlock()
	if in != nil {
		return in
	}
	m.instMu.Lock()
	defer m.instMu.Unlock()
	if in := m.instances[id]; in != nil {
		return in
	}
	label := OtherLabel
	in = &instance{}
	if m.labelled < m.maxInst {
		label, in.labelled = id, true
		m.labelled++
	}
	in.noToken = m.noToken.WithLabelValues(label)
	in.rejected = m.noTokenReject.WithLabelValues(label)
	m.instances[id] = in
	return in
}

// ForgetInstance deletes everything kept about an instance: its
// instance_id series and its IMDSv1 usage. Call it when an instance is
// terminated or no longer served, so series and memory follow the live
// fleet. Calls already counted under "_other" stay there.
func (m *Metrics) ForgetInstance(id string) {
	m.instMu.Lock()
	defer m.instMu.Unlock()
	m.forgetLocked(id)
}

// KeepInstances forgets (as ForgetInstance) every tracked instance for
// which keep returns false; call it after each snapshot swap with a lookup
// in the new snapshot.
func (m *Metrics) KeepInstances(keep func(id string) bool) {
	m.instMu.Lock()
	defer m.instMu.Unlock()
	for id := range m.instances {
		if !keep(id) {
			m.forgetLocked(id)
		}
	}
}

func (m *Metrics) forgetLocked(id string) {
	in, ok := m.instances[id]
	if !ok {
		return
	}
	delete(m.instances, id)
	if in.labelled {
		m.labelled--
		m.noToken.DeleteLabelValues(id)
		m.noTokenReject.DeleteLabelValues(id)
	}
}
