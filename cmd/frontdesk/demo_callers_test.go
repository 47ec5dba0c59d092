package main

import (
	"slices"
	"strings"
	"testing"
)

// A caller at 127.0.0.2 holds no instance's address: the demo instance is
// bound to 127.0.0.1 and ::1. With --demo-callers covering it, it is served
// the demo instance, as a container's bridge address would be.
func TestDemoCallersServeTheDemoInstanceToARange(t *testing.T) {
	t.Parallel()
	plain := startDaemon(t, t.TempDir(), "--store", "memory", "--demo", "--demo-http-tokens", "optional")
	if status, _ := plain.guestGet(t, "127.0.0.2", "/latest/meta-data/instance-id", ""); status != 404 {
		t.Fatalf("without --demo-callers a caller at 127.0.0.2: %d, want 404", status)
	}

	d := startDaemon(t, t.TempDir(), "--store", "memory", "--demo", "--demo-callers", "127.0.0.2/32, 2001:db8::/32")
	tok := d.guestToken(t, "127.0.0.2")
	if status, body := d.guestGet(t, "127.0.0.2", "/latest/meta-data/instance-id", tok); status != 200 || body != demoInstanceID {
		t.Fatalf("with --demo-callers, 127.0.0.2: %d %q", status, body)
	}
	if status, _ := d.guestGet(t, "127.0.0.2", "/latest/meta-data/instance-id", ""); status != 401 {
		t.Fatalf("the range gets the demo instance's rules too (IMDSv2 required): %d, want 401", status)
	}
	if status, _ := d.guestGet(t, "127.0.0.3", "/latest/meta-data/instance-id", ""); status != 404 {
		t.Fatalf("a caller outside the ranges: %d, want 404", status)
	}
}

func TestDemoCallersFlagIsChecked(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"needs_demo":   {[]string{"--store", "memory", "--demo-callers", "0.0.0.0/0"}, "--demo-callers needs --demo"},
		"bad_range":    {[]string{"--store", "memory", "--demo", "--demo-callers", "0.0.0.0/0,10.0.0.1"}, `"10.0.0.1" is not a CIDR range`},
		"empty_member": {[]string{"--store", "memory", "--demo", "--demo-callers", "0.0.0.0/0,"}, "is not a CIDR range"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := demoCallerRanges(slices.Contains(c.args, "--demo"), c.args[len(c.args)-1])
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	got, err := demoCallerRanges(true, "198.51.100.7/24,::/0")
	if err != nil || len(got) != 2 || got[0].Prefix.String() != "198.51.100.0/24" || got[1].InstanceID != demoInstanceID {
		t.Fatalf("ranges %+v, %v", got, err)
	}
}
