// Package plugin runs the kubectl-tidal plugin through the real kubectl, against a real
// kube-apiserver and etcd (envtest, binaries built by hack/tools.sh), with the operator
// reconciling in-process against the project's TIDAL-compatible server.
package plugin

import (
	"io"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
	"github.com/tidal-mcp/tidal-session-operator/test/support/sink"
)

const (
	// canaryClientSecret is the secret of pluginClient; the leak search looks for it.
	canaryClientSecret = "CANARY-CLIENT-SECRET-p1u61n"
	// pluginClient issues one-hour tokens and has a secret, passed with --client-secret-file.
	pluginClient = "plugin-client"
)

var (
	controlPlane *support.ControlPlane
	k8s          client.Client
	tidalServer  *support.TIDAL
	// kubectl runs the real kubectl, which finds the plugin on PATH, with a kubeconfig for the
	// test API server; it records to outputs.
	kubectl support.Tool
	// pluginDir holds the kubectl-tidal built for the suite; it is put first on PATH.
	pluginDir string
	logs      sink.Buffer
	// outputs collects everything kubectl and the plugin printed, for the leak search.
	outputs sink.Buffer
)

func TestPlugin(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl-tidal plugin suite")
}

var _ = BeforeSuite(func() {
	support.CaptureLogs(&logs, 2)

	By("building kubectl-tidal")
	pluginDir = GinkgoT().TempDir()
	support.BuildBinary("./cmd/kubectl-tidal", pluginDir)

	By("starting the control plane")
	controlPlane = support.StartControlPlane(support.ControlPlaneOptions{})
	k8s = controlPlane.Client
	kubectl = controlPlane.Kubectl()
	Expect(kubectl.Path).To(BeAnExistingFile())
	kubectl.Env = []string{"PATH=" + pluginDir + string(os.PathListSeparator) + os.Getenv("PATH")}
	kubectl.Record = io.MultiWriter(&outputs, GinkgoWriter)

	By("starting the TIDAL-compatible server and the operator")
	tidalServer = support.StartTIDAL(
		tidalserver.Client{ID: pluginClient, Secret: canaryClientSecret, Name: "Plugin suite"})
	operator := support.NewOperator(controlPlane, tidalServer.Endpoints, support.OperatorOptions{
		TIDALTimeout:            5 * time.Second,
		MaxConcurrentReconciles: 2,
	})
	DeferCleanup(support.RunManager(operator))
})

var _ = AfterSuite(func() {
	// The leak search runs last, over everything the specs and the operator printed.
	if !CurrentSpecReport().Failed() {
		By("searching the plugin's and kubectl's output and the operator's logs for every token handed out")
		expectNoLeaks()
	}
})
