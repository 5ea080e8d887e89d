package integration

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// replica is one operator process of a spec that runs its own: a manager with leader
// election, serving one of ownOperatorNamespaces only.
type replica struct {
	elected <-chan struct{}
	stop    func()
}

func startReplica(name, ns string) *replica {
	GinkgoHelper()
	mgr, err := ctrl.NewManager(testEnv.Config, ctrl.Options{
		Scheme:                        k8s.Scheme(),
		Cache:                         controller.CacheOptions([]string{ns}),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              "tidal-session-operator-replicas",
		LeaderElectionNamespace:       ns,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 ptrTo(4 * time.Second),
		RenewDeadline:                 ptrTo(3 * time.Second),
		RetryPeriod:                   ptrTo(500 * time.Millisecond),
	})
	Expect(err).NotTo(HaveOccurred())
	endpoints := tidal.Endpoints{AuthBaseURL: tidalHTTP.URL + "/v1/oauth2/", APIBaseURL: tidalHTTP.URL + "/v1/"}
	Expect((&controller.TidalSessionReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("tidal-session-operator"), Clock: clock.RealClock{},
		TIDAL: tidal.NewClient(endpoints, nil, clock.RealClock{}), RecheckInterval: 2 * time.Second,
		Name: "tidalsession-" + name, MaxConcurrentReconciles: 4,
	}).SetupWithManager(mgr)).To(Succeed())

	r := &replica{elected: mgr.Elected(), stop: runManager(mgr)}
	DeferCleanup(r.stop)
	return r
}

func ptrTo[T any](v T) *T { return &v }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

var _ = Describe("Two operator replicas", func() {
	It("refresh each session once per due time, also across a fail-over", func() {
		ctx := context.Background()
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: replicasNamespace}})).To(Succeed())
		a := startReplica("a", replicasNamespace)
		Eventually(a.elected, 20*time.Second).Should(BeClosed())
		b := startReplica("b", replicasNamespace)

		const n = 5
		applySessions(replicasNamespace, "p", replicasClient, n, 5590000)
		sessions := func() []sessionsv1alpha1.TidalSession {
			var l sessionsv1alpha1.TidalSessionList
			Expect(k8s.List(ctx, &l, client.InNamespace(replicasNamespace))).To(Succeed())
			return l.Items
		}
		allRefreshed := func(count int64) func() bool {
			return func() bool {
				items := sessions()
				for _, s := range items {
					if s.Status.RefreshCount < count {
						return false
					}
				}
				return len(items) == n
			}
		}
		Eventually(allRefreshed(2), 60*time.Second, time.Second).Should(BeTrue())
		Expect(isClosed(b.elected)).To(BeFalse(), "the second replica led while the first did")

		By("failing over to the second replica")
		a.stop()
		Eventually(b.elected, 20*time.Second).Should(BeClosed())
		Eventually(allRefreshed(3), 60*time.Second, time.Second).Should(BeTrue())

		var refreshes int64
		for _, s := range sessions() {
			refreshes += s.Status.RefreshCount
		}
		requests := tidalSrv.Stats().ClientOutcomes[replicasClient]
		GinkgoWriter.Printf("two replicas: %d refreshes in status, TIDAL answered %v\n", refreshes, requests)
		Expect(requests["refresh_token/ok"]).To(BeEquivalentTo(refreshes),
			"TIDAL saw refreshes that no status counts: two replicas refreshed the same session")
	})
})
