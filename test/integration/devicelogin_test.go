package integration

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// uuidForm is the form of the TIDAL-compatible server's device codes. No such value but
// TIDAL's session id belongs in a session's status or Events, which this spec can therefore
// search for device codes it never sees.
var uuidForm = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// applyDeviceLoginSession applies a session of longClient, allowed to log in through the
// device flow, whose refresh token TIDAL has revoked, and waits until it needs a new login and
// shows a pending device login. It returns the login and the revoked refresh token.
func applyDeviceLoginSession(ns, name string) (*sessionsv1alpha1.DeviceLoginStatus, string) {
	GinkgoHelper()
	dead := issueGrant(longClient, 5590001, "NO")
	Expect(tidalSrv.RevokeGrant(dead)).To(Succeed())
	_, err := kubectl(credentialsSecretYAML(ns, name+"-creds", longClient, dead)+"---\n"+
		sessionYAML(ns, name, name+"-creds", name+"-token")+"  reauth: {deviceLogin: true}\n", "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred())
	Eventually(func() *sessionsv1alpha1.DeviceLoginStatus { return getSession(ns, name).Status.DeviceLogin },
		30*time.Second, 250*time.Millisecond).Should(HaveField("State", sessionsv1alpha1.DeviceLoginPending))
	s := getSession(ns, name)
	Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseReauthRequired))
	return s.Status.DeviceLogin, dead
}

// expectNoDeviceCode checks the session's status and Events for anything of a device
// code's form.
func expectNoDeviceCode(ns, name string) {
	GinkgoHelper()
	st := getSession(ns, name).Status
	if st.Health != nil {
		// TIDAL's session ids have the same form and belong in status.
		st.Health.SessionID = ""
	}
	status, err := json.Marshal(st)
	Expect(err).NotTo(HaveOccurred())
	events, err := kubectl("", "-n", ns, "events", "--for", "tidalsession/"+name)
	Expect(err).NotTo(HaveOccurred())
	Expect(uuidForm.FindString(string(status) + events)).To(BeEmpty())
}

// outcomes counts TIDAL's answers to device-code polls of longClient.
type outcomes struct{ pending, slowDown int }

func loginOutcomes() outcomes {
	var o outcomes
	for key, n := range tidalSrv.Stats().ClientOutcomes[longClient] {
		switch {
		case strings.HasSuffix(key, "/"+tidal.CodeAuthorizationPending):
			o.pending += n
		case strings.HasSuffix(key, "/"+tidal.CodeSlowDown):
			o.slowDown += n
		}
	}
	return o
}

