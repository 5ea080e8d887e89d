package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
	"github.com/tidal-mcp/tidal-session-operator/test/support/sink"
)

var (
	// seen is everything the operator logged and helm and kubectl printed, for the leak search.
	seen sink.Buffer
	// secretValues are the tokens and secrets handed out or read during the suite.
	secretValues = support.NewSecrets(canaryClientSecret)
	// kubectlTool and helmTool act as the control plane's admin and record to seen.
	kubectlTool, helmTool support.Tool
)

func newNamespace(prefix string) string {
	GinkgoHelper()
	return support.NewNamespace(k8s, prefix)
}

// kubectl runs the real kubectl as the control plane's admin.
func kubectl(stdin string, args ...string) (string, error) {
	return kubectlTool.Run(stdin, args...)
}

// kubectlAs runs the real kubectl with the given kubeconfig, e.g. a ServiceAccount's.
func kubectlAs(kubeconfig string, args ...string) (string, error) {
	t := kubectlTool
	t.Kubeconfig = kubeconfig
	return t.Run("", args...)
}

// helm runs the real helm as the control plane's admin.
func helm(args ...string) (string, error) {
	return helmTool.Run("", args...)
}

// serviceAccountKubeconfig writes a kubeconfig with an hour's token of the ServiceAccount,
// into workDir because operators started by one spec outlive it.
func serviceAccountKubeconfig(ns, name string) string {
	GinkgoHelper()
	return controlPlane.ServiceAccountKubeconfig(secretValues, ns, name, time.Hour, workDir)
}

// bearerToken reads the token back out of a kubeconfig written by serviceAccountKubeconfig.
func bearerToken(kubeconfig string) string {
	GinkgoHelper()
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	return kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo].Token
}

// accessList is what `kubectl auth can-i --list` prints: per resource (or non-resource URL,
// and resource names) the verbs allowed.
type accessList map[string][]string

var bracketed = regexp.MustCompile(`\[[^\]]*\]`)

// canIList runs `kubectl auth can-i --list` in ns with the given kubeconfig and parses its
// table: a resource column, then bracketed non-resource URLs, resource names and verbs.
func canIList(kubeconfig, ns string) accessList {
	GinkgoHelper()
	out, err := kubectlAs(kubeconfig, "auth", "can-i", "--list", "--no-headers", "-n", ns)
	Expect(err).NotTo(HaveOccurred(), out)
	list := accessList{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		groups := bracketed.FindAllStringIndex(line, -1)
		Expect(groups).To(HaveLen(3), "unexpected can-i line %q", line)
		resource := strings.TrimSpace(line[:groups[0][0]])
		key := resource + " " + line[groups[0][0]:groups[0][1]] + " " + line[groups[1][0]:groups[1][1]]
		verbs := strings.Fields(strings.Trim(line[groups[2][0]:groups[2][1]], "[]"))
		list[key] = sortedUnion(list[key], verbs)
	}
	return list
}

// minus is what l allows beyond base, e.g. a ServiceAccount's list beyond what every
// authenticated user may do.
func (l accessList) minus(base accessList) accessList {
	out := accessList{}
	for key, verbs := range l {
		var extra []string
		for _, v := range verbs {
			if !slices.Contains(base[key], v) {
				extra = append(extra, v)
			}
		}
		if len(extra) > 0 {
			out[key] = extra
		}
	}
	return out
}

// rulesAccess is the accessList that kubectl prints for rules (without resource names or
// non-resource URLs): "resource.group", or "resource.group/subresource".
func rulesAccess(rules ...rbacv1.PolicyRule) accessList {
	out := accessList{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				name, sub, _ := strings.Cut(res, "/")
				if g != "" {
					name += "." + g
				}
				if sub != "" {
					name += "/" + sub
				}
				key := name + " [] []"
				out[key] = sortedUnion(out[key], r.Verbs)
			}
		}
	}
	return out
}

