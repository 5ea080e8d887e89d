package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

const crdName = "tidalsessions.sessions.tidal-mcp.dev"

var _ = Describe("Installing the chart in namespace mode", Ordered, func() {
	ctx := context.Background()
	const release = "tso"
	var (
		system, teamA, teamB, other string
		values                      string
		saKubeconfig, baseline      string
		scraperKubeconfig           string
		op                          *operator
		dep                         *appsv1.Deployment
	)

	BeforeAll(func() {
		system, teamA, teamB, other = newNamespace("tso-system"), newNamespace("team-a"),
			newNamespace("team-b"), newNamespace("other")
		values = filepath.Join(workDir, release+"-values.yaml")
		writeValues(values, system, teamA)
	})
	AfterAll(func() { op.stop() })

	It("installs the CRD, a Role in each watched namespace and a hardened Deployment", func() {
		handKeptCRDTo(release, system)
		out, err := helm("install", release, chartDir, "--namespace", system, "--values", values, "--wait=hookOnly")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("Namespace mode"), "NOTES says which mode is installed")

		crd := &apiextensionsv1.CustomResourceDefinition{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: crdName}, crd)).To(Succeed())
		Expect(crd.Spec.Versions).To(ContainElement(HaveField("Name", "v1alpha1")))
		Expect(crd.Annotations).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))

		By("granting the generated rules in the watched namespace only")
		expectManagerRole(teamA, release)
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: other, Name: release + "-manager"}, &rbacv1.Role{})).NotTo(Succeed())
		Expect(k8s.Get(ctx, types.NamespacedName{Name: release + "-manager"}, &rbacv1.ClusterRole{})).NotTo(Succeed(),
			"no ClusterRole carries the Secret rules in namespace mode")
		Expect(k8s.Get(ctx, types.NamespacedName{Name: release + "-manager"}, &rbacv1.ClusterRoleBinding{})).NotTo(Succeed())

		dep = getDeployment(system, release)
		expectHardenedDeployment(dep, release)
		Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElements(
			"--leader-elect=true", "--leader-election-namespace="+system, "--watch-namespaces="+teamA,
			"--tidal-auth-url="+tidalURL+"/v1/oauth2/", "--tidal-api-url="+tidalURL+"/v1/",
			"--tidal-openapi-url="+tidalURL+"/v2/", "--tidal-timeout=7s",
			"--metrics-secure=true"))
	})

	It("grants its ServiceAccount nothing beyond what the operator uses", func() {
		saKubeconfig = serviceAccountKubeconfig(system, release)
		// What every authenticated user may do (discovery, self reviews) is not the chart's
		// doing: a ServiceAccount without bindings shows it.
		createServiceAccount(system, "baseline")
		baseline = serviceAccountKubeconfig(system, "baseline")

		granted := func(ns string) accessList { return canIList(saKubeconfig, ns).minus(canIList(baseline, ns)) }
		metricsAuth := rulesAccess(metricsAuthRules...)
		Expect(granted(teamA)).To(Equal(merge(rulesAccess(generatedRules()...), metricsAuth)))
		Expect(granted(system)).To(Equal(merge(rulesAccess(leaderElectionRules...), metricsAuth)))
		Expect(granted(other)).To(Equal(metricsAuth))

		for _, check := range [][]string{
			{"get", "secrets", "-n", other},
			{"list", "secrets", "--all-namespaces"},
			{"watch", "tidalsessions.sessions.tidal-mcp.dev", "--all-namespaces"},
			{"delete", "secrets", "-n", other},
			{"get", "leases", "-n", teamA},
		} {
			out, err := kubectlAs(saKubeconfig, append([]string{"auth", "can-i"}, check...)...)
			Expect(err).To(HaveOccurred(), "allowed: %v", check)
			Expect(strings.TrimSpace(out)).To(Equal("no"), "%v", check)
		}
		out, err := kubectlAs(saKubeconfig, "auth", "can-i", "update", "secrets", "-n", teamA)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("yes"))
	})

	It("runs the operator under that identity and makes a session applied with kubectl Ready", func() {
		op = startOperator(saKubeconfig, dep.Spec.Template.Spec.Containers[0].Args)
		op.waitReady(dep.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path)

		applySession(teamA, "alice", 4101)
		applySession(other, "mallory", 4102)
		Eventually(func() bool { return isReady(teamA, "alice") }).WithTimeout(30 * time.Second).Should(BeTrue())
		s := getSession(teamA, "alice")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
		Expect(secretKeys(teamA, "alice-token")).To(ContainElements(sessionsv1alpha1.KeyAccessToken,
			sessionsv1alpha1.KeySessionFile, sessionsv1alpha1.KeyExpiresAt))
		Expect(secretKeys(teamA, "alice-token")).NotTo(ContainElement("refresh_token"))

		By("serving the example MCP server: its session file is a key of the output Secret")
		Expect(secretKeys(teamA, "alice-token")).To(ContainElement(filepath.Base(exampleSessionFile(exampleDeployment()))))

		By("serving the session's health to a caller that may get it, and to no other")
		code, body := op.health(bearerToken(saKubeconfig), teamA, "alice")
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(And(ContainSubstring(`"phase":"Active"`), ContainSubstring(`"name":"alice"`)))
		code, _ = op.health(bearerToken(baseline), teamA, "alice")
		Expect(code).To(Equal(http.StatusForbidden))

		By("working without a permission error: every feature used is granted")
		Expect(op.logs.String()).NotTo(MatchRegexp(`(?i)forbidden|cannot (get|list|watch|create|update|patch)`))
		Expect(op.logs.String()).To(ContainSubstring("Successfully acquired lease"))
		Eventually(func(g Gomega) {
			var evs corev1.EventList
			g.Expect(k8s.List(ctx, &evs, client.InNamespace(system))).To(Succeed())
			g.Expect(evs.Items).To(ContainElement(HaveField("Reason", "LeaderElection")))
		}).WithTimeout(10*time.Second).Should(Succeed(), "the new leader is announced with an Event")
	})

	It("serves metrics only to scrapers bound to the metrics-reader ClusterRole", func() {
		// metrics.readerServiceAccounts binds this account to the metrics-reader ClusterRole.
		createServiceAccount(system, "scraper")
		scraperKubeconfig = serviceAccountKubeconfig(system, "scraper")
		code, body := op.scrape(bearerToken(scraperKubeconfig))
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(ContainSubstring(fmt.Sprintf(`tidal_session_ready{name="alice",namespace="%s"} 1`, teamA)))
		Expect(body).To(ContainSubstring("tidal_session_status_up 1"))
		Expect(body).To(ContainSubstring(`tidal_session_refresh_attempts_total{result="success"}`))

		code, _ = op.scrape(bearerToken(baseline))
		Expect(code).To(Equal(http.StatusForbidden))
	})

	It("ignores sessions in namespaces it does not watch", func() {
		// The session was applied with alice's, so the operator has had as long to take it.
		Expect(getSession(other, "mallory").Status.Phase).To(BeEmpty())
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: other, Name: "mallory-token"}, &corev1.Secret{})).NotTo(Succeed())
	})

	It("keeps sessions Ready through helm upgrade, which adds a watched namespace", func() {
		refreshes := getSession(teamA, "alice").Status.RefreshCount
		writeValues(values, system, teamA, teamB)
		// The upgrade brings a CRD that differs from the installed one, as a new chart version
		// would: Helm must update it.
		upgraded := chartWithChangedCRD("(upgraded)")
		out, err := helm("upgrade", release, upgraded, "--namespace", system, "--values", values, "--wait=hookOnly")
		Expect(err).NotTo(HaveOccurred(), out)
		crd := &apiextensionsv1.CustomResourceDefinition{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: crdName}, crd)).To(Succeed())
		Expect(crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Description).To(ContainSubstring("(upgraded)"),
			"helm upgrade did not update the CRD")
		expectManagerRole(teamB, release)
		Expect(isReady(teamA, "alice")).To(BeTrue())

		By("restarting the operator with the upgraded Deployment's arguments, as a rollout would")
		dep = getDeployment(system, release)
		Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--watch-namespaces=" + teamA + "," + teamB))
		op.stop()
		op = startOperator(saKubeconfig, dep.Spec.Template.Spec.Containers[0].Args)
		op.waitReady(dep.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path)

		applySession(teamB, "bob", 4103)
		Eventually(func() bool { return isReady(teamB, "bob") }).WithTimeout(30 * time.Second).Should(BeTrue())
		By("refreshing alice on schedule under the upgraded release, Ready throughout")
		Eventually(func(g Gomega) {
			s := getSession(teamA, "alice")
			g.Expect(isReady(teamA, "alice")).To(BeTrue(), "alice stays Ready")
			g.Expect(s.Status.RefreshCount).To(BeNumerically(">", refreshes))
		}).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(Succeed())
		Expect(op.logs.String()).NotTo(MatchRegexp(`(?i)forbidden`))
		Expect(getSession(other, "mallory").Status.Phase).To(BeEmpty(), "still unwatched after the upgrade")
	})

	It("keeps the CRD, the sessions and their Secrets on helm uninstall", func() {
		op.stop()
		out, err := helm("uninstall", release, "--namespace", system)
		Expect(err).NotTo(HaveOccurred(), out)

		Expect(k8s.Get(ctx, types.NamespacedName{Name: crdName}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed())
		for _, s := range []types.NamespacedName{{Namespace: teamA, Name: "alice"}, {Namespace: teamB, Name: "bob"}} {
			Expect(isReady(s.Namespace, s.Name)).To(BeTrue(), "%s keeps its status", s)
			Expect(secretKeys(s.Namespace, s.Name+"-creds")).To(ContainElement("refresh_token"))
			Expect(secretKeys(s.Namespace, s.Name+"-token")).To(ContainElement(sessionsv1alpha1.KeyAccessToken))
		}
		By("removing the chart's own objects")
		for _, obj := range []client.Object{
			&appsv1.Deployment{}, &corev1.ServiceAccount{}, &corev1.Service{},
		} {
			name := release
			if _, ok := obj.(*corev1.Service); ok {
				name = release + "-metrics"
			}
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: name}, obj)).NotTo(Succeed(), "%T", obj)
		}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: teamA, Name: release + "-manager"}, &rbacv1.Role{})).NotTo(Succeed())
		Expect(k8s.Get(ctx, types.NamespacedName{Name: release + "-metrics-auth"}, &rbacv1.ClusterRole{})).NotTo(Succeed())
	})
})

