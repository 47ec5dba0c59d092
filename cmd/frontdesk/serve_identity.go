package main

import (
	"net/http"
	"strconv"

	"github.com/frontdesk-imds/frontdesk/internal/identity"
)

// identityCertificatesPath is the control plane's unauthenticated route for
// the identity-document certificates: they are public (AWS publishes its
// own), and a client verifying a document must be able to fetch them while
// the daemon runs, which the bolt file lock rules out for --data-dir.
const identityCertificatesPath = "/identity/certificates"

// identityCertificatesHandler answers GET /identity/certificates with the
// PEM that `frontdesk identity certificates` prints.
func identityCertificatesHandler(s *identity.Signer) http.Handler {
	body := s.CertificatesPEM()
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
}
