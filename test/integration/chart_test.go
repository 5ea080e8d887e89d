package integration

import (
	"context"
	"os"
	"path/filepath"
	"sort"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

var _ = Describe("The Helm chart", func() {
	ctx := context.Background()
	chart := filepath.Join("..", "..", "charts", "tidal-session-operator")

	It("lints, installs a hardened operator with the generated RBAC, and uninstalls keeping the CRD", func() {
		out, err := helm("lint", chart)
		Expect(err).NotTo(HaveOccurred(), out)

		// The server validates every object of the chart before anything is created.
		ns := newNamespace()
		manifest, err := helm("template", "tso", chart, "--namespace", ns)
		Expect(err).NotTo(HaveOccurred())
		out, err = kubectl(manifest, "apply", "--dry-run=server", "-n", ns, "-f", "-")
		Expect(err).NotTo(HaveOccurred(), out)

		out, err = helm("install", "tso", chart, "--namespace", ns, "--wait=false")
		Expect(err).NotTo(HaveOccurred(), out)

		By("running the operator as non-root with a read-only root file system and no capabilities")
		dep := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "tso"}, dep)).To(Succeed())
		pod := dep.Spec.Template.Spec
		Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
		Expect(string(pod.SecurityContext.SeccompProfile.Type)).To(Equal("RuntimeDefault"))
		Expect(pod.ServiceAccountName).To(Equal("tso"))
		c := pod.Containers[0].SecurityContext
		Expect(c.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
		Expect(c.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
		Expect(c.Capabilities.Drop).To(ConsistOf(BeEquivalentTo("ALL")))
		Expect(pod.Containers[0].Args).To(ContainElements("--leader-elect=true", "--leader-election-namespace="+ns))

		By("granting exactly the rules generated from the code's RBAC markers")
		generated, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var want rbacv1.ClusterRole
		Expect(yaml.Unmarshal(generated, &want)).To(Succeed())
		got := &rbacv1.ClusterRole{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: "tso-manager"}, got)).To(Succeed())
		Expect(normalizeRules(got.Rules)).To(Equal(normalizeRules(want.Rules)))

		out, err = helm("uninstall", "tso", "--namespace", ns)
		Expect(err).NotTo(HaveOccurred(), out)
		_, err = kubectl("", "get", "crd", "tidalsessions.sessions.tidal-mcp.dev")
		Expect(err).NotTo(HaveOccurred(), "the CRD, and with it every session, survives an uninstall")
		Expect(k8s.Get(ctx, types.NamespacedName{Name: "tso-manager"}, &rbacv1.ClusterRole{})).NotTo(Succeed(),
			"the chart's own objects are removed")
	})
})

// normalizeRules sorts verbs and rules so that two Roles granting the same are equal.
func normalizeRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		r = *r.DeepCopy()
		sort.Strings(r.Verbs)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].APIGroups[0]+out[i].Resources[0] < out[j].APIGroups[0]+out[j].Resources[0]
	})
	return out
}