var _ = Describe("Installing the chart in all-namespaces mode with monitoring", Ordered, func() {
	ctx := context.Background()
	const release = "tso-cluster"
	var (
		system, team string
		op           *operator
	)

	BeforeAll(func() {
		installMonitoringCRDs()
		system, team = newNamespace("tso-cluster"), newNamespace("team")
	})
	AfterAll(func() { op.stop() })

	It("installs a ClusterRole with the generated rules, a ServiceMonitor and a PrometheusRule", func() {
		handKeptCRDTo(release, system)
		out, err := helm("install", release, chartDir, "--namespace", system, "--wait=hookOnly",
			"--set", "tidal.authURL="+tidalURL+"/v1/oauth2/,tidal.apiURL="+tidalURL+"/v1/,tidal.openAPIURL="+tidalURL+"/v2/",
			"--set", "metrics.secure=false,metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true",
			"--set", "healthAPI.enabled=false")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("All-namespaces mode"))

		got := &rbacv1.ClusterRole{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: release + "-manager"}, got)).To(Succeed())
		Expect(rulesAccess(got.Rules...)).To(Equal(rulesAccess(generatedRules()...)))
		Expect(k8s.Get(ctx, types.NamespacedName{Name: release + "-metrics-auth"}, &rbacv1.ClusterRole{})).NotTo(Succeed(),
			"plain-HTTP metrics and no health endpoint need no TokenReview")
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: release + "-health"}, &corev1.Service{})).NotTo(Succeed())
		for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
			obj := &unstructured.Unstructured{}
			obj.SetAPIVersion("monitoring.coreos.com/v1")
			obj.SetKind(kind)
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: release}, obj)).To(Succeed(), kind)
		}
		expectHardenedDeployment(getDeployment(system, release), release)
	})

	It("runs the operator with cluster-wide access to sessions and Secrets, and nothing else", func() {
		sa := serviceAccountKubeconfig(system, release)
		createServiceAccount(system, "baseline")
		baseline := serviceAccountKubeconfig(system, "baseline")
		Expect(canIList(sa, team).minus(canIList(baseline, team))).To(Equal(rulesAccess(generatedRules()...)))
		out, err := kubectlAs(sa, "auth", "can-i", "list", "secrets", "--all-namespaces")
		Expect(err).NotTo(HaveOccurred(), out)

		args := getDeployment(system, release).Spec.Template.Spec.Containers[0].Args
		Expect(args).NotTo(ContainElement(HavePrefix("--watch-namespaces")))
		op = startOperator(sa, args)
		op.waitReady("/readyz")
		applySession(team, "carol", 4201)
		Eventually(func() bool { return isReady(team, "carol") }).WithTimeout(30 * time.Second).Should(BeTrue())
		Expect(op.logs.String()).NotTo(MatchRegexp(`(?i)forbidden`))
	})

	It("alerts only on metrics the operator serves", func() {
		code, body := op.scrape("")
		Expect(code).To(Equal(http.StatusOK))
		obj := &unstructured.Unstructured{}
		obj.SetAPIVersion("monitoring.coreos.com/v1")
		obj.SetKind("PrometheusRule")
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: system, Name: release}, obj)).To(Succeed())
		groups, _, err := unstructured.NestedSlice(obj.Object, "spec", "groups")
		Expect(err).NotTo(HaveOccurred())
		rules, _, err := unstructured.NestedSlice(groups[0].(map[string]any), "rules")
		Expect(err).NotTo(HaveOccurred())
		Expect(rules).To(HaveLen(len(alertNames)))

		metricName := regexp.MustCompile(`tidal_session_[a-z_]+`)
		used := 0
		for _, r := range rules {
			expr := r.(map[string]any)["expr"].(string)
			for _, name := range metricName.FindAllString(expr, -1) {
				used++
				Expect(body).To(MatchRegexp(`(?m)^# TYPE `+name+` `), "alert %v uses %s, which the operator does not serve",
					r.(map[string]any)["alert"], name)
			}
		}
		Expect(used).To(BeNumerically(">=", 6))
	})

	It("keeps the session and its Secrets on helm uninstall", func() {
		op.stop()
		out, err := helm("uninstall", release, "--namespace", system)
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(k8s.Get(ctx, types.NamespacedName{Name: crdName}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed())
		Expect(isReady(team, "carol")).To(BeTrue())
		Expect(secretKeys(team, "carol-token")).To(ContainElement(sessionsv1alpha1.KeyAccessToken))
		Expect(k8s.Get(ctx, types.NamespacedName{Name: release + "-manager"}, &rbacv1.ClusterRole{})).NotTo(Succeed())
	})
})

