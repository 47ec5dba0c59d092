// Command terraform-provider-frontdesk is frontdesk's provider for OpenTofu
// and Terraform (source address frontdesk-imds/frontdesk). Terraform starts
// it; run it by hand only with -debug, to attach a debugger.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/frontdesk-imds/frontdesk/internal/tfprovider"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "terraform-provider-frontdesk:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("terraform-provider-frontdesk", flag.ContinueOnError)
	debug := fs.Bool("debug", false, "run as a debuggable process that prints TF_REATTACH_PROVIDERS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return providerserver.Serve(ctx, tfprovider.New(version, tfprovider.Options{Getenv: getenv}), providerserver.ServeOpts{
		Address: "registry.opentofu.org/frontdesk-imds/frontdesk",
		Debug:   *debug,
	})
}
