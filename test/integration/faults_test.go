package integration

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// canaryPattern finds the canaries in a fault's body, for the leak search.
var canaryPattern = regexp.MustCompile(`CANARY-[A-Za-z_-]+`)

// faultAnswers counts the answers of faultClient that were injected faults.
func faultAnswers() int {
	n := 0
	for outcome, count := range tidalSrv.Stats().ClientOutcomes[faultClient] {
		if strings.HasPrefix(outcome, "token/fault_") || outcome == "token/delay" {
			n += count
		}
	}
	return n
}

// tidalErrorBody is an error of TIDAL's token endpoint, with a canary in its description:
// the operator must never pass a response body on.
func tidalErrorBody(status int, code string, subStatus int, description string) string {
	canary := "CANARY-BODY-" + code
	return fmt.Sprintf(`{"status":%d,"error":%q,"sub_status":%d,"error_description":"%s %s"}`,
		status, code, subStatus, description, canary)
}

// Each entry makes TIDAL's token endpoint misbehave for the first refresh(es) of a new
// session and checks where the session ends: Ready once TIDAL answers well again for a
// failure that may pass, ReauthRequired for a dead grant.
var _ = Describe("TIDAL misbehaving", func() {
	DescribeTable("a new session's first refresh",
		func(fault tidalserver.Fault, wantReason string) {
			if fault.Count == 0 {
				fault.Count = 1
			}
			fault.Endpoint, fault.ClientID = tidalserver.EndpointToken, faultClient
			for _, canary := range canaryPattern.FindAllString(fault.Body, -1) {
				rememberSecret(canary)
			}
			faultsBefore := faultAnswers()
			Expect(tidalSrv.InjectFault(fault)).To(Succeed())
			DeferCleanup(tidalSrv.ResetFaults)

			ns := newNamespace()
			start := time.Now()
			applySession(ns, "fay", faultClient, issueGrant(faultClient, 5570001, "CH"))
			Eventually(readyCondition(ns, "fay"), 60*time.Second, 200*time.Millisecond).Should(
				HaveField("Reason", wantReason))
			Expect(faultAnswers()-faultsBefore).To(Equal(fault.Count), "TIDAL did not answer with the fault")
			s := getSession(ns, "fay")
			GinkgoWriter.Printf("%s after %v, %d failures\n", wantReason, time.Since(start).Round(time.Millisecond),
				s.Status.ConsecutiveFailures)
			if wantReason == sessionsv1alpha1.ReasonTokenValid {
				Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
				Expect(readyCondition(ns, "fay")()).To(HaveField("Status", metav1.ConditionTrue))
			}
			if fault.Headers["Retry-After"] != "" {
				Expect(time.Since(start)).To(BeNumerically(">=", 2*time.Second), "Retry-After was not honoured")
			}
		},
		Entry("500 five times, then 200", tidalserver.Fault{Status: 500, Count: 5}, sessionsv1alpha1.ReasonTokenValid),
		Entry("429 with Retry-After", tidalserver.Fault{Status: 429, Headers: map[string]string{"Retry-After": "2"}},
			sessionsv1alpha1.ReasonTokenValid),
		Entry("429 without Retry-After", tidalserver.Fault{Status: 429}, sessionsv1alpha1.ReasonTokenValid),
		Entry("an answer slower than the client's timeout", tidalserver.Fault{Delay: 3 * time.Second},
			sessionsv1alpha1.ReasonTokenValid),
		Entry("HTML instead of JSON", tidalserver.Fault{Status: 502, Body: "<html><body>CANARY-BODY-HTML</body></html>",
			Headers: map[string]string{"Content-Type": "text/html"}}, sessionsv1alpha1.ReasonTokenValid),
		Entry("a 10 MB body", tidalserver.Fault{Status: 500, Body: strings.Repeat("CANARY-BODY-HUGE ", 600_000)},
			sessionsv1alpha1.ReasonTokenValid),
		Entry("expires_in missing", tidalserver.Fault{Status: 200,
			Body: `{"access_token":"CANARY-AT-NOEXP","token_type":"Bearer"}`}, sessionsv1alpha1.ReasonTokenValid),
		Entry("expires_in zero", tidalserver.Fault{Status: 200,
			Body: `{"access_token":"CANARY-AT-ZERO","token_type":"Bearer","expires_in":0}`}, sessionsv1alpha1.ReasonTokenValid),
		Entry("expires_in negative", tidalserver.Fault{Status: 200,
			Body: `{"access_token":"CANARY-AT-NEG","token_type":"Bearer","expires_in":-5}`}, sessionsv1alpha1.ReasonTokenValid),
		Entry("expires_in a string", tidalserver.Fault{Status: 200,
			Body: `{"access_token":"CANARY-AT-STR","token_type":"Bearer","expires_in":"soon"}`}, sessionsv1alpha1.ReasonTokenValid),
		Entry("no access_token", tidalserver.Fault{Status: 200,
			Body: `{"token_type":"Bearer","expires_in":3600}`}, sessionsv1alpha1.ReasonTokenValid),
		Entry("invalid_grant, expired (400, 11003)", tidalserver.Fault{Status: 400,
			Body: tidalErrorBody(400, "invalid_grant", 11003, "The token has expired. (Expired on time)")},
			sessionsv1alpha1.ReasonReauthRequired),
		Entry("invalid_grant sent with 401", tidalserver.Fault{Status: 401,
			Body: tidalErrorBody(401, "invalid_grant", 11003, "Invalid refresh token")}, sessionsv1alpha1.ReasonReauthRequired),
		Entry("invalid_grant sent with 500", tidalserver.Fault{Status: 500,
			Body: tidalErrorBody(500, "invalid_grant", 0, "grant revoked")}, sessionsv1alpha1.ReasonReauthRequired),
		Entry("revoked grant (Bad subject token version)", tidalserver.Fault{Status: 400,
			Body: tidalErrorBody(400, "invalid_grant", 11003, "The token has expired. (Bad subject token version)")},
			sessionsv1alpha1.ReasonReauthRequired),
		Entry("invalid_client (401, 1005), then the client is accepted again", tidalserver.Fault{Status: 401,
			Body: tidalErrorBody(401, "invalid_client", 1005, "Client not found")}, sessionsv1alpha1.ReasonTokenValid),
	)
})
