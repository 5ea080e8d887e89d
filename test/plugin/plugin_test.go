package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionfile"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
)

var _ = Describe("kubectl tidal import", func() {
	ctx := context.Background()

	DescribeTable("creates the credentials Secret and the TidalSession, which the operator makes Ready",
		func(format string, fromStdin bool, userID int64) {
			ns := newNamespace()
			rt, at := issueGrant(userID), madeUpAccessToken()
			file := sessionFile(format, rt, at)
			args := []string{"import", writeTemp("session.json", file), "--name", "alice", "-n", ns,
				"--client-secret-file", clientSecretFile()}
			stdin := ""
			if fromStdin {
				args[1], stdin = "-", file
			}
			if format != "flat" { // the flat file names its client
				args = append(args, "--client-id", pluginClient)
			}

			r := kubectlTidal(stdin, args...)
			Expect(r.err).NotTo(HaveOccurred(), r.stderr)
			Expect(r.stdout).To(Equal("secret/alice-credentials created\ntidalsession.sessions.tidal-mcp.dev/alice created\n"))

			secret, err := getSecret(ns, "alice-credentials")
			Expect(err).NotTo(HaveOccurred())
			Expect(secret.Data).To(HaveLen(3))
			Expect(string(secret.Data["refresh_token"])).To(Equal(rt), "the refresh token of the file")
			Expect(string(secret.Data["client_id"])).To(Equal(pluginClient))
			Expect(string(secret.Data["client_secret"])).To(Equal(canaryClientSecret))
			session := getSession(ns, "alice")
			Expect(session.Spec.CredentialsSecretRef.Name).To(Equal("alice-credentials"))
			Expect(session.Spec.OutputSecret.Name).To(Equal("alice-tidal-token"))
			Expect(secret.OwnerReferences).To(ConsistOf(HaveField("UID", session.UID)))

			By("the operator refreshing with the imported credentials")
			w := runKubectl("", "-n", ns, "wait", "--for=condition=Ready", "tidalsession/alice", "--timeout=30s")
			Expect(w.err).NotTo(HaveOccurred(), w.stderr)
			Expect(getSession(ns, "alice").Status.UserID).To(Equal(fmt.Sprint(userID)))
			output, err := getSecret(ns, "alice-tidal-token")
			Expect(err).NotTo(HaveOccurred())
			Expect(string(output.Data[sessionsv1alpha1.KeyAccessToken])).NotTo(Equal(at),
				"the file's access token is not used: the operator refreshes at once")
		},
		Entry("tidalapi's session file", "tidalapi", false, int64(7100001)),
		Entry("tidal-dl-ng's token.json", "tidal-dl-ng", false, int64(7100002)),
		Entry("flat MCP JSON naming its client", "flat", false, int64(7100003)),
		Entry("flat MCP JSON on standard input", "flat", true, int64(7100004)),
	)

	DescribeTable("refuses a malformed file, names the problem and creates nothing",
		func(file func() string, want string) {
			ns := newNamespace()
			r := kubectlTidal(file(), "import", "-", "--name", "bob", "-n", ns, "--client-id", pluginClient)
			Expect(r.err).To(HaveOccurred())
			Expect(r.stderr).To(ContainSubstring(want))
			Expect(r.stdout).To(BeEmpty())
			expectNothingIn(ns)
		},
		Entry("invalid JSON around a token", func() string {
			return `{"refresh_token": ` + remember(canaryMarker+"-RT-bare-"+fmt.Sprint(time.Now().UnixNano())) + `}`
		}, "failed to read session file: not valid JSON (syntax error at byte 19)"),
		Entry("the operator's own session.json, which has no refresh token", func() string {
			b, err := sessionfile.Tidalapi{TokenType: "Bearer", AccessToken: madeUpAccessToken()}.Marshal()
			Expect(err).NotTo(HaveOccurred())
			return string(b)
		}, "failed to read session file as tidalapi: refresh_token: is null"),
		Entry("tidalapi with one value not wrapped", func() string {
			return fmt.Sprintf(`{"access_token": {"data": %q}, "refresh_token": %q}`, madeUpAccessToken(), issueGrant(7100010))
		}, `as tidalapi: refresh_token: is not wrapped as {"data": ...}`),
		Entry("flat JSON with a user id that is not one", func() string {
			return fmt.Sprintf(`{"refresh_token": %q, "user_id": %q}`, issueGrant(7100011), madeUpAccessToken())
		}, "as flat: user_id: is not a TIDAL user id"),
	)

	It("creates nothing when the credentials Secret's name is taken, and leaves that Secret alone", func() {
		ns := newNamespace()
		taken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "carol-credentials"},
			StringData: map[string]string{"note": "someone else's"}}
		Expect(k8s.Create(ctx, taken)).To(Succeed())

		r := kubectlTidal(sessionFile("flat", issueGrant(7100020), madeUpAccessToken()),
			"import", "-", "--name", "carol", "-n", ns)
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(ContainSubstring(`Secret "carol-credentials" already exists: nothing was created`))
		expectNothingIn(ns, "carol-credentials")
		after, err := getSecret(ns, "carol-credentials")
		Expect(err).NotTo(HaveOccurred())
		Expect(after.ResourceVersion).To(Equal(taken.ResourceVersion))
	})

	It("creates no Secret when the TidalSession's name is taken", func() {
		ns := newNamespace()
		existing := &sessionsv1alpha1.TidalSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dave"},
			Spec: sessionsv1alpha1.TidalSessionSpec{
				CredentialsSecretRef: sessionsv1alpha1.CredentialsSecretReference{Name: "elsewhere"},
				OutputSecret:         sessionsv1alpha1.OutputSecretSpec{Name: "dave-out"},
				Suspend:              true,
			}}
		Expect(k8s.Create(ctx, existing)).To(Succeed())

		r := kubectlTidal(sessionFile("flat", issueGrant(7100030), madeUpAccessToken()),
			"import", "-", "--name", "dave", "-n", ns)
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(ContainSubstring(`TidalSession "dave" already exists: nothing was created`))
		_, err := getSecret(ns, "dave-credentials")
		Expect(err).To(HaveOccurred(), "the server-side dry run must have stopped the import before the Secret")
	})

	It("creates nothing when the user may create Secrets but not TidalSessions", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secrets-only"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "patch", "delete"}},
				{APIGroups: []string{sessionsv1alpha1.GroupVersion.Group}, Resources: []string{"tidalsessions"},
					Verbs: []string{"get", "list"}},
			}})).To(Succeed())
		Expect(k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "importer"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secrets-only"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "importer"}},
		})).To(Succeed())

		r := kubectlTidal(sessionFile("flat", issueGrant(7100040), madeUpAccessToken()),
			"import", "-", "--name", "erin", "-n", ns, "--as", "importer")
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(And(ContainSubstring(`failed to create TidalSession "erin", nothing was created`),
			ContainSubstring("forbidden")))
		expectNothingIn(ns)
	})

	It("in a dry run creates nothing and prints the objects with their secrets masked", func() {
		ns := newNamespace()
		secretFile := clientSecretFile()
		file := sessionFile("tidalapi", issueGrant(7100050), madeUpAccessToken())

		By("a server-side dry run, printed as YAML by default")
		r := kubectlTidal(file, "import", "-", "--name", "frank", "-n", ns, "--client-id", pluginClient,
			"--client-secret-file", secretFile, "--dry-run")
		Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		var list struct {
			Kind  string `json:"kind"`
			Items []struct {
				Kind       string            `json:"kind"`
				Metadata   metav1.ObjectMeta `json:"metadata"`
				Data       map[string]string `json:"data"`
				StringData map[string]string `json:"stringData"`
				Spec       map[string]any    `json:"spec"`
			} `json:"items"`
		}
		Expect(yaml.Unmarshal([]byte(r.stdout), &list)).To(Succeed())
		Expect(list.Kind).To(Equal("List"))
		Expect(list.Items).To(HaveLen(2))
		Expect(list.Items[0].Kind).To(Equal("Secret"))
		Expect(list.Items[0].Data).To(BeEmpty())
		Expect(list.Items[0].StringData).To(Equal(map[string]string{
			"refresh_token": "<masked>", "client_secret": "<masked>", "client_id": pluginClient}))
		Expect(list.Items[1].Kind).To(Equal("TidalSession"))
		Expect(list.Items[1].Spec).To(HaveKeyWithValue("credentialsSecretRef",
			// The API server's defaults show: this is what would be stored.
			HaveKeyWithValue("refreshTokenKey", "refresh_token")))
		expectNothingIn(ns)

		By("a client-side dry run as JSON")
		r = kubectlTidal(file, "import", "-", "--name", "frank", "-n", ns, "--client-id", pluginClient,
			"--dry-run=client", "-o", "json")
		Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		Expect(json.Valid([]byte(r.stdout))).To(BeTrue())
		Expect(r.stdout).To(ContainSubstring(`"refresh_token": "\u003cmasked\u003e"`))
		expectNothingIn(ns)
	})
})

