// Command frontdesk is an EC2-compatible instance metadata service.
//
// Usage:
//
//	frontdesk serve [flags]          run the data plane and the control plane
//	frontdesk get PATH               guest side: fetch metadata with the IMDSv2 token flow
//	frontdesk instances ...          operator: list, run, terminate, tag, modify-metadata-options
//	frontdesk defaults get|set       operator: account-level metadata defaults
//	frontdesk events ...             operator: spot, rebalance, maintenance, lifecycle notices
//	frontdesk keys ...               operator: import, create, list, delete key pairs
//	frontdesk compliance             operator: the ec2-imdsv2-check rule, with IMDSv1 usage
//	frontdesk identity certificates  print the identity-document certificates
//	frontdesk netsetup               give this host 169.254.169.254 on a dummy link
//	frontdesk help                   list every subcommand
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "frontdesk:", describe(err))
		os.Exit(exitCode(err))
	}
}
