package integration

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// The crash window: TIDAL rotates the refresh token in an answer that the operator never
// stores. The TIDAL-compatible server does the refresh and drops its answer; the operator
// is stopped right then and another one takes over, as after a crash.
var _ = Describe("The crash window of a rotated refresh token", Ordered, func() {
	BeforeAll(func() {
		Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: crashNamespace}})).
			To(Succeed())
	})

	storedToken := func(name string) string {
		s := &corev1.Secret{}
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: crashNamespace, Name: name + "-creds"}, s)).
			To(Succeed())
		return string(s.Data["refresh_token"])
	}
	tokenRequests := func() int {
		n := 0
		for key, count := range tidalSrv.Stats().ClientOutcomes[crashClient] {
			if len(key) > len("refresh_token/") && key[:len("refresh_token/")] == "refresh_token/" {
				n += count
			}
		}
		return n
	}

	// crash makes TIDAL drop its answer to the session's next refresh, asks for that refresh,
	// stops the operator once TIDAL has answered into the void, and starts another.
	crash := func(name string, first *replica) {
		GinkgoHelper()
		dropped := func() int { return tidalSrv.Stats().ClientOutcomes[crashClient]["token/dropped"] }
		before := dropped()
		Expect(tidalSrv.InjectFault(tidalserver.Fault{Endpoint: tidalserver.EndpointToken, ClientID: crashClient,
			DropAnswer: true})).To(Succeed())
		_, err := kubectl("", "-n", crashNamespace, "annotate", "tidalsession/"+name, "--overwrite",
			sessionsv1alpha1.RefreshRequestAnnotation+"="+time.Now().UTC().Format(time.RFC3339))
		Expect(err).NotTo(HaveOccurred())
		Eventually(dropped, 45*time.Second, 20*time.Millisecond).Should(Equal(before + 1))
		first.stop()
		Expect(getSession(crashNamespace, name).Status.RefreshStartedAt).NotTo(BeNil(),
			"status does not say that TIDAL's answer was awaited")
	}

	It("continues with the rotated token when TIDAL accepts the old one for a grace period", func() {
		tidalSrv.SetRotation(tidalserver.Rotation{Enabled: true, Grace: time.Minute})
		DeferCleanup(tidalSrv.SetRotation, tidalserver.Rotation{})
		first := startReplica("crash-grace-1", crashNamespace)
		applySession(crashNamespace, "grace", crashClient, issueGrant(crashClient, 5570001, "SE"))
		Eventually(func() int64 { return getSession(crashNamespace, "grace").Status.RefreshCount }, 30*time.Second,
			250*time.Millisecond).Should(BeEquivalentTo(1))
		beforeCrash := storedToken("grace")

		crash("grace", first)
		startReplica("crash-grace-2", crashNamespace)
		Eventually(func() int64 { return getSession(crashNamespace, "grace").Status.RefreshCount }, 45*time.Second,
			250*time.Millisecond).Should(BeEquivalentTo(2))
		s := getSession(crashNamespace, "grace")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
		Expect(s.Status.RefreshStartedAt).To(BeNil())
		// TIDAL answered the retired token with the one rotated in the lost answer, which is
		// now stored; the retired one is dead after the grace period.
		Expect(storedToken("grace")).NotTo(Equal(beforeCrash))
		rememberSecret(storedToken("grace"))
	})

	It("asks for a new login, saying the rotated token was lost, and never loops, without a grace period", func() {
		tidalSrv.SetRotation(tidalserver.Rotation{Enabled: true})
		DeferCleanup(tidalSrv.SetRotation, tidalserver.Rotation{})
		first := startReplica("crash-nograce-1", crashNamespace)
		applySession(crashNamespace, "nograce", crashClient, issueGrant(crashClient, 5570002, "SE"))
		Eventually(func() int64 { return getSession(crashNamespace, "nograce").Status.RefreshCount }, 30*time.Second,
			250*time.Millisecond).Should(BeEquivalentTo(1))

		crash("nograce", first)
		startReplica("crash-nograce-2", crashNamespace)
		Eventually(readyCondition(crashNamespace, "nograce"), 45*time.Second, 250*time.Millisecond).
			Should(HaveField("Reason", sessionsv1alpha1.ReasonRefreshTokenLost))
		s := getSession(crashNamespace, "nograce")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseReauthRequired))
		out, err := kubectl("", "-n", crashNamespace, "describe", "tidalsession/nograce")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("Log in again"))
		Expect(out).To(ContainSubstring(sessionsv1alpha1.ReasonRefreshTokenLost))

		By("asking TIDAL nothing more until the credentials change")
		requests := tokenRequests()
		Consistently(tokenRequests, 6*time.Second, 500*time.Millisecond).Should(Equal(requests))
		GinkgoWriter.Printf("crash window without grace: %d token requests for the session in all\n", requests)
	})
})
