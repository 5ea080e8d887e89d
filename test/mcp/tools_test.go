package mcp

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

const (
	toolRefresh = "tidal_refresh_session"
	toolStatus  = "tidal_session_status"
	toolLogin   = "tidal_login"
)

// expectRefreshed checks a refresh answer for session ns/name against the API server: the
// status handled exactly the request the tool wrote, the expiry moved forward and the output
// Secret holds a new token with the expiry the tool reported.
func expectRefreshed(r toolResult, ns, name string, before *sessionsv1alpha1.TidalSession, beforeToken string) {
	GinkgoHelper()
	Expect(r.IsError).To(BeFalse(), r.Text)
	Expect(r.Structured).To(HaveKeyWithValue("outcome", "refreshed"))
	sum := structuredSummary(r)
	Expect(sum.Phase).To(Equal("Active"))
	Expect(r.Text).To(ContainSubstring("Refreshed TidalSession %s/%s", ns, name))
	Expect(r.Text).To(ContainSubstring("expires at " + sum.ExpiresAt))

	newExpiry, err := time.Parse(time.RFC3339, sum.ExpiresAt)
	Expect(err).NotTo(HaveOccurred())
	Expect(newExpiry).To(BeTemporally(">", before.Status.AccessTokenExpiresAt.Time))

	requested := r.Structured["requestedAt"].(string)
	after := getSession(ns, name)
	Expect(after.Annotations).To(HaveKeyWithValue(sessionsv1alpha1.RefreshRequestAnnotation, requested))
	Expect(after.Status.LastRefreshRequest).To(Equal(requested))
	Expect(after.Status.RefreshCount).To(Equal(before.Status.RefreshCount + 1))
	Expect(after.Status.AccessTokenExpiresAt.UTC().Format(time.RFC3339)).To(Equal(sum.ExpiresAt))

	secret := outputSecret(ns, name)
	Expect(string(secret.Data[sessionsv1alpha1.KeyExpiresAt])).To(Equal(sum.ExpiresAt))
	Expect(string(secret.Data[sessionsv1alpha1.KeyAccessToken])).NotTo(Equal(beforeToken))
}

// snapshot records a session and its current access token before a refresh.
func snapshot(ns, name string) (*sessionsv1alpha1.TidalSession, string) {
	GinkgoHelper()
	return getSession(ns, name), string(outputSecret(ns, name).Data[sessionsv1alpha1.KeyAccessToken])
}

