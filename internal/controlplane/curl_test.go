//go:build integration

package controlplane

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCurlAwsSigV4CallsExtensionActions checks the way EXTENSIONS.md tells
// operators to call extension actions: curl's --aws-sigv4.
func TestCurlAwsSigV4CallsExtensionActions(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed (apt-get install curl; scripts/test.sh does it)")
	}
	e := newEnv(t, nil)
	id := *e.launch("192.0.2.1", nil).InstanceId
	out, err := exec.Command(curl, "-sS", "--fail-with-body",
		"--aws-sigv4", "aws:amz:us-east-1:ec2",
		"--user", testCreds.AccessKeyID+":"+testCreds.SecretAccessKey,
		"--data-urlencode", "Action="+ActionSetTargetLifecycleState,
		"--data-urlencode", "Version=2016-11-15",
		"--data-urlencode", "InstanceId="+id,
		"--data-urlencode", "State=InService",
		e.url+"/").CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "option --aws-sigv4") || strings.Contains(string(out), "fail-with-body") {
			t.Fatalf("curl is too old for --aws-sigv4 (7.75 or later needed): %s", out)
		}
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<return>true</return>") {
		t.Fatalf("answer %s", out)
	}
	if got := e.stored(id).Events.TargetLifecycleState; got != "InService" {
		t.Fatalf("state %q", got)
	}
}
