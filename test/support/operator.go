package support

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// CaptureLogs sends controller-runtime's log, and with it the in-process operator's, to w,
// up to V(verbosity), so that the leak search reads what the operator would print.
func CaptureLogs(w io.Writer, verbosity int) {
	logf.SetLogger(zap.New(zap.WriteTo(w), zap.Level(zapcore.Level(-verbosity))))
}

// TIDAL is the project's TIDAL-compatible server, serving on loopback.
type TIDAL struct {
	Server *tidalserver.Server
	HTTP   *httptest.Server
	// Endpoints point a tidal.Client at HTTP.
	Endpoints tidal.Endpoints
}

// StartTIDAL starts the TIDAL-compatible server with clients, issuing one-hour tokens unless
// a client says otherwise, on a 127.0.0.1 port (httptest listens on loopback only). It stops
// in a DeferCleanup.
func StartTIDAL(clients ...tidalserver.Client) *TIDAL {
	srv := tidalserver.New(tidalserver.Config{AccessTokenLifetime: time.Hour, Clients: clients})
	h := httptest.NewServer(srv)
	DeferCleanup(h.Close)
	return &TIDAL{Server: srv, HTTP: h,
		Endpoints: tidal.Endpoints{AuthBaseURL: h.URL + "/v1/oauth2/", APIBaseURL: h.URL + "/v1/"}}
}

// IssueGrant has srv give a user a refresh token as if the user had logged in, remembers it
// in secrets and returns it. grant.RefreshToken should be a canary the leak search
// recognises.
func IssueGrant(srv *tidalserver.Server, secrets *Secrets, grant tidalserver.GrantSpec) string {
	GinkgoHelper()
	rt, err := srv.IssueGrant(grant)
	Expect(err).NotTo(HaveOccurred())
	return secrets.Remember(rt)
}

// OperatorOptions are what the suites' in-process operators differ in.
type OperatorOptions struct {
	// Cache defaults to the operator's own, controller.CacheOptions(nil): every namespace.
	Cache *cache.Options
	// TIDALTimeout bounds each request to TIDAL.
	TIDALTimeout time.Duration
	// MaxConcurrentReconciles is the number of sessions reconciled at once.
	MaxConcurrentReconciles int
}

// NewOperator returns a manager, not yet started, running the operator's reconciler against
// the control plane and the TIDAL endpoints. Its metrics and probe listeners are off, and its
// retries and rechecks are short, so that specs see failures handled within seconds.
func NewOperator(cp *ControlPlane, endpoints tidal.Endpoints, opts OperatorOptions) ctrl.Manager {
	GinkgoHelper()
	cacheOpts := controller.CacheOptions(nil)
	if opts.Cache != nil {
		cacheOpts = *opts.Cache
	}
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 cp.Client.Scheme(),
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	httpClient := &http.Client{Timeout: opts.TIDALTimeout}
	Expect((&controller.TidalSessionReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Scheme:                  mgr.GetScheme(),
		Recorder:                mgr.GetEventRecorder(controller.EventReporter),
		Clock:                   clock.RealClock{},
		TIDAL:                   tidal.NewClient(endpoints, httpClient, clock.RealClock{}),
		RetryBase:               200 * time.Millisecond,
		RecheckInterval:         2 * time.Second,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
	}).SetupWithManager(mgr)).To(Succeed())
	return mgr
}

// RunManager starts mgr and returns a function that stops it and waits until it has. The
// function may be called more than once, so a spec can stop a manager that a cleanup stops too.
func RunManager(mgr ctrl.Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return func() {
		cancel()
		<-done
	}
}
