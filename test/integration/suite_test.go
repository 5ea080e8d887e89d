// Package integration runs the operator against a real kube-apiserver and etcd (envtest,
// binaries built by hack/tools.sh), the real kubectl, and the project's TIDAL-compatible
// server.
package integration

import (
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/fields"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
	"github.com/tidal-mcp/tidal-session-operator/test/support/sink"
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
	controlPlane *support.ControlPlane
	testEnv      *envtest.Environment
	k8s          client.Client
	tidalSrv     *tidalserver.Server
	tidalHTTP    *httptest.Server
	tidalAPI     *tidal.Client
	logs         sink.Buffer
)

func TestIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Integration suite")
}

var _ = BeforeSuite(func() {
	support.CaptureLogs(&logs, 2)

	controlPlane = support.StartControlPlane(support.ControlPlaneOptions{})
	testEnv, k8s = controlPlane.Env, controlPlane.Client

	server := support.StartTIDAL([]tidalserver.Client{
		{ID: shortClient, Secret: canaryClientSecret, Name: "Integration short", AccessTokenLifetime: time.Minute},
		{ID: longClient, Secret: canaryClientSecret, Name: "Integration long"},
		{ID: reauthClient, Secret: canaryClientSecret, Name: "Integration re-login"},
		{ID: revokedClient, Secret: canaryClientSecret, Name: "Integration revoked", AccessTokenLifetime: time.Minute},
		{ID: faultClient, Secret: canaryClientSecret, Name: "Integration faults"},
		{ID: crowdClient, Secret: canaryClientSecret, Name: "Integration crowd", AccessTokenLifetime: 2 * time.Minute},
		{ID: replicasClient, Secret: canaryClientSecret, Name: "Integration replicas", AccessTokenLifetime: time.Minute},
		{ID: crashClient, Secret: canaryClientSecret, Name: "Integration crash"},
	}...)
	tidalSrv, tidalHTTP = server.Server, server.HTTP
	tidalAPI = tidal.NewClient(server.Endpoints, nil, nil)

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
	mgr := support.NewOperator(controlPlane, server.Endpoints, support.OperatorOptions{
		Cache: &cacheOpts,
		// A short timeout, so that a fault spec can answer slower than it.
		TIDALTimeout:            2 * time.Second,
		MaxConcurrentReconciles: 4,
	})
	Expect(metrics.RegisterSessionCollector(mgr.GetClient())).To(Succeed())

	DeferCleanup(runManager(mgr))
})

// runManager starts mgr and returns a function that stops it and waits until it has; it may
// be called more than once.
func runManager(mgr ctrl.Manager) (stop func()) {
	return support.RunManager(mgr)
}

var _ = AfterSuite(func() {
	// The leak search runs last, over everything the specs produced.
	if !CurrentSpecReport().Failed() && k8s != nil {
		By("searching logs, Events, status and metrics for every token and secret handed out")
		expectNoLeaks()
	}
})
