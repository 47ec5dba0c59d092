package console

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/usage"
)

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	CSRF     string
	Notice   string
	Error    string
	Window   string
	Windows  []string
	Observed string
	Covers   bool
}

// The windows a page can look back over; "safe" always means no IMDSv1
// call in the chosen window, watched whole.
var windows = []struct {
	name string
	d    time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"14d", 14 * 24 * time.Hour}}

const chartDays = 14

func windowOf(r *http.Request) (string, time.Duration) {
	v := r.URL.Query().Get("window")
	if v == "" {
		v = r.PostFormValue("window")
	}
	for _, w := range windows {
		if w.name == v {
			return w.name, w.d
		}
	}
	return "24h", 24 * time.Hour
}

func (c *Console) base(r *http.Request, rc reqCtx, title, nav string, rep *usage.Report) page {
	p := page{Title: title, Nav: nav, CSRF: rc.csrf, Notice: r.URL.Query().Get("notice")}
	p.Window, _ = windowOf(r)
	for _, w := range windows {
		p.Windows = append(p.Windows, w.name)
	}
	if rep != nil {
		p.Observed = human(rep.Now.Sub(rep.ObservedSince))
		if rep.ObservedSince.IsZero() {
			p.Observed = "never"
		}
		p.Covers = rep.Covers()
	}
	return p
}

// row is one instance as the console lists it.
type row struct {
	ID, Name, State, Tokens, Endpoint string
	Tags                              []imds.Tag
	Live                              bool
}

// rowFields are the fields of a stored instance the list needs; decoding
// only them costs a fraction of a whole instance.
type rowFields struct {
	InstanceID      string     `json:"instanceId"`
	State           string     `json:"state"`
	Tags            []imds.Tag `json:"tags"`
	MetadataOptions struct {
		HttpTokens   string `json:"httpTokens"`
		HttpEndpoint string `json:"httpEndpoint"`
	} `json:"metadataOptions"`
}

func (c *Console) rows(ctx context.Context) ([]row, error) {
	v, err := c.memo("rows", func() (any, error) {
		var out []row
		err := c.store.View(ctx, func(tx imds.Tx) error {
			return imds.ScanInstanceValues(tx, func(b []byte) error {
				var f rowFields
				if err := json.Unmarshal(b, &f); err != nil {
					return fmt.Errorf("decode instance: %w", err)
				}
				rw := row{ID: f.InstanceID, State: f.State, Tokens: f.MetadataOptions.HttpTokens, Endpoint: f.MetadataOptions.HttpEndpoint,
					Tags: f.Tags, Live: f.State != imds.StateTerminated}
				for _, t := range f.Tags {
					if t.Key == "Name" {
						rw.Name = t.Value
					}
				}
				out = append(out, rw)
				return nil
			})
		})
		return out, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]row), nil
}

func (c *Console) report(r *http.Request, d time.Duration) (*usage.Report, error) {
	v, err := c.memo("usage/"+d.String(), func() (any, error) { return c.usage.Report(r.Context(), d) })
	if err != nil {
		return nil, err
	}
	return v.(*usage.Report), nil
}

// Verdicts.
const (
	verdictCompliant = "compliant"
	verdictActive    = "uses IMDSv1"
	verdictSafe      = "safe to require"
	verdictUnknown   = "not enough history"
	verdictGone      = "terminated"
)

func verdict(rw row, s usage.Summary, rep *usage.Report) string {
	switch {
	case !rw.Live:
		return verdictGone
	case rw.Tokens == imds.Required:
		return verdictCompliant
	case s.Calls > 0:
		return verdictActive
	case rep.Covers():
		return verdictSafe
	}
	return verdictUnknown
}

// listed is a row with its usage, for the templates.
type listed struct {
	row
	Verdict     string
	Calls       int64
	Rejected    int64
	LastCall    time.Time
	LastUA      string
	LastPath    string
	TopAgent    string
	TopPath     string
	Sparkline   template.HTML
	Safe, Quiet bool
}

