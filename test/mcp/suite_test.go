// Package mcp tests cmd/tidal-mcp, built from source, against a real kube-apiserver and etcd
// (envtest, binaries built by hack/tools.sh), with the operator's reconciler and the
// project's TIDAL-compatible server running in-process. MCP clients are the Go SDK's own
// and, as an outside client, the MCP Inspector's command-line mode (test/mcp/inspector).
package mcp

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
	"github.com/tidal-mcp/tidal-session-operator/test/support/sink"
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
	controlPlane *support.ControlPlane
	k8s          client.Client
	tidalServer  *support.TIDAL
	operatorLog  sink.Buffer
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
	support.CaptureLogs(&operatorLog, 1)
	root, err := filepath.Abs(support.RepoPath())
	Expect(err).NotTo(HaveOccurred())

	By("building cmd/tidal-mcp and installing the MCP Inspector")
	serverBin = support.BuildBinary("./cmd/tidal-mcp", GinkgoT().TempDir())
	install := exec.Command(filepath.Join(root, "test", "mcp", "inspector", "install.sh"))
	out, err := install.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "installing the Inspector: %s", out)
	GinkgoWriter.Printf("%s", out)
	inspectorBin = filepath.Join(root, "test", "mcp", "inspector", "node_modules", ".bin", "mcp-inspector")

	By("starting etcd and kube-apiserver")
	controlPlane = support.StartControlPlane(support.ControlPlaneOptions{})
	k8s = controlPlane.Client
	adminKubeconfig = controlPlane.Kubeconfig

	By("starting the TIDAL-compatible server and the operator")
	tidalServer = support.StartTIDAL(
		tidalserver.Client{ID: clientID, Secret: canaryClientSecret, Name: "MCP suite"})
	operator := support.NewOperator(controlPlane, tidalServer.Endpoints, support.OperatorOptions{
		TIDALTimeout:            5 * time.Second,
		MaxConcurrentReconciles: 4,
	})
	DeferCleanup(support.RunManager(operator))
	ctx := context.Background()

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
	Expect(tidalServer.Server.RevokeGrant(dead)).To(Succeed())
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