// The specs run in order: the first refresh waits for the 30 seconds the operator keeps
// between a session's refreshes, during which the other sessions' windows pass too.
var _ = Describe("tidal-mcp", Ordered, func() {
	It("refreshes a session through the Go SDK's client over stdio, returning a newer expiry", func() {
		cs := connectStdio(serverArgs(adminKubeconfig)...)

		tools, err := cs.ListTools(context.Background(), nil)
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, t := range tools.Tools {
			names = append(names, t.Name)
		}
		Expect(names).To(ConsistOf(toolRefresh, toolStatus, toolLogin))

		before, token := snapshot(nsMain, "alice")
		start := time.Now()
		r := callTool(cs, toolRefresh, map[string]any{"name": "alice"})
		GinkgoWriter.Printf("refresh answered after %v\n", time.Since(start).Round(time.Millisecond))
		expectRefreshed(r, nsMain, "alice", before, token)
	})

	It("describes a session in plain words without changing it", func() {
		cs := connectStdio(serverArgs(adminKubeconfig)...)
		s := getSession(nsMain, "erin")
		r := callTool(cs, toolStatus, map[string]any{"name": "erin", "namespace": nsMain})
		Expect(r.IsError).To(BeFalse(), r.Text)
		Expect(r.Text).To(And(
			ContainSubstring("TidalSession mcp-main/erin: phase Active, ready true"),
			ContainSubstring("The access token expires at "+s.Status.AccessTokenExpiresAt.UTC().Format(time.RFC3339)),
			ContainSubstring("TIDAL user 7104, country NO"),
			ContainSubstring(`Consumers mount the Secret "erin-token"`),
			ContainSubstring("What to do next: Nothing")))
		Expect(r.Structured).To(And(HaveKeyWithValue("phase", "Active"), HaveKeyWithValue("ready", "True"),
			HaveKeyWithValue("credentialsSecret", "erin-creds")))
		Expect(getSession(nsMain, "erin").Annotations).NotTo(HaveKey(sessionsv1alpha1.RefreshRequestAnnotation))
	})

	It("gives clear tool errors for bad arguments and keeps serving", func() {
		open := connectStdio(serverArgs(adminKubeconfig)...)
		restricted := connectStdio(serverArgs(adminKubeconfig, "--only-namespace")...)

		By("an unknown session")
		r := callTool(restricted, toolRefresh, map[string]any{"name": "nobody"})
		Expect(r.IsError).To(BeTrue())
		Expect(r.Text).To(ContainSubstring(`no TidalSession "nobody" in namespace "mcp-main"`))

		By("another namespace, which only the unrestricted server serves")
		r = callTool(restricted, toolStatus, map[string]any{"name": "olga", "namespace": nsOther})
		Expect(r.IsError).To(BeTrue())
		Expect(r.Text).To(ContainSubstring(`serves only TidalSessions in namespace "mcp-main", not "mcp-other"`))
		r = callTool(restricted, toolRefresh, map[string]any{"name": "olga", "namespace": nsOther})
		Expect(r.IsError).To(BeTrue())
		Expect(getSession(nsOther, "olga").Annotations).NotTo(HaveKey(sessionsv1alpha1.RefreshRequestAnnotation))
		r = callTool(open, toolStatus, map[string]any{"name": "olga", "namespace": nsOther})
		Expect(r.IsError).To(BeFalse(), r.Text)
		Expect(r.Text).To(ContainSubstring("TidalSession mcp-other/olga: phase Active"))

		By("malformed names")
		for _, args := range []map[string]any{
			{"name": "Alice"}, {"name": "../secrets"}, {"name": "alice", "namespace": "Bad Namespace"},
		} {
			r = callTool(restricted, toolRefresh, args)
			Expect(r.IsError).To(BeTrue())
			Expect(r.Text).To(ContainSubstring("lower case alphanumeric"))
		}
		r = callTool(restricted, toolStatus, map[string]any{})
		Expect(r.IsError).To(BeTrue())
		Expect(r.Text).To(ContainSubstring(`missing properties: ["name"]`))

		By("still serving after all of them")
		r = callTool(restricted, toolStatus, map[string]any{"name": "erin"})
		Expect(r.IsError).To(BeFalse(), r.Text)
	})

	It("answers a session in ReauthRequired with the reason and what to do", func() {
		cs := connectStdio(serverArgs(adminKubeconfig)...)
		start := time.Now()
		r := callTool(cs, toolRefresh, map[string]any{"name": "frank"})
		Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second), "a dead grant needs no waiting")
		Expect(r.IsError).To(BeTrue())
		Expect(r.Structured).To(HaveKeyWithValue("outcome", "failed"))
		Expect(structuredSummary(r).Phase).To(Equal("ReauthRequired"))
		Expect(r.Text).To(And(
			ContainSubstring("TidalSession mcp-main/frank was not refreshed: phase ReauthRequired (ReauthRequired)"),
			ContainSubstring("TIDAL rejected the refresh token"),
			ContainSubstring(`What to do next: Log in to TIDAL again and put the new refresh token in the credentials Secret "frank-creds"`)))
	})

	It("serves streamable HTTP on loopback", func() {
		endpoint := startHTTP(serverArgs(adminKubeconfig)...)
		Expect(endpoint).To(HavePrefix("http://127.0.0.1:"))
		cs := connectHTTP(endpoint)

		before, token := snapshot(nsMain, "bob")
		expectRefreshed(callTool(cs, toolRefresh, map[string]any{"name": "bob"}), nsMain, "bob", before, token)
		r := callTool(cs, toolStatus, map[string]any{"name": "nobody"})
		Expect(r.IsError).To(BeTrue())
		Expect(r.Text).To(ContainSubstring(`no TidalSession "nobody"`))
	})

	It("answers the MCP Inspector's command-line mode, over stdio and over HTTP", func() {
		stdio := append([]string{serverBin}, serverArgs(adminKubeconfig)...)

		res := inspector(append(stdio, "--method", "tools/list")...)
		Expect(res["tools"]).To(HaveLen(3))

		before, token := snapshot(nsMain, "carol")
		res = inspector(append(stdio, "--method", "tools/call", "--tool-name", toolRefresh, "--tool-arg", "name=carol")...)
		Expect(res["isError"]).NotTo(Equal(true), inspectorText(res))
		Expect(inspectorText(res)).To(ContainSubstring("Refreshed TidalSession mcp-main/carol"))
		Expect(res["structuredContent"]).To(HaveKeyWithValue("outcome", "refreshed"))
		Expect(getSession(nsMain, "carol").Status.RefreshCount).To(Equal(before.Status.RefreshCount + 1))
		Expect(string(outputSecret(nsMain, "carol").Data[sessionsv1alpha1.KeyAccessToken])).NotTo(Equal(token))

		res = inspector(append(stdio, "--method", "tools/call", "--tool-name", toolStatus, "--tool-arg", "name=nobody")...)
		Expect(res["isError"]).To(Equal(true))
		Expect(inspectorText(res)).To(ContainSubstring(`no TidalSession "nobody" in namespace "mcp-main"`))

		endpoint := startHTTP(serverArgs(adminKubeconfig)...)
		res = inspector(endpoint, "--transport", "http", "--method", "tools/call", "--tool-name", toolStatus,
			"--tool-arg", "name=carol")
		Expect(res["isError"]).NotTo(Equal(true), inspectorText(res))
		Expect(inspectorText(res)).To(ContainSubstring("TidalSession mcp-main/carol: phase Active, ready true"))
	})

	It("works under the ServiceAccount and Role of docs/mcp.md, which cannot read Secrets", func() {
		kubeconfig := serviceAccountKubeconfig(nsMain)
		cs := connectStdio(serverArgs(kubeconfig)...)

		r := callTool(cs, toolStatus, map[string]any{"name": "dave"})
		Expect(r.IsError).To(BeFalse(), r.Text)
		before, token := snapshot(nsMain, "dave")
		expectRefreshed(callTool(cs, toolRefresh, map[string]any{"name": "dave"}), nsMain, "dave", before, token)

		By("a namespace the Role does not cover")
		r = callTool(cs, toolRefresh, map[string]any{"name": "olga", "namespace": nsOther})
		Expect(r.IsError).To(BeTrue())
		Expect(r.Text).To(And(ContainSubstring(`not allowed to patch TidalSession "olga" in namespace "mcp-other"`),
			ContainSubstring("system:serviceaccount:mcp-main:tidal-mcp")))

		By("the same identity reading a Secret")
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		sa, err := client.New(cfg, client.Options{Scheme: k8s.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		err = sa.Get(context.Background(), types.NamespacedName{Namespace: nsMain, Name: "dave-creds"}, &corev1.Secret{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
	})
})
