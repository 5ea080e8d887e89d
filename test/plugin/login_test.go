package plugin

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

var _ = Describe("kubectl tidal login", func() {
	It("prints the link and the code of a device login and returns once the user approved", func() {
		ns := newNamespace()
		dead := issueGrant(7100200)
		Expect(tidalServer.Server.RevokeGrant(dead)).To(Succeed())
		r := kubectlTidal(sessionFile("flat", dead, madeUpAccessToken()),
			"import", "-", "--name", "hugo", "-n", ns, "--client-secret-file", clientSecretFile())
		Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		ctx := context.Background()
		Eventually(func() sessionsv1alpha1.Phase { return getSession(ns, "hugo").Status.Phase }, 30*time.Second, 200*time.Millisecond).
			Should(Equal(sessionsv1alpha1.PhaseReauthRequired))

		By("refusing while the spec does not allow device logins")
		r = kubectlTidal("", "login", "hugo", "-n", ns, "--timeout", "5s")
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(ContainSubstring("deviceLogin"))

		s := &sessionsv1alpha1.TidalSession{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "hugo"}, s)).To(Succeed())
		s.Spec.Reauth.DeviceLogin = true
		Expect(k8s.Update(ctx, s)).To(Succeed())

		By("following the login while the user approves the code at TIDAL")
		done := make(chan run, 1)
		go func() {
			defer GinkgoRecover()
			done <- kubectlTidal("", "login", "hugo", "-n", ns, "--timeout", "60s")
		}()
		var code string
		Eventually(func() string {
			if l := getSession(ns, "hugo").Status.DeviceLogin; l != nil {
				code = l.UserCode
			}
			return code
		}, 30*time.Second, 200*time.Millisecond).ShouldNot(BeEmpty())
		link := getSession(ns, "hugo").Status.DeviceLogin.VerificationURI
		Expect(tidalServer.Server.ApproveDevice(code, tidalserver.User{ID: 7100200, CountryCode: "NO"})).To(Succeed())
		var out run
		Eventually(done, 60*time.Second).Should(Receive(&out))
		Expect(out.err).NotTo(HaveOccurred(), out.stderr)
		Expect(out.stdout + out.stderr).To(And(ContainSubstring(link), ContainSubstring(code)))
		Expect(getSession(ns, "hugo").Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
	})
})