func sortedUnion(a, b []string) []string {
	set := map[string]bool{}
	for _, v := range append(append([]string{}, a...), b...) {
		set[v] = true
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func merge(lists ...accessList) accessList {
	out := accessList{}
	for _, l := range lists {
		for k, v := range l {
			out[k] = sortedUnion(out[k], v)
		}
	}
	return out
}

// generatedRules are the rules controller-gen generated from the code's RBAC markers.
func generatedRules() []rbacv1.PolicyRule {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	Expect(yaml.Unmarshal(data, &role)).To(Succeed())
	Expect(role.Rules).NotTo(BeEmpty())
	return role.Rules
}

var (
	// leaderElectionRules: the Lease, and the Event that announces a new leader on it.
	leaderElectionRules = []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	metricsAuthRules = []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
)

// operator is the operator binary running out of cluster.
type operator struct {
	cmd         *exec.Cmd
	logs        sink.Buffer
	done        chan struct{}
	metricsAddr string
	probeAddr   string
	// healthAddr is where the health endpoint listens, when the chart turns it on.
	healthAddr string
	stopped    bool
}

// startOperator runs the operator binary with the container arguments of the chart's
// Deployment and the given kubeconfig. Only the listen addresses are changed, to loopback
// ports of their own, because the chart's listen on every interface. The caller stops it,
// in AfterAll at the latest: the operator outlives the spec that starts it.
func startOperator(kubeconfig string, chartArgs []string) *operator {
	GinkgoHelper()
	o := &operator{done: make(chan struct{}), metricsAddr: freeLoopbackAddr(), probeAddr: freeLoopbackAddr()}
	args := []string{"--kubeconfig=" + kubeconfig}
	for _, a := range chartArgs {
		switch {
		case strings.HasPrefix(a, "--metrics-bind-address="):
			a = "--metrics-bind-address=" + o.metricsAddr
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			a = "--health-probe-bind-address=" + o.probeAddr
		case strings.HasPrefix(a, "--health-api-bind-address="):
			o.healthAddr = freeLoopbackAddr()
			a = "--health-api-bind-address=" + o.healthAddr
		case strings.HasPrefix(a, "--tidal-auth-url="), strings.HasPrefix(a, "--tidal-api-url="),
			strings.HasPrefix(a, "--tidal-openapi-url="):
			_, url, _ := strings.Cut(a, "=")
			Expect(url).To(HavePrefix(tidalURL+"/"), "the operator must talk to the loopback server only")
		}
		args = append(args, a)
	}
	// Without the URLs the operator would use TIDAL's own.
	Expect(args).To(ContainElements(HavePrefix("--tidal-auth-url="), HavePrefix("--tidal-api-url="),
		HavePrefix("--tidal-openapi-url=")))

	o.cmd = exec.Command(operatorBinary, args...)
	o.cmd.Env = withoutEnv(os.Environ(), "KUBECONFIG", "KUBERNETES_SERVICE_HOST")
	o.cmd.Stdout, o.cmd.Stderr = &o.logs, &o.logs
	Expect(o.cmd.Start()).To(Succeed())
	go func() {
		_ = o.cmd.Wait()
		close(o.done)
	}()
	return o
}

// stop ends the operator as the kubelet would (SIGTERM, then SIGKILL after the grace
// period) and adds its log to the leak search. It may be called more than once, and on a
// nil operator (a spec that failed before starting one).
func (o *operator) stop() {
	if o == nil || o.stopped {
		return
	}
	o.stopped = true
	select {
	case <-o.done:
	default:
		_ = o.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-o.done:
		case <-time.After(10 * time.Second):
			_ = o.cmd.Process.Kill()
			<-o.done
		}
	}
	seen.Write([]byte(o.logs.String()))
	if CurrentSpecReport().Failed() {
		lines := strings.Split(o.logs.String(), "\n")
		GinkgoWriter.Println("operator log (last 40 lines):\n" + strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

func (o *operator) exited() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// waitReady waits until the operator's readiness endpoint, at the path the chart's probe
// uses, answers 200.
func (o *operator) waitReady(path string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(o.exited()).To(BeFalse(), "the operator exited")
		resp, err := http.Get("http://" + o.probeAddr + path)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// scrape gets the operator's metrics, over HTTPS with the bearer token when one is given
// (the certificate is self-signed), and returns the status code and body.
func (o *operator) scrape(token string) (int, string) {
	GinkgoHelper()
	if token == "" {
		return fetch("http://"+o.metricsAddr+"/metrics", "")
	}
	return fetch("https://"+o.metricsAddr+"/metrics", token)
}

// health asks the operator's health endpoint about a session, over HTTPS with the bearer
// token, and returns the status code and body.
func (o *operator) health(token, ns, name string) (int, string) {
	GinkgoHelper()
	Expect(o.healthAddr).NotTo(BeEmpty(), "the chart did not turn the health endpoint on")
	return fetch("https://"+o.healthAddr+"/sessions/"+ns+"/"+name, token)
}

// fetch gets url from one of the operator's loopback endpoints, whose certificates are
// self-signed, with the bearer token when one is given, and keeps the body for the leak
// search.
func fetch(url, token string) (int, string) {
	GinkgoHelper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback, self-signed
	req, err := http.NewRequest(http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	seen.Write(body)
	return resp.StatusCode, string(body)
}

func freeLoopbackAddr() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

// issueGrant gives a TIDAL user a refresh token (a canary the leak search looks for), as
// if the user had logged in, and returns it.
func issueGrant(userID int64) string {
	GinkgoHelper()
	return support.IssueGrant(tidalServer.Server, secretValues, tidalserver.GrantSpec{
		ClientID: e2eClient, UserID: userID, CountryCode: "NO", RefreshToken: "CANARY-E2E-RT-" + rand.String(24)})
}

// applySession creates, with kubectl apply as a namespace user would, a credentials Secret
// NAME-creds and a TidalSession NAME writing to NAME-token.
func applySession(ns, name string, userID int64) {
	GinkgoHelper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %[2]s-creds
  namespace: %[1]s
stringData:
  client_id: %[3]s
  client_secret: %[4]s
  refresh_token: %[5]s
---
apiVersion: sessions.tidal-mcp.dev/v1alpha1
kind: TidalSession
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  credentialsSecretRef:
    name: %[2]s-creds
  outputSecret:
    name: %[2]s-token
`, ns, name, e2eClient, canaryClientSecret, issueGrant(userID))
	out, err := kubectl(manifest, "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred(), out)
}

func getSession(ns, name string) *sessionsv1alpha1.TidalSession {
	GinkgoHelper()
	return support.GetSession(k8s, ns, name)
}

func isReady(ns, name string) bool {
	return meta.IsStatusConditionTrue(getSession(ns, name).Status.Conditions, sessionsv1alpha1.ConditionReady)
}

// secretKeys returns the keys of a Secret, remembering its token for the leak search. Specs
// compare keys, never values, so that a failed assertion prints no token.
func secretKeys(ns, name string) []string {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)).To(Succeed())
	secretValues.Remember(string(s.Data[sessionsv1alpha1.KeyAccessToken]))
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expectNoLeaks searches everything a person or monitoring system sees for every token and
// secret of the suite: the operator's logs, helm's and kubectl's output, the metrics, every
// Event and every TidalSession's status.
func expectNoLeaks(ctx context.Context) {
	secretValues.RememberStoredTokens(ctx, k8s)
	record, events := support.EventsAndStatus(ctx, k8s)
	haystack := seen.String() + record

	if secretValues.Len() <= 1 {
		GinkgoWriter.Println("no tokens were handed out; leak search skipped")
		return
	}
	secretValues.ExpectNoneIn(haystack, "logs, Events, status, metrics or tool output")
	// The search must be able to find something: the operator's log names its refreshes.
	Expect(haystack).To(ContainSubstring("Refreshed access token"))
	Expect(events).To(BeNumerically(">", 0))
}

// chartWithChangedCRD copies the chart into a directory of its own and marks the CRD's
// description of TidalSession with mark, for an upgrade that brings a changed CRD.
func chartWithChangedCRD(mark string) string {
	GinkgoHelper()
	dir := filepath.Join(GinkgoT().TempDir(), "tidal-session-operator")
	Expect(os.CopyFS(dir, os.DirFS(chartDir))).To(Succeed())
	crds, err := filepath.Glob(filepath.Join(dir, "files", "crds", "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	Expect(crds).To(HaveLen(1))
	data, err := os.ReadFile(crds[0])
	Expect(err).NotTo(HaveOccurred())
	const original = "description: TidalSession is one user's TIDAL OAuth session,"
	Expect(string(data)).To(ContainSubstring(original))
	changed := strings.Replace(string(data), original,
		"description: TidalSession "+mark+" is one user's TIDAL OAuth session,", 1)
	Expect(os.WriteFile(crds[0], []byte(changed), 0o600)).To(Succeed())
	return dir
}

// handKeptCRDTo hands the CRD, when an earlier release kept it on uninstall, to release in
// namespace ns, as docs/install.md tells an admin to: Helm adopts an object whose release
// annotations name the release that installs it, and refuses one that names another.
func handKeptCRDTo(release, ns string) {
	GinkgoHelper()
	err := k8s.Get(context.Background(), types.NamespacedName{Name: crdName}, &apiextensionsv1.CustomResourceDefinition{})
	if apierrors.IsNotFound(err) {
		return
	}
	Expect(err).NotTo(HaveOccurred())
	out, err := kubectl("", "annotate", "crd", crdName, "--overwrite",
		"meta.helm.sh/release-name="+release, "meta.helm.sh/release-namespace="+ns)
	Expect(err).NotTo(HaveOccurred(), out)
}