var _ = Describe("kubectl tidal status and refresh", func() {
	It("describe an imported session and refresh it through the operator", func() {
		ns := newNamespace()
		r := kubectlTidal(sessionFile("flat", issueGrant(7100100), madeUpAccessToken()),
			"import", "-", "--name", "gina", "-n", ns, "--client-secret-file", clientSecretFile())
		Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		w := runKubectl("", "-n", ns, "wait", "--for=condition=Ready", "tidalsession/gina", "--timeout=30s")
		Expect(w.err).NotTo(HaveOccurred(), w.stderr)

		By("status in words, as a table and as JSON")
		r = kubectlTidal("", "status", "gina", "-n", ns)
		Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		Expect(r.stdout).To(And(ContainSubstring(fmt.Sprintf("TidalSession %s/gina: phase Active, ready true", ns)),
			ContainSubstring("TIDAL user 7100100, country NO"), ContainSubstring(`Consumers mount the Secret "gina-tidal-token"`)))
		r = kubectlTidal("", "status", "-n", ns)
		Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		Expect(r.stdout).To(MatchRegexp(`^NAME\s+PHASE\s+READY\s+EXPIRES\s+NEXT REFRESH\s+NEXT STEP\ngina\s+Active\s+True\s+\d{4}-`))
		before := getSession(ns, "gina").Status

		By("a refresh on request")
		start := time.Now()
		r = kubectlTidal("", "refresh", "gina", "-n", ns, "--timeout", "90s", "-o", "json")
		Expect(r.err).NotTo(HaveOccurred(), r.stderr)
		GinkgoWriter.Printf("refresh took %s (refreshes stay 30 s apart)\n", time.Since(start).Round(time.Second))
		var summary sessionops.Summary
		Expect(json.Unmarshal([]byte(r.stdout), &summary)).To(Succeed())
		Expect(summary.Phase).To(Equal("Active"))
		Expect(summary.RefreshCount).To(BeNumerically(">", before.RefreshCount))
		after := getSession(ns, "gina").Status
		Expect(after.LastRefreshTime.After(before.LastRefreshTime.Time)).To(BeTrue())
		Expect(after.LastRefreshRequest).NotTo(BeEmpty())

		By("a refresh of a session that does not exist")
		r = kubectlTidal("", "refresh", "nobody", "-n", ns, "--timeout", "5s")
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(ContainSubstring(fmt.Sprintf(`no TidalSession "nobody" in namespace %q`, ns)))
	})
})
