package main

import (
	"flag"
	"fmt"
	"io"
	"net"
)

const serveSynopsis = "frontdesk serve [flags]"

const serveAbout = `Runs the data plane (IMDS, what guests call at 169.254.169.254) and the control
plane (the EC2 Query API, /metrics, /healthz, /readyz). With --demo it registers one
instance bound to 127.0.0.1 and ::1, so curl on this machine is its guest.

Instances get their metadata options from, in order: the value given at launch
(RunInstances, frontdesk instances run), the account defaults (frontdesk defaults set),
and EC2's defaults (HttpTokens=required, hop limit 2, endpoint enabled).

Environment for the operator commands: FRONTDESK_ENDPOINT (control plane URL) and
FRONTDESK_DATA_DIR (where admin.credentials is).`

// serveUsage prints serve's synopsis, what it does, and every flag.
func serveUsage(fs *flag.FlagSet) func(io.Writer) {
	return func(w io.Writer) { printUsage(w, fs, serveSynopsis, serveAbout) }
}

// validate refuses, before anything starts, every flag value that cannot
// work, naming the flag.
func (c *serveConfig) validate() error {
	bad := func(flagName string, format string, args ...any) error {
		return usageErr("serve: --%s %s", flagName, fmt.Sprintf(format, args...))
	}
	switch {
	case c.limits.Rate < 0:
		return bad("rate-limit", "must be 0 (unlimited) or more, not %g", c.limits.Rate)
	case c.limits.Burst < 0:
		return bad("rate-burst", "must be 0 (one second's worth) or more, not %d", c.limits.Burst)
	case c.limits.MaxConnsPerInstance < 0:
		return bad("max-conns-per-instance", "must be 0 (unlimited) or more, not %d", c.limits.MaxConnsPerInstance)
	case c.maxTrees < 1:
		return bad("max-trees", "must be at least 1, not %d", c.maxTrees)
	case c.maxSeries < 0:
		return bad("metrics-max-instances", "must be 0 or more, not %d", c.maxSeries)
	}
	for _, a := range []struct{ name, v string }{{"listen", c.listen}, {"listen-ipv6", c.listenIPv6}, {"api-listen", c.apiListen}} {
		if a.v == "" && a.name == "listen-ipv6" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return bad(a.name, "must be HOST:PORT, not %q", a.v)
		}
	}
	switch c.store {
	case "bolt", "etcd", "memory":
	default:
		return bad("store", "must be bolt, etcd or memory, not %q", c.store)
	}
	if c.store == "etcd" && c.etcdEndpoints == "" {
		return bad("etcd-endpoints", "is required with --store etcd")
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return bad("log-format", "must be text or json, not %q", c.logFormat)
	}
	return nil
}
