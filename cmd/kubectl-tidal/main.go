// Command kubectl-tidal is a kubectl plugin (run as `kubectl tidal`) that imports existing
// TIDAL session files as TidalSessions, shows sessions in plain words and refreshes them on
// demand. It never prints a token: imported values are masked, and every message it prints
// passes a redactor that knows the values it has read.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	// An interrupt cancels the command's context; import then rolls back what it created.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	root, red := newRootCommand(streams, nil)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error: "+red.redact(err.Error()))
		os.Exit(1)
	}
}
