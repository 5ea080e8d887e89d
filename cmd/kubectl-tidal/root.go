package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// scheme knows the kinds the plugin reads and writes: Secrets and TidalSessions.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := sessionsv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// globals is what every subcommand shares: the kubeconfig flags, the streams, the client
// factory (replaced by tests) and the redactor.
type globals struct {
	flags     *genericclioptions.ConfigFlags
	streams   genericiooptions.IOStreams
	newClient func() (client.Client, error)
	now       func() time.Time
	red       *redactor
}

// namespace is the namespace of -n, else the kubeconfig context's, else "default".
func (g *globals) namespace() (string, error) {
	ns, _, err := g.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("failed to read the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

func (g *globals) client() (client.Client, error) {
	if g.newClient != nil {
		return g.newClient()
	}
	cfg, err := g.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to load the kubeconfig: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create a client for the API server: %w", err)
	}
	return c, nil
}

// newRootCommand builds the command tree. newClient, when not nil, replaces the client built
// from the kubeconfig flags (tests pass a fake one). The redactor returned masks, in error
// messages, every secret value a command has read.
func newRootCommand(streams genericiooptions.IOStreams, newClient func() (client.Client, error)) (
	*cobra.Command, *redactor) {
	g := &globals{
		flags:     genericclioptions.NewConfigFlags(true),
		streams:   streams,
		newClient: newClient,
		now:       time.Now,
		red:       &redactor{},
	}
	root := &cobra.Command{
		Use:   "kubectl-tidal",
		Short: "Import, inspect and refresh TIDAL sessions kept by the tidal-session-operator",
		Long: `Import, inspect and refresh TIDAL sessions kept by the tidal-session-operator.

No command prints a token: imported values are masked, and status reads only the
TidalSession's status, never a Secret.`,
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl tidal"},
		// main prints errors itself, through the redactor; usage is printed for flag errors
		// only, by the flag error function below.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help' for usage", err, c.CommandPath())
	})
	g.flags.AddFlags(root.PersistentFlags())

	root.AddCommand(newImportCommand(g), newStatusCommand(g), newRefreshCommand(g), newLoginCommand(g))
	return root, g.red
}

// redactor replaces known secret values in text. Import registers every value it reads from
// a session or client secret file, so that no message, whatever its origin (an API server's
// error, a webhook's denial), can carry one.
type redactor struct {
	mu     sync.Mutex
	values []string
}

// minRedacted is the shortest value redacted: shorter ones would mask ordinary words.
// Tokens and client secrets are far longer.
const minRedacted = 6

func (r *redactor) add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		if len(v) >= minRedacted {
			r.values = append(r.values, v)
		}
	}
	// Longest first, so that a value containing another is masked whole.
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
}

func (r *redactor) redact(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, masked)
	}
	return s
}

// masked stands in for every secret value the plugin prints.
const masked = "<masked>"
