package main

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/frontdesk-imds/frontdesk/internal/metrics"
)

// version is set at link time by release builds
// (-ldflags "-X main.version=v1.2.3"); otherwise the module version that
// `go install ...@vX` records, or "devel" for a build from a checkout.
var version = ""

// buildInfo says which build this is: version, VCS revision (with
// "-dirty" for a modified tree) and Go version.
func buildInfo() metrics.Build {
	b := metrics.Build{Version: version, Revision: "unknown", GoVersion: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if ok {
		b.GoVersion = info.GoVersion
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		var dirty bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && b.Revision != "unknown" {
			b.Revision += "-dirty"
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

func (b buildString) String() string {
	return fmt.Sprintf("frontdesk %s (revision %s, %s)", b.Version, b.Revision, b.GoVersion)
}

type buildString metrics.Build

func cmdVersion(_ context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] != "-h" && args[0] != "--help" {
		return usageErr("version: unexpected argument %q", args[0])
	}
	if len(args) > 0 {
		fmt.Fprintln(e.stdout, "usage: frontdesk version\n\nPrints the version, VCS revision and Go version of this binary (also: frontdesk --version).")
		return nil
	}
	_, err := fmt.Fprintln(e.stdout, buildString(buildInfo()))
	return err
}
