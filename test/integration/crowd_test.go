package integration

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

var _ = Describe("Many sessions", func() {
	It("refreshes 200 sessions created at once spread over the allowed window, none late", func() {
		const n = 200
		ns := newNamespace()
		applySessions(ns, "c", crowdClient, n, 5580000)
		list := func() []sessionsv1alpha1.TidalSession {
			var l sessionsv1alpha1.TidalSessionList
			Expect(k8s.List(context.Background(), &l, client.InNamespace(ns))).To(Succeed())
			return l.Items
		}
		refreshedAtLeast := func(count int64) func() int {
			return func() int {
				done := 0
				for _, s := range list() {
					if s.Status.RefreshCount >= count {
						done++
					}
				}
				return done
			}
		}
		Eventually(refreshedAtLeast(1), 60*time.Second, time.Second).Should(Equal(n))
		firstExpiry := map[string]time.Time{}
		for _, s := range list() {
			firstExpiry[s.Name] = s.Status.AccessTokenExpiresAt.Time
		}

		// The 2-minute tokens are refreshed half-way, less each session's spread of up to 12 s.
		Eventually(refreshedAtLeast(2), 90*time.Second, time.Second).Should(Equal(n))
		perSecond := map[int64]int{}
		for _, s := range list() {
			Expect(s.Status.LastRefreshTime.Time.Before(firstExpiry[s.Name])).To(BeTrue(),
				"session %s refreshed after its token expired", s.Name)
			perSecond[s.Status.LastRefreshTime.Unix()]++
		}
		busiest := 0
		for _, c := range perSecond {
			busiest = max(busiest, c)
		}
		GinkgoWriter.Printf("200 sessions: second refreshes in %d distinct seconds, at most %d in one\n",
			len(perSecond), busiest)
		Expect(len(perSecond)).To(BeNumerically(">=", 8), "refreshes were not spread")
	})
})