// writeValues writes the values file of the namespace-mode release: the loopback TIDAL
// server, a short timeout, the watched namespaces and a scraper allowed to read metrics.
func writeValues(path, system string, watch ...string) {
	GinkgoHelper()
	values := fmt.Sprintf(`tidal:
  authURL: %[1]s/v1/oauth2/
  apiURL: %[1]s/v1/
  openAPIURL: %[1]s/v2/
  timeout: 7s
watchNamespaces: [%[2]s]
metrics:
  readerServiceAccounts:
    - name: scraper
      namespace: %[3]s
`, tidalURL, strings.Join(watch, ", "), system)
	Expect(os.WriteFile(path, []byte(values), 0o600)).To(Succeed())
}

func createServiceAccount(ns, name string) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(Succeed())
}

func getDeployment(ns, name string) *appsv1.Deployment {
	GinkgoHelper()
	dep := &appsv1.Deployment{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, dep)).To(Succeed())
	return dep
}

// expectManagerRole checks that ns has the chart's Role with the generated rules, bound to
// the release's ServiceAccount.
func expectManagerRole(ns, release string) {
	GinkgoHelper()
	ctx := context.Background()
	role := &rbacv1.Role{}
	Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: release + "-manager"}, role)).To(Succeed())
	Expect(rulesAccess(role.Rules...)).To(Equal(rulesAccess(generatedRules()...)))
	binding := &rbacv1.RoleBinding{}
	Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: release + "-manager"}, binding)).To(Succeed())
	Expect(binding.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: release + "-manager"}))
	Expect(binding.Subjects).To(ConsistOf(HaveField("Name", release)))
}

