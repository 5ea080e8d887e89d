package mcp

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// serviceAccount is the ServiceAccount docs/mcp.md defines.
const serviceAccount = "tidal-mcp"

// documentedRBAC returns the YAML block of docs/mcp.md that defines the ServiceAccount,
// Role and RoleBinding, so the suite tests what a person would apply.
func documentedRBAC() string {
	GinkgoHelper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "mcp.md"))
	Expect(err).NotTo(HaveOccurred())
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if strings.Contains(m[1], "kind: Role\n") && strings.Contains(m[1], "kind: RoleBinding\n") {
			return m[1]
		}
	}
	Fail("docs/mcp.md has no YAML block with the Role and RoleBinding")
	return ""
}

// serviceAccountKubeconfig applies the documented RBAC in ns with the real kubectl, asks for a
// token of its ServiceAccount (TokenRequest), and returns a kubeconfig that uses it.
func serviceAccountKubeconfig(ns string) string {
	GinkgoHelper()
	kubectl := controlPlane.Kubectl()
	kubectl.Record = GinkgoWriter
	out, err := kubectl.Run(documentedRBAC(), "-n", ns, "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred(), "kubectl apply: %s", out)
	dir := GinkgoT().TempDir()
	return controlPlane.ServiceAccountKubeconfig(secretValues, ns, serviceAccount, 10*time.Minute, dir)
}
