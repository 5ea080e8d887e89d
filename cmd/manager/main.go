// Command manager runs the tidal-session-operator: it keeps every TidalSession's access
// token fresh in the session's output Secret.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
	"github.com/tidal-mcp/tidal-session-operator/internal/healthapi"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// options are the operator's flags. TIDAL's endpoints are set here, by whoever runs the
// operator, and never by a TidalSession.
type options struct {
	authURL, apiURL      string
	openAPIURL           string
	tidalTimeout         time.Duration
	watchNamespaces      string
	metricsAddr          string
	metricsSecure        bool
	healthAPIAddr        string
	healthAPICertDir     string
	tokenAudience        string
	probeAddr            string
	leaderElect          bool
	leaderElectNamespace string
	recheckInterval      time.Duration
	workers              int
	anomaly              controller.AnomalyRules
}

func main() {
	var o options
	flag.StringVar(&o.authURL, "tidal-auth-url", tidal.DefaultAuthBaseURL, "Base URL of TIDAL's OAuth endpoints.")
	flag.StringVar(&o.apiURL, "tidal-api-url", tidal.DefaultAPIBaseURL, "Base URL of TIDAL's v1 API.")
	flag.StringVar(&o.openAPIURL, "tidal-openapi-url", tidal.DefaultOpenAPIBaseURL,
		"Base URL of TIDAL's official API, for the health checks of developer apps' sessions.")
	flag.DurationVar(&o.tidalTimeout, "tidal-timeout", 15*time.Second, "Timeout of one call to TIDAL.")
	flag.StringVar(&o.watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to manage sessions in; empty means all namespaces.")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443",
		"Address of the metrics endpoint; \"0\" disables it.")
	flag.BoolVar(&o.metricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS, for callers that pass TokenReview and SubjectAccessReview.")
	// Off unless asked for: out of cluster (the demo, the end-to-end suite) a default address
	// would listen on every interface.
	flag.StringVar(&o.healthAPIAddr, "health-api-bind-address", "0",
		"Address of the per-session health endpoint (HTTPS, TokenReview and SubjectAccessReview), e.g. \":8444\"; \"0\" disables it.")
	flag.StringVar(&o.healthAPICertDir, "health-api-cert-dir", "",
		"Directory with tls.crt and tls.key for the health endpoint; empty means a self-signed certificate.")
	flag.StringVar(&o.tokenAudience, "token-endpoint-audience", "",
		"Serve each session's access token at /sessions/<namespace>/<name>/token on the health endpoint, to pods bound to "+
			"the session that present a ServiceAccount token of this audience; empty disables it. Needs --health-api-bind-address.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health probes.")
	flag.BoolVar(&o.leaderElect, "leader-elect", true,
		"Elect a leader so that only one replica refreshes at a time.")
	flag.StringVar(&o.leaderElectNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; required when running outside a cluster.")
	flag.IntVar(&o.workers, "max-concurrent-reconciles", 4,
		"How many sessions are reconciled at once, so one slow TIDAL answer delays only its own session.")
	flag.DurationVar(&o.recheckInterval, "recheck-interval", 30*time.Second,
		"How often a session waiting on something the operator cannot watch (a missing credentials Secret) is looked at again.")
	flag.IntVar(&o.anomaly.BurstThreshold, "anomaly-new-consumers", controller.DefaultBurstThreshold,
		"Binding anomaly: more new consumer fingerprints than this within --anomaly-new-consumers-window is a burst (1-30).")
	flag.DurationVar(&o.anomaly.BurstWindow, "anomaly-new-consumers-window", controller.DefaultBurstWindow,
		"Binding anomaly: the window of --anomaly-new-consumers.")
	flag.IntVar(&o.anomaly.ViolationThreshold, "anomaly-violations", controller.DefaultViolationThreshold,
		"Binding anomaly: more binding violations than this within --anomaly-violations-window are repeated violations (1-30).")
	flag.DurationVar(&o.anomaly.ViolationWindow, "anomaly-violations-window", controller.DefaultViolationWindow,
		"Binding anomaly: the window of --anomaly-violations.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(o); err != nil {
		var bad *flagError
		if errors.As(err, &bad) {
			// A mistake in the flags is the admin's to fix: one plain line, no stack trace.
			fmt.Fprintf(os.Stderr, "invalid flags: %v\n", bad.err)
			os.Exit(2)
		}
		ctrl.Log.Error(err, "Operator stopped")
		os.Exit(1)
	}
}

// flagError is a flag value the operator cannot start with.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

func run(o options) error {
	setupLog := ctrl.Log.WithName("setup")
	endpoints := tidal.Endpoints{AuthBaseURL: o.authURL, APIBaseURL: o.apiURL, OpenAPIBaseURL: o.openAPIURL}
	if err := errors.Join(endpoints.Validate(), validateAnomaly(o.anomaly), validateTokenEndpoint(o)); err != nil {
		return &flagError{err: err}
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(sessionsv1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controller.CacheOptions(splitList(o.watchNamespaces)),
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "tidal-session-operator.sessions.tidal-mcp.dev",
		LeaderElectionNamespace: o.leaderElectNamespace,
		// Stepping down on shutdown lets a standby take over at once instead of waiting
		// for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("failed to create manager: %w", err)
	}

	clk := clock.RealClock{}
	reconciler := &controller.TidalSessionReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Scheme:                  mgr.GetScheme(),
		Recorder:                mgr.GetEventRecorder(controller.EventReporter),
		Clock:                   clk,
		TIDAL:                   tidal.NewClient(endpoints, &http.Client{Timeout: o.tidalTimeout}, clk),
		RecheckInterval:         o.recheckInterval,
		MaxConcurrentReconciles: o.workers,
		Anomaly:                 o.anomaly,
	}
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up controller: %w", err)
	}
	// The cached client, so that a scrape reads memory instead of listing from the API server.
	if err := metrics.RegisterSessionCollector(mgr.GetClient()); err != nil {
		return fmt.Errorf("failed to register session metrics: %w", err)
	}
	if healthAPIOn(o) {
		if err := healthapi.Setup(mgr, healthapi.Options{BindAddress: o.healthAPIAddr,
			CertDir: o.healthAPICertDir, Namespaces: splitList(o.watchNamespaces),
			TokenAudience: o.tokenAudience}); err != nil {
			return fmt.Errorf("failed to set up the health endpoint: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add ready check: %w", err)
	}

	setupLog.Info("Starting operator", "tidalAuthURL", o.authURL, "tidalAPIURL", o.apiURL,
		"watchNamespaces", o.watchNamespaces, "leaderElect", o.leaderElect)
	return mgr.Start(ctrl.SetupSignalHandler())
}

func metricsOptions(o options) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.metricsSecure}
	if o.metricsSecure {
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
		// HTTP/2 is off: its stream handling has had denial-of-service flaws, and a
		// metrics scrape does not need it.
		opts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return opts
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validateAnomaly rejects thresholds the status cannot count to and windows that are not
// positive, instead of silently replacing them with defaults.
func validateAnomaly(a controller.AnomalyRules) error {
	for _, t := range []struct {
		flag string
		n    int
	}{{"--anomaly-new-consumers", a.BurstThreshold}, {"--anomaly-violations", a.ViolationThreshold}} {
		if t.n < 1 || t.n > controller.MaxAnomalyThreshold {
			return fmt.Errorf("%s must be between 1 and %d, not %d", t.flag, controller.MaxAnomalyThreshold, t.n)
		}
	}
	if a.BurstWindow <= 0 || a.ViolationWindow <= 0 {
		return fmt.Errorf("--anomaly-new-consumers-window and --anomaly-violations-window must be positive")
	}
	return nil
}

func healthAPIOn(o options) bool {
	return o.healthAPIAddr != "0" && o.healthAPIAddr != ""
}

// validateTokenEndpoint rejects a token audience without the health endpoint that would serve
// it, instead of starting an operator whose owner believes pods can fetch their tokens.
func validateTokenEndpoint(o options) error {
	if o.tokenAudience != "" && !healthAPIOn(o) {
		return fmt.Errorf("--token-endpoint-audience needs the health endpoint, which serves it: " +
			"set --health-api-bind-address (e.g. \":8444\") or leave --token-endpoint-audience empty")
	}
	return nil
}
