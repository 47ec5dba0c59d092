// Command frontdesk is an EC2-compatible instance metadata service.
//
// Usage:
//
//	frontdesk serve [flags]          run the data plane and the control plane
//	frontdesk identity certificates  print the identity-document certificates
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
		fmt.Fprintln(os.Stderr, "frontdesk:", err)
		os.Exit(exitCode(err))
	}
}
