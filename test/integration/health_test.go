package integration

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

func healthyCondition(ns, name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		return meta.FindStatusCondition(getSession(ns, name).Status.Conditions, sessionsv1alpha1.ConditionHealthy)
	}
}

var _ = Describe("Session health checks", func() {
	It("records what TIDAL says of the session, and asks for a new login once TIDAL revokes the grant", func() {
		ns := newNamespace()
		rt := issueGrant(longClient, 5580001, "FI")
		_, err := kubectl(credentialsSecretYAML(ns, "hugo-creds", longClient, rt)+"---\n"+
			sessionYAML(ns, "hugo", "hugo-creds", "hugo-token")+"  healthCheck: {interval: 1m}\n", "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(healthyCondition(ns, "hugo"), 30*time.Second, 250*time.Millisecond).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", sessionsv1alpha1.ReasonHealthCheckPassed)))
		s := getSession(ns, "hugo")
		Expect(s.Status.Health).NotTo(BeNil())
		Expect(s.Status.Health.Result).To(Equal(sessionsv1alpha1.HealthHealthy))
		Expect(s.Status.Health.SessionID).NotTo(BeEmpty())
		Expect(s.Status.Health.ClientName).To(Equal("Integration long"))
		Expect(s.Status.UserID).To(Equal("5580001"))
		Expect(s.Status.CountryCode).To(Equal("FI"))
		out, err := kubectl("", "-n", ns, "get", "tidalsession", "hugo")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("LAST CHECK"))

		By("revoking the grant at TIDAL, which only a check can notice: the token has an hour left")
		refreshes := s.Status.RefreshCount
		Expect(tidalSrv.RevokeGrant(rt)).To(Succeed())
		Eventually(readyCondition(ns, "hugo"), 90*time.Second, time.Second).Should(And(
			HaveField("Reason", sessionsv1alpha1.ReasonSessionGone), HaveField("Message", ContainSubstring("Log in again"))))
		s = getSession(ns, "hugo")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseReauthRequired))
		Expect(s.Status.Health.Result).To(Equal(sessionsv1alpha1.HealthUnhealthy))
		Expect(s.Status.RefreshCount).To(Equal(refreshes), "the check, not a refresh, found it")
		Expect(healthyCondition(ns, "hugo")()).To(HaveField("Status", metav1.ConditionFalse))
		out, err = kubectl("", "-n", ns, "events", "--for", "tidalsession/hugo")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring(sessionsv1alpha1.ReasonSessionGone))
	})

	It("keeps 40 healthy sessions refreshed on time while 10 others fail", func() {
		healthyA, healthyB, failing := newNamespace(), newNamespace(), newNamespace()
		applySessions(healthyA, "ok", shortClient, 20, 5581000)
		applySessions(healthyB, "ok", shortClient, 20, 5582000)

		By("failing five sessions with revoked grants and five whose client TIDAL answers 503")
		var manifest strings.Builder
		for i := range 5 {
			dead := issueGrant(shortClient, 5583000+int64(i), "DK")
			Expect(tidalSrv.RevokeGrant(dead)).To(Succeed())
			name := fmt.Sprintf("revoked%d", i)
			manifest.WriteString(credentialsSecretYAML(failing, name+"-creds", shortClient, dead) + "---\n" +
				sessionYAML(failing, name, name+"-creds", name+"-token") + "---\n")
		}
		Expect(tidalSrv.InjectFault(tidalserver.Fault{Endpoint: tidalserver.EndpointToken, ClientID: faultClient,
			Status: 503, Body: `{"status":503,"error":"server_error"}`, Count: -1})).To(Succeed())
		DeferCleanup(tidalSrv.ResetFaults)
		for i := range 5 {
			name := fmt.Sprintf("outage%d", i)
			manifest.WriteString(credentialsSecretYAML(failing, name+"-creds", faultClient,
				issueGrant(faultClient, 5584000+int64(i), "DK")) + "---\n" +
				sessionYAML(failing, name, name+"-creds", name+"-token") + "---\n")
		}
		_, err := kubectl(manifest.String(), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())

		list := func(ns string) []sessionsv1alpha1.TidalSession {
			var l sessionsv1alpha1.TidalSessionList
			Expect(k8s.List(context.Background(), &l, client.InNamespace(ns))).To(Succeed())
			return l.Items
		}
		healthy := func() []sessionsv1alpha1.TidalSession { return append(list(healthyA), list(healthyB)...) }
		// Three refreshes of 60-second tokens span more than a token's life: every token must
		// have been replaced before it expired, for each of the 40.
		// Each poll also looks for a token that expired before its refresh: a late refresh.
		start := time.Now()
		var late []string
		Eventually(func(g Gomega) {
			items := healthy()
			now := time.Now()
			for _, s := range items {
				if exp := s.Status.AccessTokenExpiresAt; exp != nil && !now.Before(exp.Time) {
					late = append(late, s.Name+" at "+now.Format(time.RFC3339))
				}
			}
			g.Expect(items).To(HaveLen(40))
			for _, s := range items {
				g.Expect(s.Status.RefreshCount).To(BeNumerically(">=", 3), s.Name)
			}
		}, 150*time.Second, time.Second).Should(Succeed())
		GinkgoWriter.Printf("40 healthy sessions refreshed 3 times in %s\n", time.Since(start).Round(time.Second))
		Expect(late).To(BeEmpty(), "tokens expired before their refresh")
		for _, s := range healthy() {
			Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive), s.Name)
			Expect(s.Status.ConsecutiveFailures).To(BeZero(), s.Name)
			Expect(s.Status.AccessTokenExpiresAt.Time).To(BeTemporally(">", time.Now()), s.Name)
		}
		By("reporting each failing session with its own reason")
		for _, s := range list(failing) {
			ready := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady)
			Expect(ready).NotTo(BeNil(), s.Name)
			if strings.HasPrefix(s.Name, "revoked") {
				Expect(ready.Reason).To(Equal(sessionsv1alpha1.ReasonReauthRequired), s.Name)
			} else {
				Expect(ready.Reason).To(Equal(sessionsv1alpha1.ReasonRefreshRetrying), s.Name)
				Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhasePending), s.Name)
			}
		}
	})
})
