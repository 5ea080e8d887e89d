// Package healthapi runs the operator's health endpoint, token endpoint included, against a
// real kube-apiserver (envtest, binaries built by hack/tools.sh): the API server issues the
// callers' ServiceAccount tokens, pod-bound and audience-bound ones too, answers the
// endpoint's TokenReviews and SubjectAccessReviews with RBAC, and the endpoint itself runs
// under a ServiceAccount bound to the operator's generated ClusterRole, with the operator's
// cache, so a rule missing from config/rbac/role.yaml fails here.
package healthapi

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
	healthendpoint "github.com/tidal-mcp/tidal-session-operator/internal/healthapi"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
	"github.com/tidal-mcp/tidal-session-operator/test/support/sink"
)

const (
	// operatorNamespace holds the ServiceAccount the endpoint runs as.
	operatorNamespace = "tso-system"
	// tokenAudience is the audience the token endpoint requires, the chart's default.
	tokenAudience = "tidal-session-operator"
)

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
	// accessTokens are the sessions' access tokens, which only the token endpoint's 200
	// answers may contain.
	accessTokens = support.NewSecrets()
	// answers are the bodies and headers of every answer the endpoint gave, but the token
	// endpoint's 200s.
	answers sink.Buffer
	// saSigningKey is the file with the key the API server signs ServiceAccount tokens with.
	saSigningKey string
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
	// envtest generates the signing key into the API server's certificate directory, under
	// this name (controller-runtime's controlplane package); a token signed with it is one
	// the API server issued, as far as it can tell.
	saSigningKey = filepath.Join(cp.Env.ControlPlane.APIServer.CertDir, "sa-signer.key")
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
		Scheme: k8s.Scheme(),
		// The operator's cache: Pods stripped, only managed Secrets. The token endpoint reads
		// both from it.
		Cache:                  controller.CacheOptions(nil),
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
	Expect(healthendpoint.Setup(mgr, healthendpoint.Options{BindAddress: addr, TokenAudience: tokenAudience})).To(Succeed())
	endpoint = "https://" + addr

	DeferCleanup(support.RunManager(mgr))
})

var _ = AfterSuite(func() {
	if k8s == nil {
		return
	}
	By("searching the operator's log, every answer, the Events and status for the tokens the suite minted, " +
		"and all of them but the token endpoint's 200s for the sessions' access tokens")
	Expect(minted.Len()).NotTo(BeZero())
	Expect(accessTokens.Len()).NotTo(BeZero())
	eventsAndStatus, events := support.EventsAndStatus(context.Background(), k8s)
	if !specFailed {
		// The search covers real output: the denials the specs provoked are in the log.
		Expect(logs.String()).To(ContainSubstring("Health endpoint caller forbidden"))
		Expect(logs.String()).To(ContainSubstring("Health endpoint caller not authenticated"))
		Expect(logs.String()).To(ContainSubstring("Token request refused"))
		Expect(answers.String()).To(ContainSubstring(`"phase":"Active"`))
		Expect(answers.String()).To(ContainSubstring(`"code":403`))
		Expect(events).NotTo(BeZero())
	}
	for where, text := range map[string]string{"the operator's log": logs.String(), "an answer": answers.String(),
		"an Event or a status": eventsAndStatus} {
		minted.ExpectNoneIn(text, where)
		accessTokens.ExpectNoneIn(text, where)
	}
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
// for the API server's own audience and bound to nothing.
func mintToken(ns, name string) string {
	GinkgoHelper()
	return requestToken(ns, name, authenticationv1.TokenRequestSpec{})
}

// requestToken creates the ServiceAccount if needed and asks the API server for a token of it
// as spec says (audiences, a bound object), lasting 600 s, the shortest the API server issues,
// as the kubelet does for a pod's projected token.
func requestToken(ns, name string, spec authenticationv1.TokenRequestSpec) string {
	GinkgoHelper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(sa), sa); err != nil {
		createServiceAccount(ns, name)
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sa), sa)).To(Succeed())
	}
	spec.ExpirationSeconds = ptr.To[int64](600)
	tr := &authenticationv1.TokenRequest{Spec: spec}
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
