// Package plugin runs the kubectl-tidal plugin through the real kubectl, against a real
// kube-apiserver and etcd (envtest, binaries built by hack/tools.sh), with the operator
// reconciling in-process against the project's TIDAL-compatible server.
package plugin

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

const (
	// canaryClientSecret is the secret of pluginClient; the leak search looks for it.
	canaryClientSecret = "CANARY-CLIENT-SECRET-p1u61n"
	// pluginClient issues one-hour tokens and has a secret, passed with --client-secret-file.
	pluginClient = "plugin-client"
)

var (
	testEnv    *envtest.Environment
	k8s        client.Client
	tidalSrv   *tidalserver.Server
	kubectlBin string
	kubeconfig string
	// pluginDir holds the kubectl-tidal built for the suite; it is put first on PATH.
	pluginDir string
	logs      syncBuffer
	// outputs collects everything kubectl and the plugin printed, for the leak search.
	outputs syncBuffer
)

// syncBuffer collects output written from several goroutines.
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

func TestPlugin(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl-tidal plugin suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(&logs), zap.Level(zapcore.Level(-2))))

	By("building kubectl-tidal")
	pluginDir = GinkgoT().TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "kubectl-tidal"),
		"github.com/tidal-mcp/tidal-session-operator/cmd/kubectl-tidal")
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build: %s", out)

	By("starting the control plane")
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
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	kubectlBin = filepath.Join(assets, "kubectl")
	Expect(kubectlBin).To(BeAnExistingFile())
	kubeconfig = filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(os.WriteFile(kubeconfig, testEnv.KubeConfig, 0o600)).To(Succeed())

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(sessionsv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("starting the TIDAL-compatible server and the operator")
	tidalSrv = tidalserver.New(tidalserver.Config{
		AccessTokenLifetime: time.Hour,
		Clients: []tidalserver.Client{
			{ID: pluginClient, Secret: canaryClientSecret, Name: "Plugin suite"},
		},
	})
	tidalHTTP := httptest.NewServer(tidalSrv)
	DeferCleanup(tidalHTTP.Close)
	endpoints := tidal.Endpoints{AuthBaseURL: tidalHTTP.URL + "/v1/oauth2/", APIBaseURL: tidalHTTP.URL + "/v1/"}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controller.CacheOptions(nil),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	Expect((&controller.TidalSessionReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Scheme:                  mgr.GetScheme(),
		Recorder:                mgr.GetEventRecorder("tidal-session-operator"),
		Clock:                   clock.RealClock{},
		TIDAL:                   tidal.NewClient(endpoints, &http.Client{Timeout: 5 * time.Second}, clock.RealClock{}),
		RetryBase:               200 * time.Millisecond,
		RecheckInterval:         2 * time.Second,
		MaxConcurrentReconciles: 2,
	}).SetupWithManager(mgr)).To(Succeed())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	DeferCleanup(func() {
		cancel()
		<-done
	})
})

var _ = AfterSuite(func() {
	// The leak search runs last, over everything the specs and the operator printed.
	if !CurrentSpecReport().Failed() {
		By("searching the plugin's and kubectl's output and the operator's logs for every token handed out")
		expectNoLeaks()
	}
})
