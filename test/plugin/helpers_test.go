package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionfile"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
)

// canaryMarker starts every token the suite makes up or has TIDAL issue.
const canaryMarker = "CANARY"

// secretValues collects every token and secret handed out or read, for the leak search.
var secretValues = support.NewSecrets(canaryClientSecret)

func remember(v string) string {
	return secretValues.Remember(v)
}

func newNamespace() string {
	return support.NewNamespace(k8s, "pl")
}

// issueGrant has TIDAL issue a refresh token of pluginClient to userID, as a login would.
func issueGrant(userID int64) string {
	GinkgoHelper()
	return support.IssueGrant(tidalServer.Server, secretValues, tidalserver.GrantSpec{
		ClientID: pluginClient, UserID: userID, CountryCode: "NO", RefreshToken: canaryMarker + "-RT-" + rand.String(24)})
}

// madeUpAccessToken is the access token a session file holds; TIDAL never issued it, and
// import must neither store nor print it.
func madeUpAccessToken() string {
	return remember(canaryMarker + "-AT-" + rand.String(24))
}

// sessionFile returns a session file of format holding rt and at.
func sessionFile(format, rt, at string) string {
	GinkgoHelper()
	switch format {
	case "tidalapi":
		b, err := sessionfile.Tidalapi{TokenType: "Bearer", SessionID: "f1e2d3c4-0000-4000-8000-000000000001",
			AccessToken: at, RefreshToken: rt, ExpiryTime: time.Now().Add(time.Hour)}.Marshal()
		Expect(err).NotTo(HaveOccurred())
		return string(b)
	case "tidal-dl-ng":
		return fmt.Sprintf(`{"token_type": "Bearer", "access_token": %q, "refresh_token": %q, "expiry_time": %d.5}`,
			at, rt, time.Now().Add(time.Hour).Unix())
	case "flat":
		return fmt.Sprintf(`{"access_token": %q, "refresh_token": %q, "user_id": 4711, "expires_at": %q, `+
			`"country_code": "NO", "session_id": "s-1", "client_id": %q}`,
			at, rt, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), pluginClient)
	}
	Fail("unknown format " + format)
	return ""
}

func writeTemp(name, content string) string {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), name)
	Expect(os.WriteFile(path, []byte(content), 0o600)).To(Succeed())
	return path
}

// clientSecretFile returns a file holding pluginClient's secret, as a person would keep it.
func clientSecretFile() string {
	return writeTemp("client-secret", canaryClientSecret+"\n")
}

// run is one run of a command-line tool.
type run struct {
	stdout, stderr string
	err            error
}

// kubectlTidal runs `kubectl tidal ARGS` with the real kubectl, which finds the plugin on
// PATH, and a kubeconfig for the test API server in KUBECONFIG.
func kubectlTidal(stdin string, args ...string) run {
	return runKubectl(stdin, append([]string{"tidal"}, args...)...)
}

func runKubectl(stdin string, args ...string) run {
	o := kubectl.Exec(stdin, args...)
	return run{stdout: o.Stdout, stderr: o.Stderr, err: o.Err}
}

func getSecret(ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)
}

func getSession(ns, name string) *sessionsv1alpha1.TidalSession {
	GinkgoHelper()
	return support.GetSession(k8s, ns, name)
}

// expectNothingIn checks that ns holds no TidalSession and no Secret but those listed.
func expectNothingIn(ns string, keepSecrets ...string) {
	GinkgoHelper()
	var sessions sessionsv1alpha1.TidalSessionList
	Expect(k8s.List(context.Background(), &sessions, client.InNamespace(ns))).To(Succeed())
	Expect(sessions.Items).To(BeEmpty(), "TidalSessions were created")
	var secrets corev1.SecretList
	Expect(k8s.List(context.Background(), &secrets, client.InNamespace(ns))).To(Succeed())
	var names []string
	for _, s := range secrets.Items {
		names = append(names, s.Name)
	}
	Expect(names).To(ConsistOf(keepSecrets), "Secrets were created")
}

// expectNoLeaks searches everything kubectl and the plugin printed, and the operator's
// logs, for every token and secret the suite handed out or found in an output Secret.
func expectNoLeaks() {
	GinkgoHelper()
	haystacks := map[string]string{"kubectl and plugin output": outputs.String(), "operator logs": logs.String()}
	Expect(haystacks["kubectl and plugin output"]).To(ContainSubstring("kubectl tidal import"),
		"the search would find nothing: no output was recorded")

	// Access tokens the operator wrote are tokens too, though no spec handled them.
	secretValues.RememberStoredTokens(context.Background(), k8s, client.MatchingLabels{
		sessionsv1alpha1.ManagedByLabel: sessionsv1alpha1.ManagedByValue})

	Expect(secretValues.Len()).To(BeNumerically(">", 10), "too few values to search for")
	for what, text := range haystacks {
		Expect(text).NotTo(ContainSubstring(canaryMarker), "%s holds a canary", what)
		secretValues.ExpectNoneIn(text, what)
	}
}
