package mcp

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
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
	ctx := context.Background()
	apply := exec.Command(testEnv.ControlPlane.KubectlPath, "--kubeconfig", adminKubeconfig, "-n", ns, "apply", "-f", "-")
	apply.Stdin = strings.NewReader(documentedRBAC())
	out, err := apply.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "kubectl apply: %s", out)
	GinkgoWriter.Printf("%s", out)

	clientset, err := kubernetes.NewForConfig(restCfg)
	Expect(err).NotTo(HaveOccurred())
	expiry := int64(600)
	tr, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}},
		metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(tr.Status.Token).NotTo(BeEmpty())
	rememberSecret(tr.Status.Token)

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: restCfg.Host, CertificateAuthorityData: restCfg.CAData}
	cfg.AuthInfos[serviceAccount] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts[serviceAccount] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: serviceAccount, Namespace: ns}
	cfg.CurrentContext = serviceAccount
	path := filepath.Join(GinkgoT().TempDir(), "sa.kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}
