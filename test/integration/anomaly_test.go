package integration

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// storedRefreshToken is the refresh token in the session's credentials Secret NAME-creds.
func storedRefreshToken(ns, name string) string {
	GinkgoHelper()
	s, err := getSecret(ns, name+"-creds")
	Expect(err).NotTo(HaveOccurred())
	rt := string(s.Data["refresh_token"])
	rememberSecret(rt)
	return rt
}

// Anomalies that TIDAL's answers reveal. Each spec asks for a refresh right after the first
// one, which the operator makes no sooner than schedule.MinInterval (30 s) after it.
var _ = Describe("Anomalies in TIDAL's answers", func() {
	It("quarantines a session in Enforce mode when TIDAL reports another country behind it", func() {
		ns := newNamespace()
		applyBoundSession(ns, "ivy", "Enforce")
		Eventually(readyCondition(ns, "ivy"), 20*time.Second, 250*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))
		Expect(getSession(ns, "ivy").Status.CountryCode).To(Equal("NO"))
		identity, quarantines := securityEvents(metrics.SecurityIdentityChanged), securityEvents(metrics.SecurityQuarantined)

		By("moving the account to another country at TIDAL, then asking for a refresh")
		Expect(tidalSrv.SetCountry(storedRefreshToken(ns, "ivy"), "DE")).To(Succeed())
		requestAt(ns, "ivy", sessionsv1alpha1.RefreshRequestAnnotation)
		Eventually(func() sessionsv1alpha1.Phase { return getSession(ns, "ivy").Status.Phase }, 45*time.Second,
			250*time.Millisecond).Should(Equal(sessionsv1alpha1.PhaseQuarantined))
		Eventually(func(g Gomega) {
			data := outputData(g, ns, "ivy-token")
			g.Expect(data[sessionsv1alpha1.KeyAccessToken]).To(BeEmpty())
			g.Expect(string(data[sessionsv1alpha1.KeyTokenStatus])).To(Equal(sessionsv1alpha1.TokenStatusQuarantined))
		}, 5*time.Second, 100*time.Millisecond).Should(Succeed())
		s := getSession(ns, "ivy")
		Expect(s.Status.Binding.QuarantineReason).To(ContainSubstring("country NO → DE"))
		Expect(meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionAnomaly)).To(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", sessionsv1alpha1.ReasonIdentityChanged)))
		Expect(sessionEvents(ns, "ivy", sessionsv1alpha1.ReasonIdentityChanged)).NotTo(BeEmpty())
		Expect(securityEvents(metrics.SecurityIdentityChanged) - identity).To(BeEquivalentTo(1))
		Expect(securityEvents(metrics.SecurityQuarantined) - quarantines).To(BeEquivalentTo(1))
		out, err := kubectl("", "-n", ns, "describe", "tidalsession/ivy")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("country NO → DE"))

		By("approving: a fresh token, and DE is now the known country")
		requestAt(ns, "ivy", sessionsv1alpha1.BindingApprovalAnnotation)
		Eventually(func(g Gomega) {
			g.Expect(getSession(ns, "ivy").Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
			g.Expect(outputData(g, ns, "ivy-token")[sessionsv1alpha1.KeyAccessToken]).NotTo(BeEmpty())
		}, 20*time.Second, 250*time.Millisecond).Should(Succeed())
		Expect(getSession(ns, "ivy").Status.CountryCode).To(Equal("DE"))
	})

	It("reports a rotated refresh token that someone else used first as a possible theft", func() {
		tidalSrv.SetRotation(tidalserver.Rotation{Enabled: true})
		DeferCleanup(tidalSrv.SetRotation, tidalserver.Rotation{})
		ns := newNamespace()
		applySession(ns, "tom", longClient, issueGrant(longClient, 5590002, "SE"))
		Eventually(readyCondition(ns, "tom"), 20*time.Second, 250*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))
		Expect(getSession(ns, "tom").Status.IssuedTokenVersion).NotTo(BeEmpty(),
			"the first refresh rotated the token, and the operator stored it")

		By("someone who copied the stored refresh token uses it first; TIDAL rotates it away")
		stolen, err := tidalAPI.Refresh(context.Background(), tidal.Credentials{ClientID: longClient,
			ClientSecret: canaryClientSecret, RefreshToken: storedRefreshToken(ns, "tom")})
		Expect(err).NotTo(HaveOccurred())
		rememberSecret(stolen.AccessToken)
		rememberSecret(stolen.RefreshToken)
		reused := securityEvents(metrics.SecurityRefreshTokenReused)

		requestAt(ns, "tom", sessionsv1alpha1.RefreshRequestAnnotation)
		Eventually(readyCondition(ns, "tom"), 45*time.Second, 250*time.Millisecond).Should(
			HaveField("Reason", sessionsv1alpha1.ReasonRefreshTokenReused))
		Expect(getSession(ns, "tom").Status.Phase).To(Equal(sessionsv1alpha1.PhaseReauthRequired))
		Expect(securityEvents(metrics.SecurityRefreshTokenReused) - reused).To(BeEquivalentTo(1))
		events := sessionEvents(ns, "tom", sessionsv1alpha1.ReasonRefreshTokenReused)
		Expect(events).NotTo(BeEmpty())
		Expect(events[0].Type).To(Equal("Warning"))
		Expect(events[0].Note).To(ContainSubstring("Possible theft"))
	})
})
