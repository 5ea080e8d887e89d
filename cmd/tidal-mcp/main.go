// Command tidal-mcp serves MCP tools that inspect and refresh TidalSessions: over stdio, for
// an MCP client that starts it, or over streamable HTTP, beside an MCP server in its pod.
// It talks only to the Kubernetes API server and never reads a Secret; see docs/mcp.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// serviceAccountNamespace is where the kubelet puts the pod's namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// mcpPath is where the streamable HTTP endpoint is served.
const mcpPath = "/mcp"

type options struct {
	transport     string
	httpAddress   string
	namespace     string
	onlyNamespace bool
	wait, maxWait time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.transport, "transport", "stdio",
		`How MCP clients connect: "stdio" (the client starts this program) or "http" (streamable HTTP).`)
	flag.StringVar(&o.httpAddress, "http-address", "127.0.0.1:8090",
		"Address to serve streamable HTTP on, at path "+mcpPath+". Loopback by default: the endpoint has "+
			"no authentication of its own, so only containers of the same pod should reach it.")
	flag.StringVar(&o.namespace, "namespace", defaultNamespace(),
		"Namespace of sessions whose tool call names none; the pod's own ($POD_NAMESPACE, else the "+
			"service account's namespace) by default.")
	flag.BoolVar(&o.onlyNamespace, "only-namespace", false,
		"Serve only sessions in --namespace; a call naming another namespace is refused.")
	flag.DurationVar(&o.wait, "refresh-wait", 45*time.Second,
		"How long "+toolRefresh+" waits for the refresh by default. Refreshes stay 30 s apart, so "+
			"less than that may end before a request right after a refresh is honoured.")
	flag.DurationVar(&o.maxWait, "max-refresh-wait", 2*time.Minute, "The longest wait a tool call may ask for.")
	flag.Parse()

	// Logs go to stderr: with the stdio transport, stdout carries the protocol.
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	if err := run(o, log); err != nil {
		log.Error("tidal-mcp stopped", "error", err.Error())
		os.Exit(1)
	}
}

// defaultNamespace is the pod's namespace when running in one, as the Downward API
// ($POD_NAMESPACE) or the service account volume tells it.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "default"
}

func run(o options, log *slog.Logger) error {
	if o.wait <= 0 || o.maxWait < o.wait {
		return fmt.Errorf("--refresh-wait must be positive and at most --max-refresh-wait, got %s and %s",
			o.wait, o.maxWait)
	}
	cfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to load a Kubernetes client configuration: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := sessionsv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	// A direct client, no cache: tool calls are rare, and a cache would need list and watch
	// on every namespace the tools may name.
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("failed to create a Kubernetes client: %w", err)
	}
	t := &tools{client: c, log: log, now: time.Now, namespace: o.namespace, onlyNamespace: o.onlyNamespace,
		wait: o.wait, maxWait: o.maxWait}
	server := t.newServer(version)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch o.transport {
	case "stdio":
		log.Info("Serving MCP over stdio", "namespace", o.namespace, "onlyNamespace", o.onlyNamespace)
		return server.Run(ctx, &mcp.StdioTransport{})
	case "http":
		return serveHTTP(ctx, server, o, log)
	}
	return fmt.Errorf(`--transport must be "stdio" or "http", got %q`, o.transport)
}

// serveHTTP serves server over streamable HTTP until ctx ends.
func serveHTTP(ctx context.Context, server *mcp.Server, o options, log *slog.Logger) error {
	ln, err := net.Listen("tcp", o.httpAddress)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", o.httpAddress, err)
	}
	if host, _, _ := net.SplitHostPort(o.httpAddress); !isLoopback(host) {
		log.Warn("Serving MCP beyond loopback: the endpoint has no authentication of its own; "+
			"anyone who reaches it can refresh and read the status of sessions", "address", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle(mcpPath, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("Serving MCP over streamable HTTP", "address", ln.Addr().String(), "path", mcpPath,
		"namespace", o.namespace, "onlyNamespace", o.onlyNamespace)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
