// Package e2e installs the Helm chart into a real kube-apiserver (envtest's control plane)
// with the real helm and kubectl, then runs the operator binary out of cluster under the
// chart's own ServiceAccount against the project's TIDAL-compatible server on loopback.
package e2e

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

const (
	// canaryClientSecret is the client secret of every TIDAL client of the suite; the leak
	// search looks for it with the refresh and access tokens.
	canaryClientSecret = "CANARY-E2E-CLIENT-SECRET-7c2a9b"
	// e2eClient issues 60-second tokens, so a spec sees a scheduled refresh within about
	// half a minute.
	e2eClient = "e2e-client"
)

var (
	repoRoot = filepath.Join("..", "..")
	chartDir = filepath.Join(repoRoot, "charts", "tidal-session-operator")

	testEnv  *envtest.Environment
	cfg      *rest.Config
	k8s      client.Client
	tidalSrv *tidalserver.Server
	// tidalURL is the loopback base URL of the TIDAL-compatible server.
	tidalURL string
	// adminKubeconfig is the control plane's admin (system:masters) kubeconfig.
	adminKubeconfig string
	// workDir holds files that outlive a spec: kubeconfigs, values files, the binary.
	workDir string
	// operatorBinary is ./cmd/manager, built once for the suite.
	operatorBinary string
	kubectlPath    string
	helmPath       string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func() {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(repoRoot, "bin", "k8s")
	}
	Expect(filepath.Join(assets, "kube-apiserver")).To(BeAnExistingFile(),
		"control-plane binaries missing: run hack/tools.sh (make test does)")
	helmPath = os.Getenv("HELM")
	if helmPath == "" {
		helmPath = filepath.Join(repoRoot, "bin", "helm")
	}
	Expect(helmPath).To(BeAnExistingFile(), "helm missing: run hack/tools.sh helm (make test does)")

	By("building the operator binary")
	// A temporary directory made here lasts until the suite's cleanup.
	workDir = GinkgoT().TempDir()
	operatorBinary = filepath.Join(workDir, "manager")
	build := exec.Command("go", "build", "-o", operatorBinary, "./cmd/manager")
	build.Dir = repoRoot
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))

	By("starting kube-apiserver and etcd")
	// No CRD is installed here: the chart installs them, and the specs check that it does.
	testEnv = &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	kubectlPath = testEnv.ControlPlane.KubectlPath
	adminKubeconfig = filepath.Join(workDir, "admin.kubeconfig")
	Expect(os.WriteFile(adminKubeconfig, testEnv.KubeConfig, 0o600)).To(Succeed())

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(sessionsv1alpha1.AddToScheme(scheme)).To(Succeed())
	Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	tidalSrv = tidalserver.New(tidalserver.Config{
		AccessTokenLifetime: time.Hour,
		Clients: []tidalserver.Client{{
			ID: e2eClient, Secret: canaryClientSecret, Name: "End-to-end", AccessTokenLifetime: time.Minute,
		}},
	})
	// httptest listens on 127.0.0.1 only.
	tidalHTTP := httptest.NewServer(tidalSrv)
	DeferCleanup(tidalHTTP.Close)
	tidalURL = tidalHTTP.URL
})

var _ = AfterSuite(func() {
	if k8s == nil || CurrentSpecReport().Failed() {
		return
	}
	By("searching logs, Events, status, metrics and tool output for every token and secret")
	expectNoLeaks(context.Background())
})
