// Command baseline is the yardstick of the benchmark harness: the least an
// HTTP server written with net/http can do for one IMDS-shaped request. It
// answers every method and path with the same small constant body and, like
// IMDS, closes every connection, so the harness can report frontdesk's
// throughput and latency as a ratio to what net/http itself costs on the
// same machine in the same run.
//
// It prints "baseline: http://ADDR" and then "ready" on stdout, and serves
// until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// bodyText is the size of a typical leaf answer (an instance id).
const bodyText = "i-0123456789abcdef0"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The same server settings as frontdesk's data plane, so the comparison
	// is between handlers, not between server configurations.
	srv := &http.Server{
		Handler:           handler(),
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	fmt.Printf("baseline: http://%s\nready\n", l.Addr())

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shut)
}

// handler writes the constant answer with IMDS's framing headers.
func handler() http.Handler {
	body := []byte(bodyText)
	length := []string{strconv.Itoa(len(body))}
	closeHdr := []string{"close"}
	ctype := []string{"text/plain"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Connection"] = closeHdr
		h["Content-Type"] = ctype
		h["Content-Length"] = length
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}
