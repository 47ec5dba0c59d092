package dataplane

import (
	"net/http"
	"time"
)

// NewHTTPServer returns an http.Server set up for the data plane: the
// connection context the hop limit needs, and timeouts tight enough that a
// slow client cannot hold a connection (IMDS answers are small and IMDS
// closes every connection).
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}
