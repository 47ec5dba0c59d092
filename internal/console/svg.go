package console

import (
	"fmt"
	"html"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Charts are inline SVG written here from numbers and escaped labels only,
// which is why they may be handed to the templates as template.HTML.

// barChart draws one bar per day (oldest first, the last one today).
func barChart(days []int64, now time.Time) template.HTML {
	const w, h, left, right, bottom, top = 900, 190, 40, 24, 22, 10
	var peak int64 = 1
	for _, v := range days {
		peak = max(peak, v)
	}
	n := len(days)
	slot := float64(w-left-right) / float64(n)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="IMDSv1 calls per day, last %d days" xmlns="http://www.w3.org/2000/svg">`, w, h, n)
	plot := float64(h - bottom - top)
	for _, frac := range []float64{0, 0.5, 1} {
		y := float64(top) + plot*(1-frac)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>`, left, y, w-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="axis" text-anchor="end">%g</text>`, left-6, y+4, frac*float64(peak))
	}
	today := now.UTC().Truncate(24 * time.Hour)
	for i, v := range days {
		bh := plot * float64(v) / float64(peak)
		x := float64(left) + float64(i)*slot + slot*0.15
		day := today.AddDate(0, 0, i-(n-1))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="bar"><title>%s: %d IMDSv1 %s</title></rect>`,
			x, float64(top)+plot-bh, slot*0.7, max(bh, 0), day.Format("Jan 2"), v, callWord(v))
		if i%2 == (n-1)%2 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>`, x+slot*0.35, h-6, html.EscapeString(day.Format("Jan 2")))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// sparkline draws a small line of daily counts.
func sparkline(days []int64) template.HTML {
	const w, h = 112, 24
	var peak int64
	for _, v := range days {
		peak = max(peak, v)
	}
	var pts strings.Builder
	for i, v := range days {
		x := float64(i) * float64(w-2) / float64(max(len(days)-1, 1))
		y := float64(h - 2)
		if peak > 0 {
			y = float64(h-2) - float64(h-4)*float64(v)/float64(peak)
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", x+1, y)
	}
	class := "spark"
	if peak > 0 {
		class = "spark hot"
	}
	return template.HTML(fmt.Sprintf(`<svg class="%s" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="IMDSv1 calls per day, last %d days" xmlns="http://www.w3.org/2000/svg"><polyline points="%s"/></svg>`,
		class, w, h, w, h, len(days), strings.TrimSpace(pts.String())))
}

func callWord(n int64) string {
	if n == 1 {
		return "call"
	}
	return "calls"
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"tags": func(ts []imds.Tag) string {
		var parts []string
		for _, t := range ts {
			if t.Key != "Name" {
				parts = append(parts, t.Key+"="+t.Value)
			}
		}
		return strings.Join(parts, ", ")
	},
	"join": strings.Join,
	"kv": func(m map[string]string) string {
		var parts []string
		for k, v := range m {
			parts = append(parts, k+"="+v)
		}
		slices.Sort(parts)
		return strings.Join(parts, ", ")
	},
	"cls":  func(v string) string { return strings.ReplaceAll(v, " ", "-") },
	"list": func(v ...string) []string { return v },
}
