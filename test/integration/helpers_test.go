package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// secretValues collects every token and secret a test handed out or read, for the leak
// search at the end of the suite.
var secretValues = struct {
	sync.Mutex
	values map[string]bool
}{values: map[string]bool{canaryClientSecret: true}}

func rememberSecret(v string) {
	if v == "" {
		return
	}
	secretValues.Lock()
	defer secretValues.Unlock()
	secretValues.values[v] = true
}

func newNamespace() string {
	ns := "it-" + rand.String(6)
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	return ns
}

// kubectl runs the real kubectl against the test API server, with stdin as given.
func kubectl(stdin string, args ...string) (string, error) {
	return runTool(testEnv.ControlPlane.KubectlPath, stdin, args...)
}

// helm runs the real helm (built by hack/tools.sh) against the test API server.
func helm(args ...string) (string, error) {
	path := os.Getenv("HELM")
	if path == "" {
		path = filepath.Join("..", "..", "bin", "helm")
	}
	Expect(path).To(BeAnExistingFile(), "helm missing: run hack/tools.sh helm (make test does)")
	return runTool(path, "", args...)
}

// runTool runs a command-line client with a kubeconfig for the test API server. Its error
// carries stderr, which kubectl and helm fill with messages about objects, never tokens.
func runTool(path, stdin string, args ...string) (string, error) {
	kubeconfig := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(os.WriteFile(kubeconfig, testEnv.KubeConfig, 0o600)).To(Succeed())
	cmd := exec.Command(path, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String() + errOut.String(),
			fmt.Errorf("%s %s: %w: %s", filepath.Base(path), strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// issueGrant gives a TIDAL user a refresh token (with a distinctive canary value) as if
// the user had logged in, and returns it.
func issueGrant(clientID string, userID int64, country string) string {
	rt, err := tidalSrv.IssueGrant(tidalserver.GrantSpec{ClientID: clientID, UserID: userID, CountryCode: country,
		RefreshToken: "CANARY-RT-" + rand.String(24)})
	Expect(err).NotTo(HaveOccurred())
	rememberSecret(rt)
	return rt
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
	s := &sessionsv1alpha1.TidalSession{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)).To(Succeed())
	return s
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
	ctx := context.Background()
	var b strings.Builder
	b.WriteString(logs.String())

	var evs eventsv1.EventList
	Expect(k8s.List(ctx, &evs)).To(Succeed())
	var coreEvs corev1.EventList
	Expect(k8s.List(ctx, &coreEvs)).To(Succeed())
	var sessions sessionsv1alpha1.TidalSessionList
	Expect(k8s.List(ctx, &sessions)).To(Succeed())
	for _, v := range []any{evs, coreEvs, sessions} {
		j, err := json.Marshal(v)
		Expect(err).NotTo(HaveOccurred())
		b.Write(j)
	}

	b.WriteString(metricsText())
	return b.String()
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
	var secrets corev1.SecretList
	Expect(k8s.List(context.Background(), &secrets)).To(Succeed())
	for _, s := range secrets.Items {
		for _, key := range []string{"refresh_token", sessionsv1alpha1.KeyAccessToken} {
			if v := string(s.Data[key]); len(v) >= 16 {
				rememberSecret(v)
			}
		}
	}
	haystack := leakHaystack()
	secretValues.Lock()
	defer secretValues.Unlock()
	if len(secretValues.values) <= 1 {
		// Only the client secret: no spec that hands out tokens ran (a focused run).
		GinkgoWriter.Println("no tokens were handed out; leak search skipped")
		return
	}
	for v := range secretValues.values {
		Expect(strings.Contains(haystack, v)).To(BeFalse(),
			"a token or secret (%d chars, starting %q) reached logs, Events, status or metrics", len(v), v[:min(6, len(v))])
	}
	// The search must be able to find something: the logs do name the sessions.
	Expect(haystack).To(ContainSubstring("Refreshed access token"))
}
