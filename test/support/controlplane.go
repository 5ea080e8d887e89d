// Package support is what the Ginkgo suites under test/ share: a real control plane (envtest),
// the real kubectl and helm, ServiceAccount identities, the in-process TIDAL-compatible server
// and operator, and the leak search that every suite ends with. Each suite keeps its own
// clients, sessions and assertions.
//
// Every suite lives two levels below the repository's root (test/NAME), and go test runs it
// in its own directory, so paths here are relative to that. Helpers that start something
// register its stop with DeferCleanup, so they must be called from a setup node or a spec.
package support

import (
	"context"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// RepoPath joins elem to the repository's root, as seen from a suite's directory.
func RepoPath(elem ...string) string {
	return filepath.Join(append([]string{"..", ".."}, elem...)...)
}

// ControlPlane is a running kube-apiserver and etcd with an administrator's client.
type ControlPlane struct {
	Env    *envtest.Environment
	Config *rest.Config
	// Client knows client-go's types, the API's and those of ControlPlaneOptions.Schemes.
	Client client.Client
	// Kubeconfig is a file with the administrator's (system:masters) identity, for the
	// command-line tools.
	Kubeconfig string
}

// ControlPlaneOptions are what the suites start differently.
type ControlPlaneOptions struct {
	// WithoutCRDs leaves the CRDs out, for a suite that tests their installation (the chart).
	WithoutCRDs bool
	// Schemes add types to Client's scheme beyond client-go's and the API's.
	Schemes []func(*runtime.Scheme) error
}

// StartControlPlane starts etcd and kube-apiserver from KUBEBUILDER_ASSETS (by default the
// ones hack/tools.sh builds into bin/k8s), installs the CRDs, and writes the admin kubeconfig
// into a directory that lasts as long as the calling node's cleanup. The control plane stops
// in a DeferCleanup: registered in BeforeSuite, that runs after AfterSuite even when its leak
// search fails, so a failed run never leaves etcd and kube-apiserver behind.
func StartControlPlane(opts ControlPlaneOptions) *ControlPlane {
	GinkgoHelper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = RepoPath("bin", "k8s")
	}
	Expect(filepath.Join(assets, "kube-apiserver")).To(BeAnExistingFile(),
		"control-plane binaries missing: run hack/tools.sh (make test does)")
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if !opts.WithoutCRDs {
		env.CRDDirectoryPaths = []string{RepoPath("config", "crd", "bases")}
		env.ErrorIfCRDPathMissing = true
	}
	cfg, err := env.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })

	cp := &ControlPlane{Env: env, Config: cfg}
	cp.Kubeconfig = filepath.Join(GinkgoT().TempDir(), "admin.kubeconfig")
	Expect(os.WriteFile(cp.Kubeconfig, env.KubeConfig, 0o600)).To(Succeed())

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(sessionsv1alpha1.AddToScheme(scheme)).To(Succeed())
	for _, add := range opts.Schemes {
		Expect(add(scheme)).To(Succeed())
	}
	cp.Client, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return cp
}

// Kubectl is envtest's kubectl acting as the administrator.
func (cp *ControlPlane) Kubectl() Tool {
	return Tool{Path: cp.Env.ControlPlane.KubectlPath, Kubeconfig: cp.Kubeconfig}
}

// Helm is the helm hack/tools.sh builds (or $HELM) acting as the administrator.
func (cp *ControlPlane) Helm() Tool {
	GinkgoHelper()
	path := os.Getenv("HELM")
	if path == "" {
		path = RepoPath("bin", "helm")
	}
	Expect(path).To(BeAnExistingFile(), "helm missing: run hack/tools.sh helm (make test does)")
	return Tool{Path: path, Kubeconfig: cp.Kubeconfig}
}

// ServiceAccountKubeconfig asks the API server for a token of the ServiceAccount ns/name that
// lasts lifetime (the TokenRequest API, as the kubelet does for a pod), remembers the token
// in secrets, and writes a kubeconfig that uses it into dir. It returns the file's path.
func (cp *ControlPlane) ServiceAccountKubeconfig(secrets *Secrets, ns, name string,
	lifetime time.Duration, dir string) string {
	GinkgoHelper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(int64(lifetime.Seconds())),
	}}
	Expect(cp.Client.SubResource("token").Create(context.Background(), sa, tr)).To(Succeed())
	Expect(tr.Status.Token).NotTo(BeEmpty())
	secrets.Remember(tr.Status.Token)

	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{
		Server:                   cp.Config.Host,
		CertificateAuthorityData: cp.Config.CAData,
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: name, Namespace: ns}
	kc.CurrentContext = name
	path := filepath.Join(dir, ns+"-"+name+".kubeconfig")
	Expect(clientcmd.WriteToFile(*kc, path)).To(Succeed())
	return path
}

// NewNamespace creates a namespace named prefix and a random suffix, so that specs never
// share one by accident, and returns its name.
func NewNamespace(c client.Client, prefix string) string {
	GinkgoHelper()
	ns := prefix + "-" + rand.String(6)
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	Expect(c.Create(context.Background(), obj)).To(Succeed())
	return ns
}

// GetSession reads the TidalSession ns/name, which must exist.
func GetSession(c client.Client, ns, name string) *sessionsv1alpha1.TidalSession {
	GinkgoHelper()
	s := &sessionsv1alpha1.TidalSession{}
	Expect(c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)).To(Succeed())
	return s
}
