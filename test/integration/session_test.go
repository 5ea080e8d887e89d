package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

var _ = Describe("TidalSession", func() {
	ctx := context.Background()

	It("becomes Ready after kubectl apply, with a Secret whose token TIDAL accepts", func() {
		ns := newNamespace()
		rt := issueGrant(longClient, 5550001, "NO")
		applySession(ns, "alice", longClient, rt)

		start := time.Now()
		_, err := kubectl("", "-n", ns, "wait", "--for=condition=Ready", "tidalsession/alice", "--timeout=30s")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("session Ready %v after kubectl apply\n", time.Since(start).Round(time.Millisecond))

		secret, err := getSecret(ns, "alice-token")
		Expect(err).NotTo(HaveOccurred())
		for _, k := range []string{sessionsv1alpha1.KeyAccessToken, sessionsv1alpha1.KeyTokenType, sessionsv1alpha1.KeyExpiresAt,
			sessionsv1alpha1.KeyUserID, sessionsv1alpha1.KeyCountryCode, sessionsv1alpha1.KeySessionFile,
			sessionsv1alpha1.KeyTokenStatus} {
			Expect(secret.Data).To(HaveKey(k))
		}
		Expect(secret.Data).NotTo(HaveKey("refresh_token"))
		Expect(string(secret.Data[sessionsv1alpha1.KeyUserID])).To(Equal("5550001"))
		Expect(string(secret.Data[sessionsv1alpha1.KeyCountryCode])).To(Equal("NO"))

		info, err := tidalAPI.Session(ctx, string(secret.Data[sessionsv1alpha1.KeyAccessToken]))
		Expect(err).NotTo(HaveOccurred(), "TIDAL must accept the token in the output Secret")
		Expect(info.UserID).To(Equal("5550001"))

		s := getSession(ns, "alice")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
		Expect(s.Status.ObservedGeneration).To(Equal(s.Generation))
		Expect(s.Status.UserID).To(Equal("5550001"))
		Expect(s.Status.AccessTokenExpiresAt.Time).To(BeTemporally("~", time.Now().Add(time.Hour), 10*time.Second))

		out, err := kubectl("", "-n", ns, "get", "tidalsessions", "-o", "wide")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(And(ContainSubstring("PHASE"), ContainSubstring("Active"), ContainSubstring("5550001"),
			ContainSubstring("NEXT REFRESH"), ContainSubstring("alice-token")))
		_, err = kubectl("", "-n", ns, "get", "ts", "alice")
		Expect(err).NotTo(HaveOccurred(), "the short name works")

		By("exporting the session's state as metrics")
		Expect(metricsText()).To(And(
			ContainSubstring(fmt.Sprintf(`tidal_session_ready{name="alice",namespace=%q} 1`, ns)),
			ContainSubstring(fmt.Sprintf(`tidal_session_phase{name="alice",namespace=%q,phase="Active"} 1`, ns)),
			MatchRegexp(`tidal_session_access_token_expiry_timestamp_seconds\{name="alice",namespace=%q\} \d`, ns)))
	})

	It("refreshes 60-second tokens before they expire, and a reader never sees an expired one", func() {
		ns := newNamespace()
		rt := issueGrant(shortClient, 5550002, "DE")
		applySession(ns, "bob", shortClient, rt)
		Eventually(readyCondition(ns, "bob"), 30*time.Second, 200*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))

		// A consumer polls the Secret as a mounted volume would show it, and checks each token
		// it reads against the expiry the Secret states and against TIDAL itself.
		var polls, rejected, expired atomic.Int32
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
				secret, err := getSecret(ns, "bob-token")
				if err != nil {
					continue
				}
				polls.Add(1)
				exp, perr := time.Parse(time.RFC3339, string(secret.Data[sessionsv1alpha1.KeyExpiresAt]))
				if perr != nil || !time.Now().Before(exp) {
					expired.Add(1)
				}
				if _, err := tidalAPI.Session(ctx, string(secret.Data[sessionsv1alpha1.KeyAccessToken])); err != nil {
					rejected.Add(1)
				}
			}
		}()

		first := getSession(ns, "bob").Status.RefreshCount
		var lastExpiry time.Time
		for i := 1; i <= 3; i++ {
			Eventually(func() int64 { return getSession(ns, "bob").Status.RefreshCount }, 45*time.Second, 250*time.Millisecond).
				Should(BeNumerically(">=", first+int64(i)))
			s := getSession(ns, "bob")
			GinkgoWriter.Printf("refresh %d at %s, expiry %s\n", i, s.Status.LastRefreshTime.UTC().Format(time.RFC3339),
				s.Status.AccessTokenExpiresAt.UTC().Format(time.RFC3339))
			if !lastExpiry.IsZero() {
				Expect(s.Status.LastRefreshTime.Time.Before(lastExpiry)).To(BeTrue(), "refresh %d came after the previous token expired", i)
			}
			lastExpiry = s.Status.AccessTokenExpiresAt.Time
		}
		close(stop)
		wg.Wait()
		GinkgoWriter.Printf("reader polled %d times: %d expired, %d rejected by TIDAL\n", polls.Load(), expired.Load(), rejected.Load())

		By("keeping routine refreshes out of the Events kubectl describe shows")
		out, err := kubectl("", "-n", ns, "describe", "tidalsession/bob")
		Expect(err).NotTo(HaveOccurred())
		events := out[strings.Index(out, "Events:"):]
		GinkgoWriter.Printf("kubectl describe after %d refreshes:\n%s\n", getSession(ns, "bob").Status.RefreshCount, events)
		Expect(strings.Count(events, sessionsv1alpha1.ReasonRefreshed)).To(Equal(1), "one Event for the first token only")
		Expect(strings.Count(events, "\n  Normal") + strings.Count(events, "\n  Warning")).To(Equal(1))
		Expect(polls.Load()).To(BeNumerically(">", 60))
		Expect(expired.Load()).To(BeZero())
		Expect(rejected.Load()).To(BeZero())
	})

	It("refreshes once on request through the refresh-requested-at annotation", func() {
		ns := newNamespace()
		rt := issueGrant(longClient, 5550008, "AT")
		applySession(ns, "hank", longClient, rt)
		_, err := kubectl("", "-n", ns, "wait", "--for=condition=Ready", "tidalsession/hank", "--timeout=30s")
		Expect(err).NotTo(HaveOccurred())
		first := getSession(ns, "hank").Status
		Expect(first.RefreshCount).To(BeEquivalentTo(1))

		requested := time.Now().UTC().Format(time.RFC3339)
		_, err = kubectl("", "-n", ns, "annotate", "tidalsession/hank", "--overwrite",
			sessionsv1alpha1.RefreshRequestAnnotation+"="+requested)
		Expect(err).NotTo(HaveOccurred())
		// Refreshes stay 30 seconds apart, so the request waits for that.
		Eventually(func() int64 { return getSession(ns, "hank").Status.RefreshCount }, 45*time.Second, 250*time.Millisecond).
			Should(BeEquivalentTo(2))
		s := getSession(ns, "hank").Status
		Expect(s.LastRefreshRequest).To(Equal(requested))
		Expect(s.LastRefreshTime.Sub(first.LastRefreshTime.Time)).To(BeNumerically(">=", 29*time.Second))
		Consistently(func() int64 { return getSession(ns, "hank").Status.RefreshCount }, 3*time.Second, 500*time.Millisecond).
			Should(BeEquivalentTo(2), "a handled request is not acted on again")
		out, err := kubectl("", "-n", ns, "events", "--for", "tidalsession/hank")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring(sessionsv1alpha1.ReasonRefreshRequested))
	})

	It("re-creates a deleted output Secret", func() {
		ns := newNamespace()
		rt := issueGrant(longClient, 5550003, "SE")
		applySession(ns, "carol", longClient, rt)
		Eventually(func() error { _, err := getSecret(ns, "carol-token"); return err }, 30*time.Second).Should(Succeed())
		old, _ := getSecret(ns, "carol-token")

		_, err := kubectl("", "-n", ns, "delete", "secret", "carol-token")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() types.UID {
			s, err := getSecret(ns, "carol-token")
			if err != nil {
				return ""
			}
			return s.UID
		}, 30*time.Second, 200*time.Millisecond).ShouldNot(Or(BeEmpty(), Equal(old.UID)))
		Eventually(readyCondition(ns, "carol"), 10*time.Second).Should(HaveField("Status", metav1.ConditionTrue))
	})

	It("reports a missing credentials Secret and recovers when it appears", func() {
		ns := newNamespace()
		_, err := kubectl(sessionYAML(ns, "dave", "dave-creds", "dave-token"), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(readyCondition(ns, "dave"), 30*time.Second, 200*time.Millisecond).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", sessionsv1alpha1.ReasonCredentialsMissing),
			HaveField("Message", ContainSubstring("dave-creds"))))
		out, err := kubectl("", "-n", ns, "describe", "tidalsession", "dave")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring(sessionsv1alpha1.ReasonCredentialsMissing))

		rt := issueGrant(longClient, 5550004, "FI")
		_, err = kubectl(credentialsSecretYAML(ns, "dave-creds", longClient, rt), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(readyCondition(ns, "dave"), 30*time.Second, 200*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))
		Expect(getSession(ns, "dave").Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
	})

	It("asks for a new login when TIDAL rejects the grant, and resumes when the Secret has a new token", func() {
		ns := newNamespace()
		dead := issueGrant(reauthClient, 5550007, "NL")
		Expect(tidalSrv.RevokeGrant(dead)).To(Succeed())
		applySession(ns, "gina", reauthClient, dead)
		Eventually(readyCondition(ns, "gina"), 30*time.Second, 200*time.Millisecond).Should(And(
			HaveField("Reason", sessionsv1alpha1.ReasonReauthRequired),
			HaveField("Message", ContainSubstring("Log in again"))))
		Expect(getSession(ns, "gina").Status.Phase).To(Equal(sessionsv1alpha1.PhaseReauthRequired))

		By("not sending the rejected token to TIDAL again")
		requests := func() int { return tidalSrv.Stats().Clients[reauthClient] }
		seen := requests()
		Consistently(requests, 5*time.Second, 500*time.Millisecond).Should(Equal(seen))

		By("resuming on its own once the credentials Secret holds a new refresh token")
		fresh := issueGrant(reauthClient, 5550007, "NL")
		_, err := kubectl(credentialsSecretYAML(ns, "gina-creds", reauthClient, fresh), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(readyCondition(ns, "gina"), 30*time.Second, 200*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))
		Expect(getSession(ns, "gina").Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
		out, err := kubectl("", "-n", ns, "events", "--for", "tidalsession/gina")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(And(ContainSubstring(sessionsv1alpha1.ReasonReauthRequired), ContainSubstring(sessionsv1alpha1.ReasonRefreshed)))
	})

	It("pauses all 20 sessions of a client TIDAL revokes, with a bounded number of requests", func() {
		ns := newNamespace()
		applySessions(ns, "r", revokedClient, 20, 5560000)
		_, err := kubectl("", "-n", ns, "wait", "--for=condition=Ready", "tidalsessions", "--all", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred())

		requests := func() int { return tidalSrv.Stats().Clients[revokedClient] }
		before, revokedAt := requests(), time.Now()
		Expect(tidalSrv.RevokeClient(revokedClient)).To(Succeed())
		rejected := func() int {
			var list sessionsv1alpha1.TidalSessionList
			Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			n := 0
			for _, s := range list.Items {
				if c := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady); c != nil &&
					c.Reason == sessionsv1alpha1.ReasonClientRejected {
					n++
				}
			}
			return n
		}
		// The 60-second tokens fall due within 30 seconds.
		Eventually(rejected, 50*time.Second, time.Second).Should(Equal(20))
		time.Sleep(20 * time.Second)
		sent := requests() - before
		GinkgoWriter.Printf("20 sessions of a revoked client: %d token requests in %v\n", sent,
			time.Since(revokedAt).Round(time.Second))
		// Without the shared pause, each session would retry on its own: about 80 requests.
		Expect(sent).To(BeNumerically("<=", 12))
	})

	It("leaves a pre-existing unmanaged Secret of the output name untouched", func() {
		ns := newNamespace()
		mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "erin-token", Namespace: ns},
			StringData: map[string]string{"note": "not yours"}}
		Expect(k8s.Create(ctx, mine)).To(Succeed())
		before, err := getSecret(ns, "erin-token")
		Expect(err).NotTo(HaveOccurred())

		rt := issueGrant(longClient, 5550005, "DK")
		applySession(ns, "erin", longClient, rt)
		Eventually(readyCondition(ns, "erin"), 30*time.Second, 200*time.Millisecond).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", sessionsv1alpha1.ReasonOutputSecretConflict)))
		Consistently(func() string {
			s, _ := getSecret(ns, "erin-token")
			return s.ResourceVersion
		}, 3*time.Second, 500*time.Millisecond).Should(Equal(before.ResourceVersion))
		after, _ := getSecret(ns, "erin-token")
		Expect(after.Data).To(Equal(before.Data))
		Expect(after.OwnerReferences).To(BeEmpty())
	})
})

