package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"
)

// errHelpShown ends a command whose -h or --help printed its usage: the
// process exits 0 and prints nothing more.
var errHelpShown = errors.New("help shown")

// describe renders err as the one line the user sees after "frontdesk: ".
// The SDK wraps an EC2 error in "operation error EC2: RunInstances, https
// response error StatusCode: 400, RequestID: …, api error CODE: MESSAGE";
// the user needs only CODE: MESSAGE, after the command's own prefix. A
// control plane that cannot be reached at all is said so plainly.
func describe(err error) string {
	msg := err.Error()
	prefix := msg
	if i := strings.Index(msg, "operation error "); i >= 0 {
		prefix = msg[:i]
	} else if i := strings.Index(msg, "api error "); i >= 0 {
		prefix = msg[:i]
	} else {
		prefix = ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return prefix + ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) && errors.As(err, &oe) && oe.Op == "dial" {
		if i := strings.Index(msg, ue.Op+" "); prefix == "" && i >= 0 {
			prefix = msg[:i]
		}
		return prefix + "cannot reach the control plane at " + origin(ue.URL) + " (is frontdesk serve running?)"
	}
	return msg
}

// origin reduces a request URL to scheme://host, the address the user gave.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// parseFlags parses a flag set the way every subcommand does: -h and
// --help print the usage to stdout (exit 0); a bad flag is one line naming
// it and where help is, never the whole usage twice.
func parseFlags(e *env, fs *flag.FlagSet, usage func(w io.Writer), args []string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		usage(e.stdout)
		return errHelpShown
	}
	return usageErr("%s: %v (frontdesk %s --help shows every flag)", fs.Name(), err, fs.Name())
}

// printUsage writes "usage: SYNOPSIS", the extra text, then every flag
// with its default.
func printUsage(w io.Writer, fs *flag.FlagSet, synopsis, extra string) {
	fmt.Fprintf(w, "usage: %s\n", synopsis)
	if extra != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(extra, "\n"))
	}
	var has bool
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}
