// Package healthapi runs the operator's health endpoint against a real kube-apiserver
// (envtest, binaries built by hack/tools.sh): the API server issues the callers'
// ServiceAccount tokens, answers the endpoint's TokenReviews and SubjectAccessReviews with
// RBAC, and the endpoint itself runs under a ServiceAccount bound to the operator's generated
// ClusterRole, so a rule missing from config/rbac/role.yaml fails here.
package healthapi

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	healthendpoint "github.com/tidal-mcp/tidal-session-operator/internal/healthapi"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
	"github.com/tidal-mcp/tidal-session-operator/test/support/sink"
)

// operatorNamespace holds the ServiceAccount the endpoint runs as.
const operatorNamespace = "tso-system"

var (
	// k8s is the control plane's admin.
	k8s client.Client
	// apiServer reads the API server's own metrics, as its admin.
	apiServer *kubernetes.Clientset
	// endpoint is the health endpoint's base URL, on loopback.
	endpoint string
	// logs is everything the operator's manager logged, for the leak search.
	logs sink.Buffer
	// minted are the ServiceAccount tokens the suite obtained; no output may contain one.
	minted = support.NewSecrets()
	// answers are the bodies and headers of every answer the endpoint gave.
	answers sink.Buffer
	// specFailed is set by a failed spec, whose successors (Ordered) do not run.
	specFailed bool
)

var _ = AfterEach(func() { specFailed = specFailed || CurrentSpecReport().Failed() })

func TestHealthAPI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Health endpoint suite")
}

var _ = BeforeSuite(func() {
	// V(4): denials are logged at V(1), and every level must be free of tokens.
	logf.SetLogger(zap.New(zap.WriteTo(&logs), zap.Level(zapcore.Level(-4))))

	// envtest already runs the API server with RBAC authorization and service-account
	// signing keys, which TokenRequest, TokenReview and SubjectAccessReview need; the spec
	// "issues and reviews ServiceAccount tokens" proves it rather than assuming it.
	cp := support.StartControlPlane(support.ControlPlaneOptions{})
	cfg := cp.Config
	k8s = cp.Client
	var err error
	apiServer, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())

	By("running the endpoint as a ServiceAccount bound to the generated ClusterRole")
	createNamespace(operatorNamespace)
	bindGeneratedRole(operatorNamespace, "operator")
	operatorCfg := &rest.Config{
		Host:            cfg.Host,
		TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData},
		BearerToken:     mintToken(operatorNamespace, "operator"),
	}
	mgr, err := ctrl.NewManager(operatorCfg, ctrl.Options{
		Scheme:                 k8s.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Leader election stays on: the endpoint must answer on a replica that is not (yet)
		// the leader, and this manager never becomes one, as the Lease rules are not granted.
		LeaderElection:          true,
		LeaderElectionID:        "health-api-suite",
		LeaderElectionNamespace: operatorNamespace,
	})
	Expect(err).NotTo(HaveOccurred())
	addr := freeLoopbackAddr()
	Expect(healthendpoint.Setup(mgr, healthendpoint.Options{BindAddress: addr})).To(Succeed())
	endpoint = "https://" + addr

	DeferCleanup(support.RunManager(mgr))
})

var _ = AfterSuite(func() {
	if k8s == nil {
		return
	}
	By("searching the operator's log and every answer for the tokens the suite minted")
	Expect(minted.Len()).NotTo(BeZero())
	if !specFailed {
		// The search covers real output: the denials the specs provoked are in the log.
		Expect(logs.String()).To(ContainSubstring("Health endpoint caller forbidden"))
		Expect(logs.String()).To(ContainSubstring("Health endpoint caller not authenticated"))
		Expect(answers.String()).To(ContainSubstring(`"phase":"Active"`))
	}
	minted.ExpectNoneIn(logs.String(), "the operator's log")
	minted.ExpectNoneIn(answers.String(), "an answer")
})

func freeLoopbackAddr() string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().String()
}

func createNamespace(name string) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
}

func createServiceAccount(ns, name string) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(Succeed())
}

// mintToken creates the ServiceAccount if needed and asks the API server for a token of it,
// as the kubelet does for a pod's projected token.
func mintToken(ns, name string) string {
	GinkgoHelper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(sa), sa); err != nil {
		createServiceAccount(ns, name)
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sa), sa)).To(Succeed())
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
	Expect(k8s.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	Expect(tr.Status.Token).NotTo(BeEmpty())
	minted.Remember(tr.Status.Token)
	return tr.Status.Token
}

// bindGeneratedRole creates config/rbac/role.yaml's ClusterRole under a name of its own and
// binds it to the ServiceAccount ns/name.
func bindGeneratedRole(ns, name string) {
	GinkgoHelper()
	ctx := context.Background()
	data, err := os.ReadFile(support.RepoPath("config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	Expect(yaml.Unmarshal(data, role)).To(Succeed())
	role.Name = "health-api-suite-manager"
	Expect(k8s.Create(ctx, role)).To(Succeed())
	createServiceAccount(ns, name)
	Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	})).To(Succeed())
}

// httpClient trusts the endpoint's self-signed certificate: the suite talks to its own
// server on loopback. The certificate itself is checked by the package's unit tests.
var httpClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, loopback
	},
}
