package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestGetDoesTheTokenFlow(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--demo") // demo requires IMDSv2
	cases := []struct {
		name, path, want string
	}{
		{"leaf", "meta-data/instance-id", demoInstanceID + "\n"},
		{"leading_latest_accepted", "/latest/meta-data/placement/region", "us-east-1\n"},
		{"listing", "meta-data/public-keys/", "0=demo-key\n"},
		{"user_data", "user-data", demoUserData + "\n"},
		{"dynamic", "dynamic/instance-identity/", "rsa2048\npkcs7\ndocument\nsignature\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"frontdesk", "get", "--endpoint", d.dataURL, c.path}, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
			if err != nil {
				t.Fatalf("%v (%s)", err, errb.String())
			}
			if out.String() != c.want {
				t.Fatalf("got %q, want %q", out.String(), c.want)
			}
		})
	}
	t.Run("missing_path_fails_with_404", func(t *testing.T) {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"frontdesk", "get", "--endpoint", d.dataURL, "meta-data/nope"}, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err %v, want a 404 error", err)
		}
	})
	t.Run("bad_path_is_a_usage_error", func(t *testing.T) {
		err := run(context.Background(), []string{"frontdesk", "get", "--endpoint", d.dataURL, "etc/passwd"}, func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if exitCode(err) != 2 {
			t.Fatalf("err %v, want exit 2", err)
		}
	})
}