func list(rw row, s usage.Summary, rep *usage.Report) listed {
	l := listed{row: rw, Verdict: verdict(rw, s, rep), Calls: s.Calls, Rejected: s.Rejected, LastCall: s.LastCall, LastUA: s.LastUserAgent, LastPath: s.LastPath}
	if len(s.Agents) > 0 {
		l.TopAgent = s.Agents[0].Value
	}
	if len(s.Paths) > 0 {
		l.TopPath = s.Paths[0].Value
	}
	l.Safe = l.Verdict == verdictSafe
	return l
}

type overviewData struct {
	page
	Total, Required, Optional, Active, Safe, Unknown int
	Chart                                            template.HTML
	ChartTotal                                       int64
	Top                                              []listed
	Defaults                                         imds.AccountDefaults
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	_, win := windowOf(r)
	rep, err := c.report(r, win)
	if err != nil {
		c.fail(w, err)
		return
	}
	hist, err := c.report(r, chartDays*24*time.Hour)
	if err != nil {
		c.fail(w, err)
		return
	}
	rows, err := c.rows(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	var d imds.AccountDefaults
	if err := c.store.View(r.Context(), func(tx imds.Tx) error { var err error; d, err = imds.GetDefaults(tx); return err }); err != nil {
		c.fail(w, err)
		return
	}
	data := overviewData{page: c.base(r, rc, "Overview", "overview", rep), Defaults: d}
	live := map[string]bool{}
	for _, rw := range rows {
		if !rw.Live {
			continue
		}
		live[rw.ID] = true
		data.Total++
		s, _ := rep.Get(rw.ID)
		switch verdict(rw, s, rep) {
		case verdictCompliant:
			data.Required++
		case verdictActive:
			data.Optional++
			data.Active++
		case verdictSafe:
			data.Optional++
			data.Safe++
		default:
			data.Optional++
			data.Unknown++
		}
	}
	days := daily(hist, chartDays)
	for _, n := range days {
		data.ChartTotal += n
	}
	data.Chart = barChart(days, hist.Now)
	byID := map[string]row{}
	for _, rw := range rows {
		byID[rw.ID] = rw
	}
	for _, s := range rep.Instances {
		if s.Calls+s.Rejected == 0 || !live[s.InstanceID] {
			continue
		}
		data.Top = append(data.Top, list(byID[s.InstanceID], s, rep))
	}
	slices.SortFunc(data.Top, func(a, b listed) int { return cmp.Compare(b.Calls+b.Rejected, a.Calls+a.Rejected) })
	if len(data.Top) > 10 {
		data.Top = data.Top[:10]
	}
	c.render(w, http.StatusOK, "overview", data)
}

// daily sums a report's hours into its last n days, oldest first (today
// last, partly elapsed).
func daily(rep *usage.Report, n int) []int64 {
	out := make([]int64, n)
	today := rep.Now.UTC().Truncate(24 * time.Hour)
	for _, s := range rep.Instances {
		for i, v := range s.Hourly {
			t := rep.Start.Add(time.Duration(i) * time.Hour)
			d := int(today.Sub(t.Truncate(24*time.Hour)) / (24 * time.Hour))
			if d >= 0 && d < n {
				out[n-1-d] += v
			}
		}
	}
	return out
}

type listData struct {
	page
	Rows                 []listed
	Total, Page, Pages   int
	State, Tokens, Tag   string
	Safe                 bool
	Prev, Next           string
	States, TokenChoices []string
}

func (c *Console) instances(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	_, win := windowOf(r)
	rep, err := c.report(r, win)
	if err != nil {
		c.fail(w, err)
		return
	}
	hist, err := c.report(r, chartDays*24*time.Hour)
	if err != nil {
		c.fail(w, err)
		return
	}
	rows, err := c.rows(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	q := r.URL.Query()
	data := listData{page: c.base(r, rc, "Instances", "instances", rep), State: q.Get("state"), Tokens: q.Get("tokens"), Tag: strings.TrimSpace(q.Get("tag")), Safe: q.Get("safe") == "1",
		States: []string{"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}, TokenChoices: []string{imds.Optional, imds.Required}}
	tagKey, tagVal, tagHasVal := strings.Cut(data.Tag, "=")
	var match []row
	for _, rw := range rows {
		if data.State == "" && !rw.Live {
			continue // terminated instances only when asked for
		}
		if data.State != "" && rw.State != data.State {
			continue
		}
		if data.Tokens != "" && rw.Tokens != data.Tokens {
			continue
		}
		if data.Tag != "" && !hasTag(rw.Tags, tagKey, tagVal, tagHasVal) {
			continue
		}
		if data.Safe {
			s, _ := rep.Get(rw.ID)
			if verdict(rw, s, rep) != verdictSafe {
				continue
			}
		}
		match = append(match, rw)
	}
	data.Total = len(match)
	size := c.opts.PageSize
	data.Pages = max(1, (len(match)+size-1)/size)
	data.Page, _ = strconv.Atoi(q.Get("page"))
	data.Page = min(max(data.Page, 1), data.Pages)
	from := (data.Page - 1) * size
	for _, rw := range match[from:min(from+size, len(match))] {
		s, _ := rep.Get(rw.ID)
		l := list(rw, s, rep)
		h, _ := hist.Get(rw.ID)
		l.Sparkline = sparkline(dailyOf(hist, h, chartDays))
		data.Rows = append(data.Rows, l)
	}
	link := func(p int) string {
		v := url.Values{}
		for _, k := range []string{"state", "tokens", "tag", "safe", "window"} {
			if x := q.Get(k); x != "" {
				v.Set(k, x)
			}
		}
		v.Set("page", strconv.Itoa(p))
		return "/console/instances?" + v.Encode()
	}
	if data.Page > 1 {
		data.Prev = link(data.Page - 1)
	}
	if data.Page < data.Pages {
		data.Next = link(data.Page + 1)
	}
	c.render(w, http.StatusOK, "instances", data)
}

func hasTag(tags []imds.Tag, k, v string, withValue bool) bool {
	for _, t := range tags {
		if t.Key == k && (!withValue || t.Value == v) {
			return true
		}
	}
	return false
}

func dailyOf(rep *usage.Report, s usage.Summary, n int) []int64 {
	one := *rep
	one.Instances = []usage.Summary{s}
	return daily(&one, n)
}

type instanceData struct {
	page
	listed
	Instance *imds.Instance
	Options  imds.MetadataOptions
	Agents   []imds.UsageCount
	Paths    []imds.UsageCount
	Chart    template.HTML
	Tokens   string
}

func (c *Console) loadInstance(w http.ResponseWriter, r *http.Request, rc reqCtx, title string) (*instanceData, bool) {
	id := r.PathValue("id")
	var in *imds.Instance
	err := c.store.View(r.Context(), func(tx imds.Tx) error {
		var err error
		in, err = imds.GetInstance(tx, id)
		return err
	})
	if errors.Is(err, imds.ErrNotFound) {
		http.NotFound(w, r)
		return nil, false
	}
	if err != nil {
		c.fail(w, err)
		return nil, false
	}
	_, win := windowOf(r)
	rep, err := c.usage.Report(r.Context(), win) // fresh: this page leads to a change
	if err != nil {
		c.fail(w, err)
		return nil, false
	}
	hist, err := c.report(r, chartDays*24*time.Hour)
	if err != nil {
		c.fail(w, err)
		return nil, false
	}
	name, _ := in.TagValue("Name")
	rw := row{ID: in.InstanceID, Name: name, State: in.State, Tokens: in.MetadataOptions.HttpTokens, Endpoint: in.MetadataOptions.HttpEndpoint, Tags: in.Tags, Live: in.Live()}
	s, _ := rep.Get(id)
	h, _ := hist.Get(id)
	d := &instanceData{page: c.base(r, rc, title+" "+id, "instances", rep), listed: list(rw, s, rep), Instance: in, Options: in.MetadataOptions,
		Agents: s.Agents, Paths: s.Paths, Chart: barChart(dailyOf(hist, h, chartDays), hist.Now), Tokens: in.MetadataOptions.HttpTokens}
	return d, true
}

func (c *Console) instance(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	if d, ok := c.loadInstance(w, r, rc, "Instance"); ok {
		c.render(w, http.StatusOK, "instance", d)
	}
}

func (c *Console) confirmRequire(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	if d, ok := c.loadInstance(w, r, rc, "Require IMDSv2 on"); ok {
		c.render(w, http.StatusOK, "confirm", d)
	}
}

func (c *Console) doRequire(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	id := r.PathValue("id")
	back := "/console/instances/" + url.PathEscape(id)
	if r.PostForm.Get("confirm") != "yes" {
		redirect(w, r, back+"/require", "")
		return
	}
	_, err := c.actions.ModifyMetadataOptions(r.Context(), rc.principal, controlplane.MetadataOptionsInput{InstanceID: id, HttpTokens: imds.Required})
	c.forget()
	if err != nil {
		c.actionFailed(w, r, back, err)
		return
	}
	redirect(w, r, back, "IMDSv2 is now required on "+id+". Its IMDSv1 calls are refused with 401.")
}

func (c *Console) actionFailed(w http.ResponseWriter, r *http.Request, back string, err error) {
	var ae *controlplane.ActionError
	if errors.As(err, &ae) {
		redirect(w, r, back, "Not changed: "+ae.Code+": "+ae.Message)
		return
	}
	c.fail(w, err)
}

type bulkData struct {
	page
	Rows []listed
}

// safeRows lists the live instances that are safe to require now, from a
// fresh report.
func (c *Console) safeRows(r *http.Request) ([]listed, *usage.Report, error) {
	_, win := windowOf(r)
	rep, err := c.usage.Report(r.Context(), win)
	if err != nil {
		return nil, nil, err
	}
	c.forget()
	rows, err := c.rows(r.Context())
	if err != nil {
		return nil, nil, err
	}
	var out []listed
	for _, rw := range rows {
		s, _ := rep.Get(rw.ID)
		if l := list(rw, s, rep); l.Safe {
			out = append(out, l)
		}
	}
	return out, rep, nil
}

func (c *Console) confirmBulk(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	rows, rep, err := c.safeRows(r)
	if err != nil {
		c.fail(w, err)
		return
	}
	c.render(w, http.StatusOK, "bulk", bulkData{page: c.base(r, rc, "Require IMDSv2 on every safe instance", "overview", rep), Rows: rows})
}

func (c *Console) doBulk(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	win, _ := windowOf(r)
	if r.PostForm.Get("confirm") != "yes" {
		redirect(w, r, "/console/bulk?window="+win, "")
		return
	}
	// Decided again now: an instance that made a call since the
	// confirmation page was shown is left alone.
	rows, _, err := c.safeRows(r)
	if err != nil {
		c.fail(w, err)
		return
	}
	var done, failed int
	for _, l := range rows {
		if _, err := c.actions.ModifyMetadataOptions(r.Context(), rc.principal, controlplane.MetadataOptionsInput{InstanceID: l.ID, HttpTokens: imds.Required}); err != nil {
			c.log.Warn("console bulk require failed", "instance", l.ID, "err", err)
			failed++
			continue
		}
		done++
	}
	c.forget()
	msg := fmt.Sprintf("IMDSv2 required on %d safe %s.", done, plural(done, "instance", "instances"))
	if failed > 0 {
		msg += fmt.Sprintf(" %d failed; see the daemon's log.", failed)
	}
	redirect(w, r, "/console/?window="+win, msg)
}

func (c *Console) setDefaults(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	in := controlplane.MetadataDefaultsInput{}
	switch f, v := r.PostForm.Get("field"), r.PostForm.Get("value"); f {
	case "HttpTokens":
		in.HttpTokens = v
	case "HttpTokensEnforced":
		in.HttpTokensEnforced = v
	default:
		http.Error(w, "unknown setting", http.StatusBadRequest)
		return
	}
	err := c.actions.ModifyMetadataDefaults(r.Context(), rc.principal, in)
	c.forget()
	if err != nil {
		c.actionFailed(w, r, "/console/", err)
		return
	}
	redirect(w, r, "/console/", "Account defaults changed.")
}

type auditData struct {
	page
	Changes []imds.ChangeRecord
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, rc reqCtx) {
	var all []imds.ChangeRecord
	if err := c.store.View(r.Context(), func(tx imds.Tx) error {
		return imds.ListChanges(tx, func(cr imds.ChangeRecord) error { all = append(all, cr); return nil })
	}); err != nil {
		c.fail(w, err)
		return
	}
	slices.Reverse(all)
	if len(all) > 500 {
		all = all[:500]
	}
	c.render(w, http.StatusOK, "audit", auditData{page: c.base(r, rc, "Audit trail", "audit", nil), Changes: all})
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// human prints a duration the way a person would say it.
func human(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}