// expectHardenedDeployment checks the pod against the Pod Security "restricted" profile,
// field by field, and that it has probes and resources.
func expectHardenedDeployment(dep *appsv1.Deployment, release string) {
	GinkgoHelper()
	pod := dep.Spec.Template.Spec
	Expect(pod.ServiceAccountName).To(Equal(release))
	Expect(pod.SecurityContext).NotTo(BeNil())
	Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	Expect(pod.SecurityContext.RunAsUser).To(HaveValue(BeNumerically("==", 65532)))
	Expect(pod.SecurityContext.SeccompProfile).NotTo(BeNil())
	Expect(pod.SecurityContext.SeccompProfile.Type).To(BeEquivalentTo("RuntimeDefault"))
	Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	Expect(c.SecurityContext).NotTo(BeNil())
	Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
	Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
	Expect(c.SecurityContext.Privileged).To(HaveValue(BeFalse()))
	Expect(c.SecurityContext.Capabilities).NotTo(BeNil())
	Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(BeEquivalentTo("ALL")))
	Expect(c.SecurityContext.Capabilities.Add).To(BeEmpty())
	Expect(c.Resources.Requests.Cpu().Cmp(resource.MustParse("10m"))).To(Equal(0))
	Expect(c.Resources.Limits.Memory().Cmp(resource.MustParse("256Mi"))).To(Equal(0))
	Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
}
