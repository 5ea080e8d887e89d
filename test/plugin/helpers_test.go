package plugin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionfile"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// canaryMarker starts every token the suite makes up or has TIDAL issue.
const canaryMarker = "CANARY"

// secretValues collects every token and secret handed out or read, for the leak search.
var secretValues = struct {
	sync.Mutex
	values map[string]bool
}{values: map[string]bool{canaryClientSecret: true}}

func remember(v string) string {
	if v != "" {
		secretValues.Lock()
		defer secretValues.Unlock()
		secretValues.values[v] = true
	}
	return v
}

func newNamespace() string {
	ns := "pl-" + rand.String(6)
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	return ns
}

// issueGrant has TIDAL issue a refresh token of pluginClient to userID, as a login would.
func issueGrant(userID int64) string {
	GinkgoHelper()
	rt, err := tidalSrv.IssueGrant(tidalserver.GrantSpec{ClientID: pluginClient, UserID: userID, CountryCode: "NO",
		RefreshToken: canaryMarker + "-RT-" + rand.String(24)})
	Expect(err).NotTo(HaveOccurred())
	return remember(rt)
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
	cmd := exec.Command(kubectlBin, args...)
	cmd.Env = append(os.Environ(), "PATH="+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"KUBECONFIG="+kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errOut.String(), err: err}
	fmt.Fprintf(&outputs, "$ kubectl %s\n%s%s", strings.Join(args, " "), r.stdout, r.stderr)
	GinkgoWriter.Printf("$ kubectl %s\n%s%s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

func getSecret(ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)
}

func getSession(ns, name string) *sessionsv1alpha1.TidalSession {
	GinkgoHelper()
	s := &sessionsv1alpha1.TidalSession{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)).To(Succeed())
	return s
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
	var secrets corev1.SecretList
	Expect(k8s.List(context.Background(), &secrets, client.MatchingLabels{
		sessionsv1alpha1.ManagedByLabel: sessionsv1alpha1.ManagedByValue})).To(Succeed())
	for _, s := range secrets.Items {
		remember(string(s.Data[sessionsv1alpha1.KeyAccessToken]))
	}

	secretValues.Lock()
	defer secretValues.Unlock()
	Expect(len(secretValues.values)).To(BeNumerically(">", 10), "too few values to search for")
	for what, text := range haystacks {
		Expect(text).NotTo(ContainSubstring(canaryMarker), "%s holds a canary", what)
		for v := range secretValues.values {
			if strings.Contains(text, v) {
				Fail(fmt.Sprintf("%s holds a token or secret (%d bytes, starting %.6s)", what, len(v), v))
			}
		}
	}
}
