// Package mcp tests cmd/tidal-mcp, built from source, against a real kube-apiserver and etcd
// (envtest, binaries built by hack/tools.sh), with the operator's reconciler and the
// project's TIDAL-compatible server running in-process. MCP clients are the Go SDK's own
// and, as an outside client, the MCP Inspector's command-line mode (test/mcp/inspector).
package mcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
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
	// canaryClientSecret is the client secret of every session; no output may contain it.
	canaryClientSecret = "CANARY-MCP-CLIENT-SECRET-7c21e9"
	// clientID issues one-hour tokens, so only requested refreshes happen during the suite.
	clientID = "mcp-suite"
	// nsMain holds the sessions the tools act on; nsOther is "another namespace".
	nsMain  = "mcp-main"
	nsOther = "mcp-other"
)

var (
	testEnv     *envtest.Environment
	restCfg     *rest.Config
	k8s         client.Client
	tidalSrv    *tidalserver.Server
	operatorLog syncBuffer
	// adminKubeconfig is a kubeconfig with the envtest administrator's identity.
	adminKubeconfig string
	// serverBin is cmd/tidal-mcp, built for the suite; inspectorBin the Inspector's launcher.
	serverBin    string
	inspectorBin string
)

func TestMCP(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "MCP suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(&operatorLog), zap.Level(zapcore.Level(-1))))
	root, err := filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())

	By("building cmd/tidal-mcp and installing the MCP Inspector")
	serverBin = filepath.Join(GinkgoT().TempDir(), "tidal-mcp")
	build := exec.Command("go", "build", "-o", serverBin, "./cmd/tidal-mcp")
	build.Dir = root
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build: %s", out)
	install := exec.Command(filepath.Join(root, "test", "mcp", "inspector", "install.sh"))
	out, err = install.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "installing the Inspector: %s", out)
	GinkgoWriter.Printf("%s", out)
	inspectorBin = filepath.Join(root, "test", "mcp", "inspector", "node_modules", ".bin", "mcp-inspector")

	By("starting etcd and kube-apiserver")
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	Expect(filepath.Join(assets, "kube-apiserver")).To(BeAnExistingFile(),
		"control-plane binaries missing: run hack/tools.sh (make test does)")
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	restCfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	adminKubeconfig = filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(os.WriteFile(adminKubeconfig, testEnv.KubeConfig, 0o600)).To(Succeed())

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(sessionsv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(restCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("starting the TIDAL-compatible server and the operator")
	tidalSrv = tidalserver.New(tidalserver.Config{
		AccessTokenLifetime: time.Hour,
		Clients:             []tidalserver.Client{{ID: clientID, Secret: canaryClientSecret, Name: "MCP suite"}},
	})
	tidalHTTP := httptest.NewServer(tidalSrv)
	DeferCleanup(tidalHTTP.Close)
	endpoints := tidal.Endpoints{AuthBaseURL: tidalHTTP.URL + "/v1/oauth2/", APIBaseURL: tidalHTTP.URL + "/v1/"}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
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
		MaxConcurrentReconciles: 4,
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

	By("creating the sessions the specs use, all at once")
	// The operator refreshes a session at most every 30 seconds, so a refresh request right
	// after a session became Ready waits for the rest of that; creating every session here
	// lets those waits run side by side instead of one per spec.
	for _, ns := range []string{nsMain, nsOther} {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	for i, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		createSession(nsMain, name, issueGrant(int64(7100+i)))
	}
	createSession(nsOther, "olga", issueGrant(7200))
	dead := issueGrant(7300)
	Expect(tidalSrv.RevokeGrant(dead)).To(Succeed())
	createSession(nsMain, "frank", dead)

	for _, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		Eventually(phaseOf(nsMain, name), 30*time.Second, 200*time.Millisecond).Should(Equal(sessionsv1alpha1.PhaseActive))
	}
	Eventually(phaseOf(nsOther, "olga"), 30*time.Second, 200*time.Millisecond).Should(Equal(sessionsv1alpha1.PhaseActive))
	Eventually(phaseOf(nsMain, "frank"), 30*time.Second, 200*time.Millisecond).Should(Equal(sessionsv1alpha1.PhaseReauthRequired))
})

var _ = AfterSuite(func() {
	// The leak search runs last, over every tool result, server log and Inspector output.
	if !CurrentSpecReport().Failed() && k8s != nil {
		By("searching every tool result, server log and Inspector output for tokens and secrets")
		expectNoLeaks()
	}
})