var _ = Describe("Device login", func() {
	It("shows a link and a code, keeps polling while the code is pending, and resumes refreshing once a person approves", func() {
		ns := newNamespace()
		login, dead := applyDeviceLoginSession(ns, "dora")
		Expect(login.VerificationURI).To(Equal("https://link.tidal.com/" + login.UserCode))
		Expect(login.UserCode).NotTo(BeEmpty())
		Expect(login.ExpiresAt.Time).To(BeTemporally("~", login.StartedAt.Add(tidalserver.DefaultDeviceCodeLifetime), time.Second))
		Eventually(func() (string, error) { return kubectl("", "-n", ns, "events", "--for", "tidalsession/dora") },
			10*time.Second, 250*time.Millisecond).Should(ContainSubstring("open " + login.VerificationURI +
			" and enter the code " + login.UserCode))

		By("leaving the code pending for a few polls: nothing changes, and no poll comes too early")
		before := loginOutcomes()
		time.Sleep(5 * time.Second)
		Expect(getSession(ns, "dora").Status.DeviceLogin).To(HaveField("UserCode", login.UserCode))
		Expect(getSession(ns, "dora").Status.Phase).To(Equal(sessionsv1alpha1.PhaseReauthRequired))
		after := loginOutcomes()
		// At the server's 2-second interval, 5 seconds hold two or three polls.
		Expect(after.pending - before.pending).To(BeNumerically(">=", 2))
		Expect(after.slowDown).To(Equal(before.slowDown))

		By("approving the code as the person at the link would")
		Expect(tidalSrv.ApproveDevice(login.UserCode, tidalserver.User{ID: 5590001, CountryCode: "NO"})).To(Succeed())
		Eventually(readyCondition(ns, "dora"), 20*time.Second, 250*time.Millisecond).Should(
			HaveField("Reason", sessionsv1alpha1.ReasonTokenValid))
		s := getSession(ns, "dora")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
		Expect(s.Status.DeviceLogin).To(BeNil())
		Expect(s.Status.UserID).To(Equal("5590001"))

		creds, err := getSecret(ns, "dora-creds")
		Expect(err).NotTo(HaveOccurred())
		newRT := string(creds.Data["refresh_token"])
		rememberSecret(newRT)
		Expect(newRT).NotTo(BeEmpty())
		Expect(newRT).NotTo(Equal(dead))
		out, err := getSecret(ns, "dora-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(out.Data[sessionsv1alpha1.KeyAccessToken]).NotTo(BeEmpty())

		Expect(s.Status.NextRefreshTime.Time).To(BeTemporally(">", time.Now()), "refreshing resumed on schedule")

		By("checking that TIDAL accepts the stored refresh token")
		tok, err := tidalAPI.Refresh(context.Background(), tidal.Credentials{ClientID: longClient,
			ClientSecret: canaryClientSecret, RefreshToken: newRT})
		Expect(err).NotTo(HaveOccurred())
		rememberSecret(tok.AccessToken)
		rememberSecret(tok.RefreshToken)
		Expect(tok.UserID).To(Equal("5590001"))
		expectNoDeviceCode(ns, "dora")
	})

	It("stops on denial and on expiry, and starts a new attempt only when a person asks", func() {
		ns := newNamespace()
		login, _ := applyDeviceLoginSession(ns, "dag")

		By("denying the code")
		Expect(tidalSrv.DenyDevice(login.UserCode)).To(Succeed())
		Eventually(func() *sessionsv1alpha1.DeviceLoginStatus { return getSession(ns, "dag").Status.DeviceLogin },
			15*time.Second, 250*time.Millisecond).Should(And(
			HaveField("State", sessionsv1alpha1.DeviceLoginDenied), HaveField("UserCode", "")))
		Eventually(func() (string, error) { return kubectl("", "-n", ns, "events", "--for", "tidalsession/dag") },
			10*time.Second, 250*time.Millisecond).Should(ContainSubstring(sessionsv1alpha1.ReasonDeviceLoginDenied))
		Consistently(func() *sessionsv1alpha1.DeviceLoginStatus { return getSession(ns, "dag").Status.DeviceLogin },
			5*time.Second, time.Second).Should(HaveField("State", sessionsv1alpha1.DeviceLoginDenied))

		By("asking for a new attempt with the annotation")
		_, err := kubectl("", "-n", ns, "annotate", "tidalsession", "dag", "--overwrite",
			sessionsv1alpha1.LoginRequestAnnotation+"="+time.Now().UTC().Format(time.RFC3339))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() *sessionsv1alpha1.DeviceLoginStatus { return getSession(ns, "dag").Status.DeviceLogin },
			15*time.Second, 250*time.Millisecond).Should(HaveField("State", sessionsv1alpha1.DeviceLoginPending))
		second := getSession(ns, "dag").Status.DeviceLogin
		Expect(second.UserCode).NotTo(Equal(login.UserCode))

		By("letting TIDAL answer the next poll that the code expired")
		// The server's codes live 300 s; its expired_token answer is what a poll gets then.
		Expect(tidalSrv.InjectFault(tidalserver.Fault{Endpoint: tidalserver.EndpointToken, ClientID: longClient,
			Status: 400, Body: `{"status":400,"error":"expired_token","error_description":"Device code has expired"}`})).To(Succeed())
		DeferCleanup(tidalSrv.ResetFaults)
		Eventually(func() *sessionsv1alpha1.DeviceLoginStatus { return getSession(ns, "dag").Status.DeviceLogin },
			15*time.Second, 250*time.Millisecond).Should(HaveField("State", sessionsv1alpha1.DeviceLoginExpired))
		Expect(getSession(ns, "dag").Status.Phase).To(Equal(sessionsv1alpha1.PhaseReauthRequired))
		Expect(tidalSrv.ApproveDevice(second.UserCode, tidalserver.User{ID: 5590001})).To(Succeed(),
			"the operator stopped polling; TIDAL's own code is still live")
		Consistently(func() sessionsv1alpha1.Phase { return getSession(ns, "dag").Status.Phase },
			5*time.Second, time.Second).Should(Equal(sessionsv1alpha1.PhaseReauthRequired))
		expectNoDeviceCode(ns, "dag")
	})
})
