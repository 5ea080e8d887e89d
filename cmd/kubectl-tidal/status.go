package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
)

// Output formats of status and refresh: a Summary is no API object, so kubectl's printers
// do not apply; json and yaml print the Summary's fields.
const (
	outputText = ""
	outputJSON = "json"
	outputYAML = "yaml"
)

func validateOutput(output string) error {
	switch output {
	case outputText, outputJSON, outputYAML:
		return nil
	}
	return fmt.Errorf("unknown output format %q: use json or yaml, or no -o for text", output)
}

type statusOptions struct {
	*globals
	output        string
	allNamespaces bool
}

func newStatusCommand(g *globals) *cobra.Command {
	o := &statusOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Describe a TidalSession in plain words, or list the sessions of a namespace",
		Long: `Describe a TidalSession in plain words: its phase, what its conditions mean, when
its token expires and what to do next. Without NAME, list the sessions of the namespace
(or of all namespaces with -A). Only the TidalSession is read, never a Secret.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return o.one(cmd.Context(), args[0])
			}
			return o.list(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", outputText, "output format: json or yaml (default: text)")
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list the sessions of all namespaces")
	return cmd
}

func (o *statusOptions) one(ctx context.Context, name string) error {
	if o.allNamespaces {
		return errors.New("a session NAME and --all-namespaces exclude each other")
	}
	if err := validateOutput(o.output); err != nil {
		return err
	}
	ns, err := o.namespace()
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	summary, err := sessionops.Status(ctx, c, types.NamespacedName{Namespace: ns, Name: name})
	if err != nil {
		return err
	}
	return printSummaries(o.streams.Out, o.output, summary)
}

func (o *statusOptions) list(ctx context.Context) error {
	if err := validateOutput(o.output); err != nil {
		return err
	}
	var opts []client.ListOption
	if !o.allNamespaces {
		ns, err := o.namespace()
		if err != nil {
			return err
		}
		opts = append(opts, client.InNamespace(ns))
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	var sessions sessionsv1alpha1.TidalSessionList
	if err := c.List(ctx, &sessions, opts...); err != nil {
		return fmt.Errorf("failed to list TidalSessions: %w", err)
	}
	summaries := make([]sessionops.Summary, 0, len(sessions.Items))
	for i := range sessions.Items {
		summaries = append(summaries, sessionops.Summarize(&sessions.Items[i]))
	}
	sort.Slice(summaries, func(i, j int) bool {
		a, b := summaries[i], summaries[j]
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
	})

	if o.output != outputText {
		return printStructured(o.streams.Out, o.output, summaries)
	}
	if len(summaries) == 0 {
		_, err := fmt.Fprintln(o.streams.ErrOut, "No TidalSessions found.")
		return err
	}
	return printTable(o.streams.Out, summaries, o.allNamespaces)
}

// printTable prints one line per session; the next step says what a person should do.
func printTable(out io.Writer, summaries []sessionops.Summary, withNamespace bool) error {
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	if withNamespace {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tPHASE\tREADY\tEXPIRES\tNEXT REFRESH\tNEXT STEP")
	for _, s := range summaries {
		if withNamespace {
			fmt.Fprintf(w, "%s\t", s.Namespace)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Phase, s.Ready,
			orDash(s.ExpiresAt), orDash(s.NextRefreshTime), s.NextStep)
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printSummaries prints one summary as text, or as json or yaml.
func printSummaries(out io.Writer, output string, s sessionops.Summary) error {
	if output == outputText {
		_, err := fmt.Fprintln(out, s.Text())
		return err
	}
	return printStructured(out, output, s)
}

func printStructured(out io.Writer, output string, v any) error {
	var b []byte
	var err error
	if output == outputJSON {
		b, err = json.MarshalIndent(v, "", "    ")
		b = append(b, '\n')
	} else {
		b, err = yaml.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("failed to encode the output: %w", err)
	}
	_, err = out.Write(b)
	return err
}

type refreshOptions struct {
	*globals
	output  string
	timeout time.Duration
	wait    bool
}

func newRefreshCommand(g *globals) *cobra.Command {
	o := &refreshOptions{globals: g}
	cmd := &cobra.Command{
		Use:   "refresh NAME",
		Short: "Ask the operator to refresh a TidalSession now, and wait for the outcome",
		Long: `Ask the operator to refresh a TidalSession now, by setting its refresh-request
annotation, and wait until its status shows the refresh or a failure.

Refreshes stay at least 30 seconds apart and a failing session waits for its backoff,
so a refresh can take that long; a request that times out stays pending and is still
carried out. The command exits non-zero when the refresh failed or did not show in time.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", outputText, "output format: json or yaml (default: text)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", time.Minute, "how long to wait for the refresh")
	cmd.Flags().BoolVar(&o.wait, "wait", true, "wait for the outcome; with --wait=false only ask")
	return cmd
}

// run requests the refresh and waits for it. Side effect: one patch of the TidalSession's
// refresh-request annotation.
func (o *refreshOptions) run(ctx context.Context, name string) error {
	if err := validateOutput(o.output); err != nil {
		return err
	}
	key, c, err := o.waitingOn(name, o.timeout)
	if err != nil {
		return err
	}
	requested, err := sessionops.RequestRefresh(ctx, c, key, o.now())
	if err != nil {
		return err
	}
	if !o.wait {
		_, err := fmt.Fprintf(o.streams.Out, "tidalsession.sessions.tidal-mcp.dev/%s refresh requested at %s\n",
			name, requested)
		return err
	}

	summary, waitErr := sessionops.WaitForRefresh(ctx, c, key, requested, o.timeout)
	var failed *sessionops.RefreshFailedError
	switch {
	case waitErr == nil:
		if o.output == outputText {
			_, err := fmt.Fprintf(o.streams.Out, "tidalsession.sessions.tidal-mcp.dev/%s refreshed: "+
				"the token expires at %s\n", name, orDash(summary.ExpiresAt))
			return err
		}
		return printStructured(o.streams.Out, o.output, summary)
	case errors.As(waitErr, &failed):
		// The summary says what to do; the error makes the exit status non-zero.
		if err := printSummaries(o.streams.Out, o.output, failed.Summary); err != nil {
			return err
		}
		return waitErr
	}
	// A timeout's message already says that the request stays pending.
	return waitErr
}

// waitingOn checks a command's --timeout and resolves the session name in the namespace of
// the flags, with a client to reach it.
func (g *globals) waitingOn(name string, timeout time.Duration) (types.NamespacedName, client.Client, error) {
	if timeout <= 0 {
		return types.NamespacedName{}, nil, errors.New("--timeout must be positive")
	}
	ns, err := g.namespace()
	if err != nil {
		return types.NamespacedName{}, nil, err
	}
	c, err := g.client()
	return types.NamespacedName{Namespace: ns, Name: name}, c, err
}
