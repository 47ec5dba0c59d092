package main

import (
	"context"
	"fmt"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
	"github.com/frontdesk-imds/frontdesk/internal/console"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
)

// cmdConsole prints a login URL for the web console: a short-lived token
// signed with the admin credentials, which the console exchanges for a
// session cookie. Nothing is sent anywhere; the URL is made here.
func cmdConsole(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "console", "frontdesk console [--endpoint URL] [--data-dir DIR] [--valid-for 10m]")
	validFor := c.fs.Duration("valid-for", console.DefaultLoginTTL, "how long the login URL may be used (at most 1h)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if *validFor <= 0 || *validFor > time.Hour {
		return usageErr("--valid-for must be between 1s and 1h, not %s", *validFor)
	}
	if c.api.endpoint == "" {
		return usageErr("--endpoint must not be empty")
	}
	creds, src, err := apiclient.LoadCredentials(ctx, c.api.dataDir, e.getenv)
	if err != nil {
		return err
	}
	v, err := creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("console: admin credentials (%s): %w", src, err)
	}
	admin := controlplane.AdminCredentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey}
	fmt.Fprintln(e.stdout, console.LoginURL(c.api.endpoint, admin, time.Now(), *validFor))
	fmt.Fprintf(e.stderr, "open the URL above within %s; it signs you in to the frontdesk console (the session lasts %s)\n", shortDuration(*validFor), shortDuration(console.DefaultSessionTTL))
	return nil
}