var _ = Describe("Refresh-token rotation", func() {
	It("stores each rotated refresh token before using the new access token, and keeps going", func() {
		tidalSrv.SetRotation(tidalserver.Rotation{Enabled: true, RevokeOnReuse: true})
		DeferCleanup(tidalSrv.SetRotation, tidalserver.Rotation{})
		ns := newNamespace()
		first := issueGrant(longClient, 5550009, "BE")
		applySession(ns, "ivy", longClient, first)
		_, err := kubectl("", "-n", ns, "wait", "--for=condition=Ready", "tidalsession/ivy", "--timeout=30s")
		Expect(err).NotTo(HaveOccurred())
		storedToken := func() string {
			s := &corev1.Secret{}
			Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "ivy-creds"}, s)).To(Succeed())
			return string(s.Data["refresh_token"])
		}
		second := storedToken()
		Expect(second).NotTo(Equal(first), "the rotated refresh token was not stored")

		// The old token is retired, and reusing it would revoke the grant: the next refresh
		// must use the stored one.
		_, err = kubectl("", "-n", ns, "annotate", "tidalsession/ivy", "--overwrite",
			sessionsv1alpha1.RefreshRequestAnnotation+"="+time.Now().UTC().Format(time.RFC3339))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() int64 { return getSession(ns, "ivy").Status.RefreshCount }, 45*time.Second, 250*time.Millisecond).
			Should(BeEquivalentTo(2))
		Expect(storedToken()).NotTo(Or(Equal(first), Equal(second)))
		Expect(getSession(ns, "ivy").Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
		out, err := kubectl("", "-n", ns, "events", "--for", "tidalsession/ivy")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring(sessionsv1alpha1.ReasonTokenRotated))
	})
})
