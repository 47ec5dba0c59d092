package main

import (
	"strings"
	"testing"
)

func TestServeDockerFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--docker", "not a url"}, "--docker: "},
		{[]string{"--docker", "unix:///run/docker.sock", "--docker-tlscert", "c.pem"}, "TLS files need a tcp:// host"},
	} {
		args := append([]string{"serve", "--store", "memory", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"}, tc.args...)
		r := cliRun(t, "", args...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want an error containing %q", tc.args, r.err, tc.want)
		}
	}
}
