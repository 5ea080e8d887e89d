package integration

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// The spec fragments below are indented under "spec:"; base is a valid one to extend.
const validationBase = "  credentialsSecretRef: {name: creds}\n  outputSecret: {name: token}\n"

// sessionManifest is a TidalSession of the given name and namespace with spec as its body.
func sessionManifest(ns, name, spec string) string {
	return fmt.Sprintf("apiVersion: sessions.tidal-mcp.dev/v1alpha1\nkind: TidalSession\n"+
		"metadata:\n  name: %s\n  namespace: %s\nspec:\n%s", name, ns, spec)
}

// sessionExists says whether the API server stored the session.
func sessionExists(ns, name string) bool {
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &sessionsv1alpha1.TidalSession{})
	if apierrors.IsNotFound(err) {
		return false
	}
	Expect(err).NotTo(HaveOccurred())
	return true
}

var _ = Describe("Validation at the door", func() {
	DescribeTable("rejects a bad spec at creation, naming the field",
		func(name, spec string, want ...string) {
			ns := newNamespace()
			out, err := kubectl(sessionManifest(ns, name, spec), "apply", "-f", "-")
			Expect(err).To(HaveOccurred(), "kubectl apply accepted it: %s", out)
			GinkgoWriter.Print(out)
			for _, w := range want {
				Expect(out).To(ContainSubstring(w))
			}
			Expect(sessionExists(ns, name)).To(BeFalse(), "a rejected session was stored")
		},
		Entry("output Secret is the credentials Secret", "frank",
			"  credentialsSecretRef: {name: same}\n  outputSecret: {name: same}\n",
			"spec.outputSecret.name: Invalid value", "outputSecret.name must differ from credentialsSecretRef.name"),
		Entry("name longer than a label value", strings.Repeat("n", 64), validationBase,
			"metadata.name must be at most 63 characters"),
		Entry("negative beforeExpiry", "neg", validationBase+"  refresh: {beforeExpiry: -5m}\n",
			"spec.refresh.beforeExpiry: Invalid value", "must be a positive duration"),
		Entry("zero beforeExpiry", "zero", validationBase+"  refresh: {beforeExpiry: 0s}\n",
			"spec.refresh.beforeExpiry: Invalid value", "refresh.beforeExpiry must be a positive duration"),
		Entry("beforeExpiry above 24h", "long", validationBase+"  refresh: {beforeExpiry: 25h}\n",
			"spec.refresh.beforeExpiry: Invalid value", "refresh.beforeExpiry must be at most 24h"),
		Entry("beforeExpiry in days", "days", validationBase+"  refresh: {beforeExpiry: 1d}\n",
			"spec.refresh.beforeExpiry: Invalid value", "refresh.beforeExpiry must be a duration such as 30m"),
		Entry("beforeExpiry without a unit", "unitless", validationBase+"  refresh: {beforeExpiry: \"30\"}\n",
			"spec.refresh.beforeExpiry: Invalid value", "refresh.beforeExpiry must be a duration such as 30m"),
		Entry("beforeExpiry longer than any duration", "verbose",
			validationBase+"  refresh: {beforeExpiry: "+strings.Repeat("1m", 20)+"}\n",
			"spec.refresh.beforeExpiry: Too long"),
		Entry("both refresh policies", "both",
			validationBase+"  refresh: {beforeExpiry: 30m, beforeExpiryPercent: 10}\n",
			"spec.refresh: Invalid value", "set at most one of refresh.beforeExpiry and refresh.beforeExpiryPercent"),
		Entry("percentage above 50", "pct", validationBase+"  refresh: {beforeExpiryPercent: 51}\n",
			"spec.refresh.beforeExpiryPercent: Invalid value", "less than or equal to 50"),
		Entry("percentage of 0", "pct0", validationBase+"  refresh: {beforeExpiryPercent: 0}\n",
			"spec.refresh.beforeExpiryPercent: Invalid value", "greater than or equal to 1"),
		Entry("percentage as text", "pcttext", validationBase+"  refresh: {beforeExpiryPercent: ten}\n",
			"spec.refresh.beforeExpiryPercent", "integer"),
		Entry("health check interval below 1m", "often", validationBase+"  healthCheck: {interval: 30s}\n",
			"spec.healthCheck.interval: Invalid value", "healthCheck.interval must be between 1m and 24h"),
		Entry("health check interval above 24h", "rarely", validationBase+"  healthCheck: {interval: 25h}\n",
			"spec.healthCheck.interval: Invalid value", "healthCheck.interval must be between 1m and 24h"),
		Entry("health check interval in ISO 8601", "iso", validationBase+"  healthCheck: {interval: PT1H}\n",
			"spec.healthCheck.interval: Invalid value", "healthCheck.interval must be a duration such as 15m"),
		Entry("unknown health check endpoint", "graph", validationBase+"  healthCheck: {endpoint: Graph}\n",
			"spec.healthCheck.endpoint: Unsupported value: \"Graph\"", `"Sessions", "UsersMe"`),
		Entry("no credentials Secret name", "nocreds", "  credentialsSecretRef: {}\n  outputSecret: {name: token}\n",
			"spec.credentialsSecretRef.name: Required value"),
		Entry("no output Secret", "nooutput", "  credentialsSecretRef: {name: creds}\n",
			"spec.outputSecret: Required value"),
		Entry("credentials Secret name that is no Secret name", "upper",
			"  credentialsSecretRef: {name: Alice_Creds}\n  outputSecret: {name: token}\n",
			"spec.credentialsSecretRef.name: Invalid value: \"Alice_Creds\"", "should match"),
		Entry("empty output Secret name", "emptyout", "  credentialsSecretRef: {name: creds}\n  outputSecret: {name: \"\"}\n",
			"spec.outputSecret.name: Invalid value", "at least 1 chars long"),
		Entry("output Secret name longer than a Secret name", "longout",
			"  credentialsSecretRef: {name: creds}\n  outputSecret: {name: "+strings.Repeat("o", 254)+"}\n",
			"spec.outputSecret.name: Too long"),
		Entry("refresh token key with a slash", "slash",
			"  credentialsSecretRef: {name: creds, refreshTokenKey: tidal/refresh}\n  outputSecret: {name: token}\n",
			"spec.credentialsSecretRef.refreshTokenKey: Invalid value: \"tidal/refresh\"", "should match"),
		Entry("client id key '..'", "dotdot",
			"  credentialsSecretRef: {name: creds, clientIDKey: \"..\"}\n  outputSecret: {name: token}\n",
			"spec.credentialsSecretRef.clientIDKey: Invalid value", "clientIDKey must not be '.' or '..'"),
		Entry("refresh token written over the client id", "rtid",
			"  credentialsSecretRef: {name: creds, refreshTokenKey: client_id}\n  outputSecret: {name: token}\n",
			"spec.credentialsSecretRef.refreshTokenKey: Invalid value",
			"refreshTokenKey and clientIDKey must name different keys"),
		Entry("refresh token written over the client secret", "rtsecret",
			"  credentialsSecretRef: {name: creds, clientSecretKey: refresh_token}\n  outputSecret: {name: token}\n",
			"spec.credentialsSecretRef.refreshTokenKey: Invalid value",
			"refreshTokenKey and clientSecretKey must name different keys"),
		Entry("session file under the refresh token key", "filert",
			"  credentialsSecretRef: {name: creds, sessionFileKey: refresh_token}\n  outputSecret: {name: token}\n",
			"spec.credentialsSecretRef.sessionFileKey: Invalid value",
			"sessionFileKey and refreshTokenKey must name different keys"),
		Entry("misspelt field, which would otherwise be dropped", "typo",
			validationBase+"  refresh: {beforeExpiryPercentage: 10}\n",
			"unknown field", "spec.refresh.beforeExpiryPercentage"),
	)

	DescribeTable("rejects an update that breaks a rule, and keeps the stored spec",
		func(name, before, after string, want ...string) {
			ns := newNamespace()
			_, err := kubectl(sessionManifest(ns, name, before), "apply", "-f", "-")
			Expect(err).NotTo(HaveOccurred())
			stored := getSession(ns, name)

			out, err := kubectl(sessionManifest(ns, name, after), "apply", "-f", "-")
			Expect(err).To(HaveOccurred(), "kubectl apply accepted it: %s", out)
			GinkgoWriter.Print(out)
			for _, w := range want {
				Expect(out).To(ContainSubstring(w))
			}
			Expect(getSession(ns, name).Spec).To(Equal(stored.Spec))
		},
		Entry("a new refresh token key in the same Secret", "rekey",
			"  credentialsSecretRef: {name: creds, refreshTokenKey: rt}\n  outputSecret: {name: token}\n",
			"  credentialsSecretRef: {name: creds, refreshTokenKey: refresh}\n  outputSecret: {name: token}\n",
			"spec.credentialsSecretRef.refreshTokenKey: Invalid value",
			"refreshTokenKey cannot change while credentialsSecretRef.name stays the same"),
		Entry("a refresh token key dropped, so that the default would replace it", "unkey",
			"  credentialsSecretRef: {name: creds, refreshTokenKey: rt}\n  outputSecret: {name: token}\n",
			validationBase,
			"spec.credentialsSecretRef.refreshTokenKey: Invalid value",
			"refreshTokenKey cannot change while credentialsSecretRef.name stays the same"),
		Entry("the output Secret moved onto the credentials Secret", "onto", validationBase,
			"  credentialsSecretRef: {name: creds}\n  outputSecret: {name: creds}\n",
			"outputSecret.name must differ from credentialsSecretRef.name"),
		Entry("a second refresh policy added", "second",
			validationBase+"  refresh: {beforeExpiryPercent: 20}\n",
			validationBase+"  refresh: {beforeExpiryPercent: 20, beforeExpiry: 10m}\n",
			"set at most one of refresh.beforeExpiry and refresh.beforeExpiryPercent"),
	)

	DescribeTable("accepts good specs",
		func(name, spec string, jsonpath, want string) {
			ns := newNamespace()
			_, err := kubectl(sessionManifest(ns, name, spec), "apply", "-f", "-")
			Expect(err).NotTo(HaveOccurred())
			out, err := kubectl("", "-n", ns, "get", "tidalsession", name, "-o", "jsonpath="+jsonpath)
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(Equal(want))
		},
		Entry("the minimal spec, with the defaults applied", "minimal", validationBase,
			`{.spec.credentialsSecretRef.refreshTokenKey},{.spec.credentialsSecretRef.clientIDKey},`+
				`{.spec.credentialsSecretRef.clientSecretKey},{.spec.healthCheck.endpoint}`,
			"refresh_token,client_id,client_secret,Sessions"),
		Entry("a name of 63 characters", strings.Repeat("n", 63), validationBase,
			"{.metadata.name}", strings.Repeat("n", 63)),
		Entry("beforeExpiry of exactly 24h", "day", validationBase+"  refresh: {beforeExpiry: 24h}\n",
			"{.spec.refresh.beforeExpiry}", "24h"),
		Entry("beforeExpiry with a fraction and several units", "mixed", validationBase+"  refresh: {beforeExpiry: 1.5h10m30s}\n",
			"{.spec.refresh.beforeExpiry}", "1.5h10m30s"),
		Entry("the lowest percentage", "pct1", validationBase+"  refresh: {beforeExpiryPercent: 1}\n",
			"{.spec.refresh.beforeExpiryPercent}", "1"),
		Entry("the highest percentage", "pct50", validationBase+"  refresh: {beforeExpiryPercent: 50}\n",
			"{.spec.refresh.beforeExpiryPercent}", "50"),
		Entry("the shortest health check interval", "check1m", validationBase+"  healthCheck: {interval: 1m}\n",
			"{.spec.healthCheck.interval},{.spec.healthCheck.endpoint}", "1m,Sessions"),
		Entry("the longest health check interval, against users/me", "check24h",
			validationBase+"  healthCheck: {interval: 24h, endpoint: UsersMe}\n",
			"{.spec.healthCheck.interval},{.spec.healthCheck.endpoint}", "24h,UsersMe"),
		Entry("keys of other names, dotted", "keys",
			"  credentialsSecretRef: {name: tidal.creds, refreshTokenKey: tidal.refresh-token, clientIDKey: ID, "+
				"clientSecretKey: _secret}\n  outputSecret: {name: tidal.token}\n",
			`{.spec.credentialsSecretRef.refreshTokenKey},{.spec.credentialsSecretRef.clientIDKey},`+
				`{.spec.credentialsSecretRef.clientSecretKey}`,
			"tidal.refresh-token,ID,_secret"),
	)

	DescribeTable("accepts updates that strand nothing",
		func(name, before, after, jsonpath, want string) {
			ns := newNamespace()
			_, err := kubectl(sessionManifest(ns, name, before), "apply", "-f", "-")
			Expect(err).NotTo(HaveOccurred())
			_, err = kubectl(sessionManifest(ns, name, after), "apply", "-f", "-")
			Expect(err).NotTo(HaveOccurred())
			out, err := kubectl("", "-n", ns, "get", "tidalsession", name, "-o", "jsonpath="+jsonpath)
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(Equal(want))
		},
		Entry("a new refresh token key together with a new Secret", "newlogin",
			"  credentialsSecretRef: {name: creds, refreshTokenKey: rt}\n  outputSecret: {name: token}\n",
			"  credentialsSecretRef: {name: creds-2}\n  outputSecret: {name: token}\n",
			`{.spec.credentialsSecretRef.name},{.spec.credentialsSecretRef.refreshTokenKey}`,
			"creds-2,refresh_token"),
		Entry("a renamed output Secret", "rename", validationBase,
			"  credentialsSecretRef: {name: creds}\n  outputSecret: {name: token-2}\n",
			"{.spec.outputSecret.name}", "token-2"),
		Entry("a new client id key", "newid", validationBase,
			"  credentialsSecretRef: {name: creds, clientIDKey: id}\n  outputSecret: {name: token}\n",
			"{.spec.credentialsSecretRef.clientIDKey}", "id"),
		Entry("one refresh policy swapped for the other", "swap",
			validationBase+"  refresh: {beforeExpiryPercent: 20}\n",
			validationBase+"  refresh: {beforeExpiry: 10m}\n",
			"{.spec.refresh.beforeExpiry}/{.spec.refresh.beforeExpiryPercent}", "10m/"),
	)

	// Admission sees one object: it cannot know which Secrets exist or what they hold. These
	// specs pass it, and the operator reports what is wrong in the Ready condition instead.
	DescribeTable("reports what admission cannot know in the Ready condition",
		func(name, spec string, secrets map[string]map[string]string, reason string, want ...string) {
			ns := newNamespace()
			var manifest strings.Builder
			for secret, data := range secrets {
				fmt.Fprintf(&manifest, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\nstringData:\n",
					secret, ns)
				for k, v := range data {
					fmt.Fprintf(&manifest, "  %s: %s\n", k, v)
				}
				manifest.WriteString("---\n")
			}
			manifest.WriteString(sessionManifest(ns, name, spec))
			_, err := kubectl(manifest.String(), "apply", "-f", "-")
			Expect(err).NotTo(HaveOccurred())

			Eventually(readyCondition(ns, name), 30*time.Second, 200*time.Millisecond).Should(And(
				HaveField("Status", metav1.ConditionFalse), HaveField("Reason", reason)))
			s := getSession(ns, name)
			Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseError))
			cond := readyCondition(ns, name)()
			for _, w := range want {
				Expect(cond.Message).To(ContainSubstring(w))
			}
			out, err := kubectl("", "-n", ns, "describe", "tidalsession", name)
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(ContainSubstring(reason))

			// Nothing the spec names was written to: every Secret is as it was applied.
			for secret, data := range secrets {
				got, err := getSecret(ns, secret)
				Expect(err).NotTo(HaveOccurred())
				Expect(got.Data).To(HaveLen(len(data)))
				for k, v := range data {
					Expect(string(got.Data[k])).To(Equal(v))
				}
			}
		},
		Entry("a credentials Secret that does not exist", "nosecret", validationBase, nil,
			sessionsv1alpha1.ReasonCredentialsMissing, "credentials Secret creds not found"),
		Entry("a refresh token key the Secret does not have", "nokey",
			"  credentialsSecretRef: {name: creds, refreshTokenKey: tidal_refresh}\n  outputSecret: {name: token}\n",
			map[string]map[string]string{"creds": {"refresh_token": "unused-rt", "client_id": longClient}},
			sessionsv1alpha1.ReasonCredentialsMissing, "credentials Secret creds", `"tidal_refresh"`),
		Entry("an output Secret that is another session's credentials Secret", "theft",
			"  credentialsSecretRef: {name: creds}\n  outputSecret: {name: alice-creds}\n",
			map[string]map[string]string{
				"creds":       {"refresh_token": "unused-rt-1", "client_id": longClient},
				"alice-creds": {"refresh_token": "unused-rt-2", "client_id": longClient},
			},
			sessionsv1alpha1.ReasonOutputSecretConflict, "alice-creds"),
	)
})
