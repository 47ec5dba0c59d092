package controlplane

import (
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// routes is the whole HTTP surface of the control plane.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// EC2 accepts the Query API as a form POST and as a GET with a query
	// string (presigned URLs use the latter).
	mux.HandleFunc("POST /{$}", s.serveQuery)
	mux.HandleFunc("GET /{$}", s.serveQuery)
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	for pattern, h := range s.opts.ExtraRoutes {
		mux.Handle(pattern, h)
	}
	return mux
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

// handleReadyz answers 200 when Ready is nil and lists every component of
// Health on its own line ("store: ok", "store: unavailable: <reason>").
// With ?component=NAME it answers for that component alone: 200 when
// healthy, 503 when not, 404 when Health does not report it.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var health map[string]error
	if s.opts.Health != nil {
		health = s.opts.Health.Components()
	}
	if r.URL.Query().Has("component") {
		comp := r.URL.Query().Get("component")
		err, known := health[comp]
		switch {
		case !known:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "unknown component "+strconv.Quote(comp)+"\n")
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, componentLine(comp, err))
		default:
			_, _ = io.WriteString(w, componentLine(comp, nil))
		}
		return
	}
	var b strings.Builder
	status := http.StatusOK
	if s.opts.Health != nil {
		if err := s.opts.Health.Ready(); err != nil {
			status = http.StatusServiceUnavailable
			b.WriteString("not ready: " + err.Error() + "\n")
		}
	}
	if len(health) == 0 {
		if status == http.StatusOK {
			b.WriteString("ok")
		}
	} else {
		names := make([]string, 0, len(health))
		for n := range health {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			b.WriteString(componentLine(n, health[n]))
		}
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, b.String())
}

func componentLine(name string, err error) string {
	if err != nil {
		return name + ": unavailable: " + err.Error() + "\n"
	}
	return name + ": ok\n"
}
