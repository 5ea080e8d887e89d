package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
)

type loginOptions struct {
	*globals
	timeout time.Duration
}

func newLoginCommand(g *globals) *cobra.Command {
	o := &loginOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "login NAME",
		Short: "Start or follow a TidalSession's device login, print its link and code, and wait for success",
		Long: `Start or follow the device login of a TidalSession that needs a new login, print the
link to open and the code to enter there, and wait until the session is active again.

The session must allow device logins (spec.reauth.deviceLogin: true). A login already
running is followed, not restarted; one that expired or was denied is started again
through the login-request annotation. The command exits non-zero when the login ends
without success or does not succeed within --timeout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the login to succeed")
	return cmd
}

// run starts or follows the login. Side effect: at most one patch of the TidalSession's
// login-request annotation.
func (o *loginOptions) run(ctx context.Context, name string) error {
	key, c, err := o.waitingOn(name, o.timeout)
	if err != nil {
		return err
	}
	l, err := sessionops.StartLogin(ctx, c, key, o.now())
	if err != nil {
		return err
	}
	if l.Done() {
		_, err := fmt.Fprintln(o.streams.Out, l.Text())
		return err
	}
	deadline := o.now().Add(o.timeout)
	shown := ""
	for !l.Done() {
		if l.Ended() {
			return errors.New(l.Text())
		}
		if l.Pending() && l.UserCode != shown {
			// A new code replaces the old one, e.g. after the operator restarted.
			shown = l.UserCode
			if _, err := fmt.Fprintln(o.streams.Out, l.Text()); err != nil {
				return err
			}
		}
		code := shown
		l, err = sessionops.WaitForLogin(ctx, c, key, l.Requested, deadline.Sub(o.now()), func(l sessionops.Login) bool {
			return l.Done() || l.Ended() || (l.Pending() && l.UserCode != code)
		})
		if err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(o.streams.Out, "tidalsession.sessions.tidal-mcp.dev/%s logged in: phase %s\n", name, l.Phase)
	return err
}
