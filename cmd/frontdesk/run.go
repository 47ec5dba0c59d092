package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// env is what every subcommand gets from the process: no globals, so tests
// run subcommands in-process and in parallel.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// exitError carries a specific exit status (e.g. compliance findings).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// subcommands maps a name to its entry point and one line of help.
type subcommand struct {
	run  func(ctx context.Context, e *env, args []string) error
	help string
}

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"serve":      {cmdServe, "run the data plane and the control plane"},
		"identity":   {cmdIdentity, "print the identity-document certificates"},
		"get":        {cmdGet, "guest side: fetch a metadata path with the IMDSv2 token flow"},
		"netsetup":   {cmdNetsetup, "give this host 169.254.169.254 (and fd00:ec2::254) on a dummy link"},
		"instances":  {cmdInstances, "operator: list, run, terminate, tag instances; change their metadata options"},
		"defaults":   {cmdDefaults, "operator: get or set the account-level instance metadata defaults"},
		"events":     {cmdEvents, "operator: simulate Spot, rebalance, maintenance and Auto Scaling lifecycle notices"},
		"version":    {cmdVersion, "print the version of this binary (also: frontdesk --version)"},
		"keys":       {cmdKeys, "operator: import, create, list, delete key pairs (the guest's SSH key)"},
		"compliance": {cmdCompliance, "operator: ec2-imdsv2-check report with IMDSv1 usage; --remediate requires IMDSv2"},
		"console":    {cmdConsole, "operator: print a login URL for the web console (IMDSv2 migration)"},
		"vpcs":       {cmdVpcs, "operator: list VPCs (create them with aws ec2 create-vpc)"},
		"subnets":    {cmdSubnets, "operator: list subnets and their free addresses"},
		"addresses":  {cmdAddresses, "operator: list Elastic IPs and their associations"},
	}
}

// run is the whole program: main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := subcommands()
	if len(args) < 2 || args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
		usage(e.stdout, cmds)
		if len(args) < 2 {
			return &exitError{code: 2, err: errors.New("no subcommand")}
		}
		return nil
	}
	if args[1] == "--version" || args[1] == "-version" {
		return cmdVersion(ctx, e, nil)
	}
	c, ok := cmds[args[1]]
	if !ok {
		usage(e.stderr, cmds)
		return &exitError{code: 2, err: fmt.Errorf("unknown subcommand %q", args[1])}
	}
	if err := c.run(ctx, e, args[2:]); err != nil && !errors.Is(err, errHelpShown) {
		return err
	}
	return nil
}

func usage(w io.Writer, cmds map[string]subcommand) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("frontdesk: an EC2-compatible instance metadata service\n\nusage: frontdesk <subcommand> [flags]\n\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-12s %s\n", n, cmds[n].help)
	}
	io.WriteString(w, b.String())
}
