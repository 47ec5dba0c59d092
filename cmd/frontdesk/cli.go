package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// This file holds what the operator subcommands (instances, defaults,
// events, compliance) share: the connection flags, argument parsing with
// flags anywhere on the line, usage errors (exit status 2) and output.

// apiFlags are the flags every operator subcommand takes to reach the
// control plane.
type apiFlags struct {
	endpoint string
	dataDir  string
	region   string
}

func (a *apiFlags) register(fs *flag.FlagSet, e *env) {
	def := apiclient.Settings{}.Resolve(e.getenv)
	fs.StringVar(&a.endpoint, "endpoint", def.Endpoint, "control plane URL ($FRONTDESK_ENDPOINT)")
	fs.StringVar(&a.dataDir, "data-dir", def.DataDir, "data directory whose admin.credentials to use ($FRONTDESK_DATA_DIR); without that file, the usual AWS environment variables and profiles")
	fs.StringVar(&a.region, "region", apiclient.DefaultRegion, "region the control plane is configured with")
}

// client builds the API client from the flags.
func (a *apiFlags) client(ctx context.Context, e *env) (*apiclient.Client, error) {
	if a.endpoint == "" {
		return nil, usageErr("--endpoint must not be empty")
	}
	creds, _, err := apiclient.LoadCredentials(ctx, a.dataDir, e.getenv)
	if err != nil {
		return nil, err
	}
	return apiclient.New(a.endpoint, creds, apiclient.Options{Region: a.region}), nil
}

// command is one operator subcommand's flag set and help text.
type command struct {
	fs       *flag.FlagSet
	synopsis string
	api      apiFlags
	e        *env
}

// newCommand makes a flag set that reports errors instead of exiting and
// prints synopsis, then the flags, as its usage.
func newCommand(e *env, name, synopsis string) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), synopsis: synopsis}
	c.api.register(c.fs, e)
	c.e = e
	return c
}

// usage prints the synopsis and every flag with its default.
func (c *command) usage(w io.Writer) { printUsage(w, c.fs, c.synopsis, "") }

// parse parses args with flags allowed before, between and after the
// positional arguments (`terminate i-1 i-2 --endpoint URL`), which Go's
// flag package alone stops at; "--" ends the flags. It checks the number of
// positional arguments against [min, max] (max < 0: no limit).
func (c *command) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(c.e, c.fs, c.usage, args); err != nil {
			return nil, err
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < min:
		return nil, usageErr("%s: missing arguments (usage: %s)", c.fs.Name(), c.synopsis)
	case max >= 0 && len(pos) > max:
		return nil, usageErr("%s: unexpected argument %q (usage: %s)", c.fs.Name(), pos[max], c.synopsis)
	}
	return pos, nil
}

// set reports which flags the command line gave, so that omitted options
// are not sent (an omitted option keeps its value on the server).
func (c *command) set() map[string]bool {
	m := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

// usageErr is a mistake on the command line: exit status 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// oneOf checks an enumerated flag value.
func oneOf(flagName, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return usageErr("--%s must be %s, not %q", flagName, strings.Join(allowed, ", "), v)
}

// parseTime reads an RFC 3339 time flag; an empty one is the zero time,
// which leaves the time to the server's default.
func parseTime(flagName, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageErr("--%s must be an RFC 3339 time such as 2030-01-02T03:04:05Z, not %q", flagName, v)
	}
	return t, nil
}

// checkInstanceIDs rejects, before a round trip, the first of ids that
// cannot be an instance id.
func checkInstanceIDs(ids ...string) error {
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") || len(id) < 3 {
			return usageErr("%q is not an instance id (i-…)", id)
		}
	}
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// tagPair is one KEY=VALUE argument.
type tagPair struct{ key, value string }

// parseTags reads KEY=VALUE arguments (VALUE may be empty).
func parseTags(what string, args []string) ([]tagPair, error) {
	out := make([]tagPair, 0, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usageErr("%s: %q is not KEY=VALUE", what, a)
		}
		out = append(out, tagPair{k, v})
	}
	return out, nil
}

// writeJSON prints v indented, as the --json forms do.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns; the first row is the header.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// dispatch runs the sub-subcommand named by args[0] (instances list, …).
func dispatch(ctx context.Context, e *env, group string, args []string, subs map[string]subcommand) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		w := e.stdout
		if len(args) == 0 {
			w = e.stderr
		}
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		slices.Sort(names)
		var b strings.Builder
		fmt.Fprintf(&b, "usage: frontdesk %s <command> [flags] (frontdesk %s <command> -h for its flags)\n\n", group, group)
		for _, n := range names {
			fmt.Fprintf(&b, "  %-24s %s\n", n, subs[n].help)
		}
		io.WriteString(w, b.String())
		if len(args) == 0 {
			return usageErr("%s: a command is required", group)
		}
		return nil
	}
	s, ok := subs[args[0]]
	if !ok && strings.HasPrefix(args[0], "-") {
		return usageErr("%s: a command is required before the flags (frontdesk %s help lists them)", group, group)
	}
	if !ok {
		return usageErr("%s: unknown command %q (frontdesk %s help lists them)", group, args[0], group)
	}
	return named(group+" "+args[0], s.run(ctx, e, args[1:]))
}

// named prefixes err with the command that failed, once: commands that
// already name themselves are left as they are.
func named(name string, err error) error {
	if err == nil || errors.Is(err, errHelpShown) || strings.HasPrefix(err.Error(), name+":") {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}
