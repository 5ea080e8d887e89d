// Package integration runs the operator against a real kube-apiserver and etcd (envtest,
// binaries built by hack/tools.sh), the real kubectl, and the project's TIDAL-compatible
// server.
package integration

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// Canary values: a search of logs, Events, status and metrics for them must find nothing.
const (
	canaryClientSecret = "CANARY-CLIENT-SECRET-4d8e1f"
	// shortClient issues 60-second tokens, longClient one-hour tokens.
	shortClient = "it-short"
	longClient  = "it-long"
	// reauthClient is used by one spec only, so TIDAL's request count per client is its own.
	reauthClient = "it-reauth"
	// revokedClient (60-second tokens) is revoked by one spec while 20 sessions use it.
	revokedClient = "it-revoked"
	// faultClient is the client whose token answers the fault specs break.
	faultClient = "it-faults"
	// crowdClient (2-minute tokens, the shortest whose refreshes the spread still moves) serves
	// 200 sessions created at once.
	crowdClient = "it-crowd"
	// replicasClient (60-second tokens) serves the sessions of the replica spec, in
	// replicasNamespace.
	replicasClient    = "it-replicas"
	replicasNamespace = "it-replicas"
	// crashClient (one-hour tokens) serves the crash-window specs, in crashNamespace.
	crashClient    = "it-crash"
	crashNamespace = "it-crash"
)

// ownOperatorNamespaces are served by operators that specs start and stop themselves, not by
// the suite's.
var ownOperatorNamespaces = []string{replicasNamespace, crashNamespace}

var (
	testEnv   *envtest.Environment
	k8s       client.Client
	tidalSrv  *tidalserver.Server
	tidalHTTP *httptest.Server
	tidalAPI  *tidal.Client
	logs      syncBuffer
)

// syncBuffer collects the operator's log output for the leak search.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Integration suite")
}

var _ = BeforeSuite(func() {
	level := zapcore.Level(-2)
	logf.SetLogger(zap.New(zap.WriteTo(&logs), zap.Level(level)))

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join("..", "..", "bin", "k8s")
	}
	Expect(filepath.Join(assets, "kube-apiserver")).To(BeAnExistingFile(),
		"control-plane binaries missing: run hack/tools.sh (make test does)")
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	// Cleanups registered here run after AfterSuite, even when its leak search fails, so a
	// failed run never leaves etcd and kube-apiserver behind.
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(sessionsv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	tidalSrv = tidalserver.New(tidalserver.Config{
		AccessTokenLifetime: time.Hour,
		Clients: []tidalserver.Client{
			{ID: shortClient, Secret: canaryClientSecret, Name: "Integration short", AccessTokenLifetime: time.Minute},
			{ID: longClient, Secret: canaryClientSecret, Name: "Integration long"},
			{ID: reauthClient, Secret: canaryClientSecret, Name: "Integration re-login"},
			{ID: revokedClient, Secret: canaryClientSecret, Name: "Integration revoked", AccessTokenLifetime: time.Minute},
			{ID: faultClient, Secret: canaryClientSecret, Name: "Integration faults"},
			{ID: crowdClient, Secret: canaryClientSecret, Name: "Integration crowd", AccessTokenLifetime: 2 * time.Minute},
			{ID: replicasClient, Secret: canaryClientSecret, Name: "Integration replicas", AccessTokenLifetime: time.Minute},
			{ID: crashClient, Secret: canaryClientSecret, Name: "Integration crash"},
		},
	})
	tidalHTTP = httptest.NewServer(tidalSrv)
	DeferCleanup(tidalHTTP.Close)
	endpoints := tidal.Endpoints{AuthBaseURL: tidalHTTP.URL + "/v1/oauth2/", APIBaseURL: tidalHTTP.URL + "/v1/"}
	tidalAPI = tidal.NewClient(endpoints, nil, nil)

	// This manager serves every namespace but ownOperatorNamespaces.
	cacheOpts := controller.CacheOptions(nil)
	var notOwn []fields.Selector
	for _, ns := range ownOperatorNamespaces {
		notOwn = append(notOwn, fields.OneTermNotEqualSelector("metadata.namespace", ns))
	}
	notOwnSelector := fields.AndSelectors(notOwn...)
	for obj, byObject := range cacheOpts.ByObject {
		byObject.Field = notOwnSelector
		cacheOpts.ByObject[obj] = byObject
	}
	cacheOpts.ByObject[&sessionsv1alpha1.TidalSession{}] = cache.ByObject{Field: notOwnSelector}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	Expect((&controller.TidalSessionReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("tidal-session-operator"),
		Clock:     clock.RealClock{},
		// A short timeout, so that a fault spec can answer slower than it.
		TIDAL:                   tidal.NewClient(endpoints, &http.Client{Timeout: 2 * time.Second}, clock.RealClock{}),
		RetryBase:               200 * time.Millisecond,
		RecheckInterval:         2 * time.Second,
		MaxConcurrentReconciles: 4,
	}).SetupWithManager(mgr)).To(Succeed())

	Expect(metrics.RegisterSessionCollector(mgr.GetClient())).To(Succeed())

	DeferCleanup(runManager(mgr))
})

// runManager starts mgr and returns a function that stops it and waits until it has; it may
// be called more than once.
func runManager(mgr ctrl.Manager) (stop func()) {
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

var _ = AfterSuite(func() {
	// The leak search runs last, over everything the specs produced.
	if !CurrentSpecReport().Failed() && k8s != nil {
		By("searching logs, Events, status and metrics for every token and secret handed out")
		expectNoLeaks()
	}
})
