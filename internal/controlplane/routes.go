package controlplane

import (
	"io"
	"net/http"
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

func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+err.Error())
			return
		}
	}
	_, _ = io.WriteString(w, "ok")
}
