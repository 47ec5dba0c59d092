package imdstest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/frontdesk-imds/frontdesk/imdstest"
)

// BenchmarkStart is what a test pays for a server: start, first credentials,
// close. BenchmarkHTTPTestServer is the floor, an empty httptest server.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		s, err := imdstest.Start()
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

func BenchmarkHTTPTestServer(b *testing.B) {
	for b.Loop() {
		httptest.NewServer(http.NotFoundHandler()).Close()
	}
}
