// Package e2e installs the Helm chart into a real kube-apiserver (envtest's control plane)
// with the real helm and kubectl, then runs the operator binary out of cluster under the
// chart's own ServiceAccount against the project's TIDAL-compatible server on loopback.
package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
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
	repoRoot = support.RepoPath()
	chartDir = filepath.Join(repoRoot, "charts", "tidal-session-operator")

	controlPlane *support.ControlPlane
	k8s          client.Client
	tidalServer  *support.TIDAL
	// tidalURL is the loopback base URL of the TIDAL-compatible server.
	tidalURL string
	// workDir holds files that outlive a spec: kubeconfigs, values files, the binary.
	workDir string
	// operatorBinary is ./cmd/manager, built once for the suite.
	operatorBinary string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func() {
	By("building the operator binary")
	// A temporary directory made here lasts until the suite's cleanup.
	workDir = GinkgoT().TempDir()
	operatorBinary = support.BuildBinary("./cmd/manager", workDir)

	By("starting kube-apiserver and etcd")
	// No CRD is installed here: the chart installs them, and the specs check that it does.
	controlPlane = support.StartControlPlane(support.ControlPlaneOptions{
		WithoutCRDs: true,
		Schemes:     []func(*runtime.Scheme) error{apiextensionsv1.AddToScheme},
	})
	k8s = controlPlane.Client
	kubectlTool = controlPlane.Kubectl()
	kubectlTool.Record = &seen
	helmTool = controlPlane.Helm()
	helmTool.Record = &seen

	tidalServer = support.StartTIDAL(tidalserver.Client{
		ID: e2eClient, Secret: canaryClientSecret, Name: "End-to-end", AccessTokenLifetime: time.Minute,
	})
	tidalURL = tidalServer.HTTP.URL
})

var _ = AfterSuite(func() {
	if k8s == nil || CurrentSpecReport().Failed() {
		return
	}
	By("searching logs, Events, status, metrics and tool output for every token and secret")
	expectNoLeaks(context.Background())
})
