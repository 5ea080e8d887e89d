package integration

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
)

// secretValues collects every token and secret a test handed out or read, for the leak
// search at the end of the suite.
var secretValues = support.NewSecrets(canaryClientSecret)

func rememberSecret(v string) {
	secretValues.Remember(v)
}

func newNamespace() string {
	return support.NewNamespace(k8s, "it")
}

// kubectl runs the real kubectl against the test API server, with stdin as given. Its error
// carries stderr, which kubectl fills with messages about objects, never tokens.
func kubectl(stdin string, args ...string) (string, error) {
	return controlPlane.Kubectl().Run(stdin, args...)
}

// helm runs the real helm (built by hack/tools.sh) against the test API server.
func helm(args ...string) (string, error) {
	return controlPlane.Helm().Run("", args...)
}

// issueGrant gives a TIDAL user a refresh token (with a distinctive canary value) as if
// the user had logged in, and returns it.
func issueGrant(clientID string, userID int64, country string) string {
	return support.IssueGrant(tidalSrv, secretValues, tidalserver.GrantSpec{
		ClientID: clientID, UserID: userID, CountryCode: country, RefreshToken: "CANARY-RT-" + rand.String(24)})
}

func credentialsSecretYAML(ns, name, clientID, refreshToken string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
  namespace: %s
stringData:
  client_id: %s
  client_secret: %s
  refresh_token: %s
`, name, ns, clientID, canaryClientSecret, refreshToken)
}

// applySession applies, with kubectl, a credentials Secret NAME-creds holding refreshToken
// and a TidalSession NAME writing to NAME-token.
func applySession(ns, name, clientID, refreshToken string) {
	GinkgoHelper()
	_, err := kubectl(credentialsSecretYAML(ns, name+"-creds", clientID, refreshToken)+"---\n"+
		sessionYAML(ns, name, name+"-creds", name+"-token"), "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred())
}

// applySessions applies, in one kubectl apply, n sessions PREFIX000... of clientID as
// applySession does, each with a grant of its own user, numbered from firstUser.
func applySessions(ns, prefix, clientID string, n int, firstUser int64) {
	GinkgoHelper()
	var manifest strings.Builder
	for i := range n {
		name := fmt.Sprintf("%s%03d", prefix, i)
		manifest.WriteString(credentialsSecretYAML(ns, name+"-creds", clientID, issueGrant(clientID, firstUser+int64(i), "IS")))
		manifest.WriteString("---\n" + sessionYAML(ns, name, name+"-creds", name+"-token") + "---\n")
	}
	_, err := kubectl(manifest.String(), "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred())
}

func sessionYAML(ns, name, creds, output string) string {
	return fmt.Sprintf(`apiVersion: sessions.tidal-mcp.dev/v1alpha1
kind: TidalSession
metadata:
  name: %s
  namespace: %s
spec:
  credentialsSecretRef:
    name: %s
  outputSecret:
    name: %s
`, name, ns, creds, output)
}

func getSession(ns, name string) *sessionsv1alpha1.TidalSession {
	return support.GetSession(k8s, ns, name)
}

func readyCondition(ns, name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		return meta.FindStatusCondition(getSession(ns, name).Status.Conditions, sessionsv1alpha1.ConditionReady)
	}
}

func getSecret(ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)
	if err == nil {
		rememberSecret(string(s.Data[sessionsv1alpha1.KeyAccessToken]))
	}
	return s, err
}

// leakHaystack is everything a person or a monitoring system can see: the operator's logs,
// every Event, every TidalSession's status, and the metrics.
func leakHaystack() string {
	record, _ := support.EventsAndStatus(context.Background(), k8s)
	return logs.String() + record + metricsText()
}

// metricsText is what the operator's metrics endpoint serves, in Prometheus' text format.
func metricsText() string {
	var b strings.Builder
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		_, err := expfmt.MetricFamilyToText(&b, f)
		Expect(err).NotTo(HaveOccurred())
	}
	return b.String()
}

func expectNoLeaks() {
	// Every token now in a Secret counts too: rotated refresh tokens and the latest access
	// tokens were never handed out by a spec.
	secretValues.RememberStoredTokens(context.Background(), k8s)
	haystack := leakHaystack()
	if secretValues.Len() <= 1 {
		// Only the client secret: no spec that hands out tokens ran (a focused run).
		GinkgoWriter.Println("no tokens were handed out; leak search skipped")
		return
	}
	secretValues.ExpectNoneIn(haystack, "logs, Events, status or metrics")
	// The search must be able to find something: the logs do name the sessions.
	Expect(haystack).To(ContainSubstring("Refreshed access token"))
}
