package e2e

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// alertNames are the alerts of the chart's PrometheusRule.
var alertNames = []string{
	"TidalSessionOperatorDown",
	"TidalSessionMetricsUnavailable",
	"TidalSessionRefreshFailing",
	"TidalSessionRefreshErrorsHigh",
	"TidalSessionExpiringSoon",
	"TidalSessionExpired",
	"TidalSessionReauthRequired",
	"TidalSessionQuarantined",
	"TidalSessionBindingViolated",
	"TidalSessionAnomaly",
	"TidalSessionTokenTheftSuspected",
	"TidalSessionTokenRequestRefused",
	"TidalSessionNotReady",
}

// prometheusRule is the part of a PrometheusRule the specs read.
type prometheusRule struct {
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

var _ = Describe("The Helm chart", func() {
	It("lints in every mode and rejects values its schema forbids", func() {
		for _, set := range []string{
			"",
			"watchNamespaces={team-a,team-b}",
			"metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true",
			"metrics.enabled=false,leaderElection=false",
			"healthAPI.tokenEndpoint.enabled=true,healthAPI.tokenEndpoint.audience=mcp.example.org",
		} {
			args := []string{"lint", "--strict", chartDir}
			if set != "" {
				args = append(args, "--set", set)
			}
			out, err := helm(args...)
			Expect(err).NotTo(HaveOccurred(), out)
		}

		for set, complaint := range map[string]string{
			"watchNamespaces=team-a":             "/watchNamespaces",
			"watchNamespaces={Team_A}":           "/watchNamespaces/0",
			"tidal.timeout=soon":                 "/tidal/timeout",
			"tidal.authURL=ftp://127.0.0.1/":     "/tidal/authURL",
			"operator.maxConcurrentReconciles=0": "/operator/maxConcurrentReconciles",
			"metrics.serviceMonitr.enabled=true": "serviceMonitr",
			"prometheusRule.refreshErrorRatio=2": "/prometheusRule/refreshErrorRatio",
			// An audience is one word: the flag takes one.
			"healthAPI.tokenEndpoint.audience=a b": "/healthAPI/tokenEndpoint/audience",
			"healthAPI.certSecret=Not_A_Secret":    "/healthAPI/certSecret",
			// The health endpoint serves the token endpoint: one without the other is refused.
			"healthAPI.enabled=false,healthAPI.tokenEndpoint.enabled=true": "/healthAPI/tokenEndpoint/enabled",
		} {
			out, err := helm("lint", chartDir, "--set", set)
			Expect(err).To(HaveOccurred(), "helm lint accepted %s", set)
			Expect(out).To(ContainSubstring(complaint), set)
		}
	})

	It("renders manifests the API server accepts, in both modes and with monitoring on", func() {
		installMonitoringCRDs()
		teamA, teamB := newNamespace("render-a"), newNamespace("render-b")
		for _, set := range []string{
			"",
			"watchNamespaces={" + teamA + "," + teamB + "}",
			"metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true,metrics.readerServiceAccounts[0].name=prometheus,metrics.readerServiceAccounts[0].namespace=monitoring",
			"metrics.enabled=false,leaderElection=false,image.digest=sha256:" + strings.Repeat("ab", 32),
			"healthAPI.certSecret=render-health-tls,healthAPI.tokenEndpoint.enabled=true",
		} {
			ns := newNamespace("render")
			// A release name of its own, so that cluster-scoped names meet no installed release.
			args := []string{"template", "render", chartDir, "--namespace", ns, "--include-crds"}
			if set != "" {
				args = append(args, "--set", set)
			}
			manifest, err := helm(args...)
			Expect(err).NotTo(HaveOccurred(), manifest)
			// The server validates every object, its schema and its references, and creates none.
			// Every namespaced object names its namespace, so none is given here.
			out, err := kubectl(manifest, "apply", "--dry-run=server", "-f", "-")
			Expect(err).NotTo(HaveOccurred(), out)
			Expect(out).To(ContainSubstring("deployment.apps/render created (server dry run)"))
		}
	})

	It("alerts on failing refreshes, expiry, re-authentication and a missing operator", func() {
		out, err := helm("template", "tso", chartDir, "--namespace", "tso-system",
			"--set", "prometheusRule.enabled=true,prometheusRule.alertLabels.team=music",
			"--show-only", "templates/prometheusrule.yaml")
		Expect(err).NotTo(HaveOccurred(), out)
		var rule prometheusRule
		Expect(yaml.Unmarshal([]byte(out), &rule)).To(Succeed())
		Expect(rule.Spec.Groups).To(HaveLen(1))
		var names []string
		for _, r := range rule.Spec.Groups[0].Rules {
			names = append(names, r.Alert)
			Expect(r.Labels).To(HaveKeyWithValue("team", "music"), r.Alert)
			Expect(r.Labels["severity"]).To(BeElementOf("warning", "critical"), r.Alert)
			Expect(r.Annotations["summary"]).NotTo(BeEmpty(), r.Alert)
			Expect(r.Expr).NotTo(BeEmpty(), r.Alert)
			Expect(strings.Count(r.Expr, "(")).To(Equal(strings.Count(r.Expr, ")")), r.Alert)
		}
		Expect(names).To(ConsistOf(alertNames))
		// A ServiceMonitor names the job after the metrics Service.
		Expect(out).To(ContainSubstring(`up{job="tso-metrics", namespace="tso-system"} == 1`))

		Expect(helm("template", "tso", chartDir, "--set", "metrics.serviceMonitor.enabled=true",
			"--show-only", "templates/servicemonitor.yaml")).To(And(
			ContainSubstring("honorLabels: true"), ContainSubstring("scheme: https"),
			ContainSubstring("port: https-metrics")),
			"the per-session namespace label must survive the scrape, over the secure endpoint")
	})

	It("ships an example MCP server that mounts the whole output Secret and that the API server accepts", func() {
		path := filepath.Join(repoRoot, "examples", "mcp-server-deployment.yaml")
		data, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		ns := newNamespace("example")
		out, err := kubectl(string(data), "apply", "--dry-run=server", "-n", ns, "-f", "-")
		Expect(err).NotTo(HaveOccurred(), out)

		dep := exampleDeployment()
		pod := dep.Spec.Template.Spec
		Expect(pod.Volumes).To(HaveLen(1))
		Expect(pod.Volumes[0].Secret).NotTo(BeNil(), "the token comes from the session's output Secret")
		Expect(pod.Volumes[0].Secret.SecretName).To(Equal("alice-tidal-token"))
		mount := pod.Containers[0].VolumeMounts[0]
		Expect(mount.Name).To(Equal(pod.Volumes[0].Name))
		Expect(mount.SubPath).To(BeEmpty(), "a subPath mount never receives a refreshed token")
		Expect(mount.ReadOnly).To(BeTrue())
		Expect(exampleSessionFile(dep)).To(HavePrefix(mount.MountPath + "/"))
	})
})

// installMonitoringCRDs makes the API server serve ServiceMonitor and PrometheusRule.
func installMonitoringCRDs() {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join("testdata", "monitoring-crds.yaml"))
	Expect(err).NotTo(HaveOccurred())
	out, err := kubectl(string(data), "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred(), out)
	out, err = kubectl("", "wait", "--for=condition=Established", "--timeout=30s",
		"crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")
	Expect(err).NotTo(HaveOccurred(), out)
}

func exampleDeployment() *appsv1.Deployment {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "examples", "mcp-server-deployment.yaml"))
	Expect(err).NotTo(HaveOccurred())
	dep := &appsv1.Deployment{}
	Expect(yaml.UnmarshalStrict(data, dep)).To(Succeed())
	return dep
}

// exampleSessionFile is the path the example server reads tidalapi's session file from.
func exampleSessionFile(dep *appsv1.Deployment) string {
	GinkgoHelper()
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "TIDAL_SESSION_FILE" {
			return e.Value
		}
	}
	Fail("the example sets no TIDAL_SESSION_FILE")
	return ""
}
