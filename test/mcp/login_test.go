package mcp

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

var _ = Describe("tidal_login", func() {
	It("starts the device login of a session that needs one, and the session recovers once the user approves", func() {
		ctx := context.Background()
		dead := issueGrant(7400)
		Expect(tidalServer.Server.RevokeGrant(dead)).To(Succeed())
		createSession(nsMain, "gwen", dead)
		s := &sessionsv1alpha1.TidalSession{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: nsMain, Name: "gwen"}, s)).To(Succeed())
		s.Spec.Reauth.DeviceLogin = true
		Expect(k8s.Update(ctx, s)).To(Succeed())
		Eventually(phaseOf(nsMain, "gwen"), 30*time.Second, 200*time.Millisecond).Should(Equal(sessionsv1alpha1.PhaseReauthRequired))

		cs := connectStdio(serverArgs(adminKubeconfig)...)
		r := callTool(cs, toolLogin, map[string]any{"name": "gwen"})
		Expect(r.IsError).To(BeFalse(), r.Text)
		Expect(r.Structured).To(HaveKeyWithValue("state", "Pending"))
		link, _ := r.Structured["verificationURI"].(string)
		code, _ := r.Structured["userCode"].(string)
		Expect(link).To(HavePrefix("https://"))
		Expect(code).NotTo(BeEmpty())
		Expect(r.Text).To(And(ContainSubstring(link), ContainSubstring(code)))

		By("answering a second call with the same login, not a new one")
		again := callTool(cs, toolLogin, map[string]any{"name": "gwen"})
		Expect(again.Structured).To(HaveKeyWithValue("userCode", code))

		By("recovering once the user approves the code at TIDAL")
		Expect(tidalServer.Server.ApproveDevice(code, tidalserver.User{ID: 7400, CountryCode: "NO"})).To(Succeed())
		Eventually(phaseOf(nsMain, "gwen"), 30*time.Second, 200*time.Millisecond).Should(Equal(sessionsv1alpha1.PhaseActive))
		done := callTool(cs, toolLogin, map[string]any{"name": "gwen"})
		Expect(done.IsError).To(BeFalse())
		Expect(strings.ToLower(done.Text)).To(ContainSubstring("active"))
	})

	It("refuses a login for a session whose spec does not allow it", func() {
		cs := connectStdio(serverArgs(adminKubeconfig)...)
		r := callTool(cs, toolLogin, map[string]any{"name": "frank"})
		Expect(r.IsError).To(BeTrue())
		Expect(r.Text).To(ContainSubstring("deviceLogin"))
	})
})
