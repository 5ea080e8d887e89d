package healthapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/fingerprint"
	healthendpoint "github.com/tidal-mcp/tidal-session-operator/internal/healthapi"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
)

// callToken GETs the session's token route. Refusals and other answers are recorded for the
// leak search; a 200, which holds an access token by design, is not, and is decoded instead.
func callToken(token, ns, name string) (answer, healthendpoint.TokenAnswer, http.Header) {
	GinkgoHelper()
	path := "/sessions/" + ns + "/" + name + "/token"
	a, header := get(token, path)
	var served healthendpoint.TokenAnswer
	if a.code == http.StatusOK {
		Expect(json.Unmarshal([]byte(a.body), &served)).To(Succeed())
		minted.ExpectNoneIn(a.body, "a token answer")
		return a, served, header
	}
	record(a, header)
	return a, served, header
}

// tokenCodeOf is callToken's status code, for Eventually.
func tokenCodeOf(token, ns, name string) func() int {
	return func() int {
		a, _, _ := callToken(token, ns, name)
		return a.code
	}
}

func refusals() float64 {
	return testutil.ToFloat64(metrics.SecurityEvents.WithLabelValues(metrics.SecurityTokenRequestRefused))
}

// refusalEvents are the notes of the TokenRequestRefused Events on the session ns/name.
func refusalEvents(ns, name string) func() []string {
	return func() []string {
		list := &eventsv1.EventList{}
		Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range list.Items {
			if e.Reason == sessionsv1alpha1.ReasonTokenRequestRefused && e.Regarding.Name == name &&
				e.Regarding.Kind == "TidalSession" && e.Type == corev1.EventTypeWarning {
				notes = append(notes, e.Note)
			}
		}
		return notes
	}
}

// createWorkload creates a Deployment, a ReplicaSet it controls and the given pods of it, as
// the Deployment and ReplicaSet controllers would; none runs here, and no kubelet, so the pods
// stay Pending with no node, which is all a pod-bound token needs.
func createWorkload(ns, name string, pods map[string]string) map[string]*corev1.Pod {
	GinkgoHelper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mcp", Image: "mcp:1"}}}}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template}}
	Expect(k8s.Create(ctx, deploy)).To(Succeed())
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-5d4f8b",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name,
			UID: deploy.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template}}
	Expect(k8s.Create(ctx, rs)).To(Succeed())

	out := map[string]*corev1.Pod{}
	for pod, sa := range pods {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name,
				UID: rs.UID, Controller: ptr.To(true)}}}, Spec: *template.Spec.DeepCopy()}
		p.Spec.ServiceAccountName = sa
		Expect(k8s.Create(ctx, p)).To(Succeed())
		out[pod] = p
	}
	return out
}

// createBoundSession creates a TidalSession with spec.binding whose status binds the
// Deployment's pods under the ServiceAccount sa, and its output Secret, labelled as the
// operator's and holding accessToken, as the reconciler would; none runs here.
func createBoundSession(ns, name, deployment, sa, accessToken string) *sessionsv1alpha1.TidalSession {
	GinkgoHelper()
	ctx := context.Background()
	s := newSession(ns, name)
	s.Spec.Binding = &sessionsv1alpha1.BindingPolicy{Mode: sessionsv1alpha1.BindingObserve}
	Expect(k8s.Create(ctx, s)).To(Succeed())
	now := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	id := fingerprint.Identity{Namespace: ns, ServiceAccount: sa,
		Workload: fingerprint.Workload{Group: "apps", Kind: "Deployment", Name: deployment}}
	s.Status = sessionsv1alpha1.TidalSessionStatus{Phase: sessionsv1alpha1.PhaseActive, Binding: &sessionsv1alpha1.BindingStatus{
		Bound: []sessionsv1alpha1.BoundConsumer{{Fingerprint: id.Fingerprint(), ServiceAccount: sa, FirstSeen: now,
			Workload: sessionsv1alpha1.WorkloadReference{APIGroup: "apps", Kind: "Deployment", Name: deployment}}},
	}}
	Expect(k8s.Status().Update(ctx, s)).To(Succeed())

	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s.Spec.OutputSecret.Name,
			Labels: map[string]string{sessionsv1alpha1.ManagedByLabel: sessionsv1alpha1.ManagedByValue,
				sessionsv1alpha1.SessionLabel: name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: sessionsv1alpha1.GroupVersion.String(),
				Kind: "TidalSession", Name: name, UID: s.UID, Controller: ptr.To(true)}}},
		Data: map[string][]byte{
			sessionsv1alpha1.KeyAccessToken: []byte(accessTokens.Remember(accessToken)),
			sessionsv1alpha1.KeyTokenType:   []byte("Bearer"),
			sessionsv1alpha1.KeyExpiresAt:   []byte(now.Add(time.Hour).Format(time.RFC3339)),
			sessionsv1alpha1.KeyTokenStatus: []byte(sessionsv1alpha1.TokenStatusValid),
		},
	})).To(Succeed())
	return s
}

// podToken asks the API server for a token of the pod's ServiceAccount, for audiences, bound
// to the pod, as the kubelet projects one into it.
func podToken(pod *corev1.Pod, audiences ...string) string {
	GinkgoHelper()
	return requestToken(pod.Namespace, pod.Spec.ServiceAccountName, authenticationv1.TokenRequestSpec{
		Audiences: audiences,
		BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name,
			UID: pod.UID},
	})
}

// resign signs the claims of a token the API server issued, with exp moved to expires, with
// the API server's own ServiceAccount signing key: the result differs from an issued token
// only in its times. TokenRequest refuses lifetimes under 10 minutes, so an expired token
// cannot be had otherwise within a test.
func resign(issued string, expires time.Time) string {
	GinkgoHelper()
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(issued, claims)
	Expect(err).NotTo(HaveOccurred())
	Expect(parsed.Header["alg"]).To(Equal("ES256"), "envtest signs with an ECDSA P-256 key")

	keyPEM, err := os.ReadFile(saSigningKey)
	Expect(err).NotTo(HaveOccurred(), "the API server's ServiceAccount signing key")
	block, _ := pem.Decode(keyPEM)
	Expect(block).NotTo(BeNil())
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	Expect(err).NotTo(HaveOccurred())
	Expect(key).To(BeAssignableToTypeOf(&ecdsa.PrivateKey{}))

	changed := maps.Clone(claims)
	issuedAt := time.Now().Add(-time.Second)
	if expires.Before(issuedAt) {
		issuedAt = expires.Add(-10 * time.Minute)
	}
	changed["iat"], changed["nbf"], changed["exp"] = issuedAt.Unix(), issuedAt.Unix(), expires.Unix()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, changed)
	tok.Header["kid"] = parsed.Header["kid"]
	signed, err := tok.SignedString(key)
	Expect(err).NotTo(HaveOccurred())
	return minted.Remember(signed)
}

var _ = Describe("The token endpoint", Ordered, func() {
	const (
		team    = "team-t"
		session = "tally"
		canary  = "CANARY-TOKEN-ENDPOINT-ACCESS-6f2d91c4"
	)
	var (
		pods                            map[string]*corev1.Pod
		bound, intruder, otherAudience  string
		unboundToken                    string
		refusedBefore                   float64
		boundPod, intruderPod, deployed string
	)

	BeforeAll(func() {
		createNamespace(team)
		deployed, boundPod, intruderPod = "mcp", "mcp-5d4f8b-x1", "mcp-5d4f8b-q9"
		pods = createWorkload(team, deployed, map[string]string{boundPod: "mcp", intruderPod: "intruder"})
		createBoundSession(team, session, deployed, "mcp", canary)

		bound = podToken(pods[boundPod], tokenAudience)
		intruder = podToken(pods[intruderPod], tokenAudience)
		otherAudience = podToken(pods[boundPod], "some-other-service")
		unboundToken = requestToken(team, "mcp", authenticationv1.TokenRequestSpec{Audiences: []string{tokenAudience}})
	})

	It("serves the access token to a pod of the bound workload", func() {
		// The cache starts watching Pods and Secrets on the first request.
		Eventually(tokenCodeOf(bound, team, session)).WithTimeout(10 * time.Second).Should(Equal(http.StatusOK))
		refusedBefore = refusals()
		a, served, header := callToken(bound, team, session)
		Expect(a.code).To(Equal(http.StatusOK))
		Expect(served.AccessToken).To(Equal(canary))
		Expect(served.TokenType).To(Equal("Bearer"))
		expires, err := time.Parse(time.RFC3339, served.ExpiresAt)
		Expect(err).NotTo(HaveOccurred())
		Expect(time.Until(expires)).To(BeNumerically("~", time.Hour, time.Minute))
		Expect(header.Get("Cache-Control")).To(Equal("no-store"))
		Expect(refusals()).To(Equal(refusedBefore), "serving is no security event")
	})

	It("refuses a pod of the same workload under another ServiceAccount, with an Event and the metric", func() {
		before := refusals()
		a, _, _ := callToken(intruder, team, session)
		Expect(a.code).To(Equal(http.StatusForbidden))
		Expect(a.problem.Message).To(Equal(`forbidden: system:serviceaccount:team-t:intruder may not get the access ` +
			`token of tidalsessions.sessions.tidal-mcp.dev "tally" in namespace "team-t"`))
		Expect(refusals() - before).To(Equal(1.0))
		Eventually(refusalEvents(team, session)).WithTimeout(10 * time.Second).Should(ContainElement(SatisfyAll(
			ContainSubstring("system:serviceaccount:team-t:intruder (pod team-t/"+intruderPod+", fingerprint v1:"),
			ContainSubstring("ServiceAccount intruder"), ContainSubstring("is not bound to the session"))))
	})

	It("refuses the bound pod's token when it was issued for another audience", func() {
		before := refusals()
		a, _, header := callToken(otherAudience, team, session)
		Expect(a.code).To(Equal(http.StatusUnauthorized))
		Expect(a.problem.Message).To(ContainSubstring(`for audience "tidal-session-operator"`))
		Expect(header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
		Expect(refusals() - before).To(Equal(1.0))
		// Counted and logged, but no Event: a caller the API server does not vouch for could
		// otherwise fill any session's Events.
		Consistently(refusalEvents(team, session)).WithTimeout(2 * time.Second).ShouldNot(
			ContainElement(ContainSubstring("the token was not accepted")))
	})

	It("refuses a token of the bound ServiceAccount that is not bound to a pod", func() {
		a, _, _ := callToken(unboundToken, team, session)
		Expect(a.code).To(Equal(http.StatusForbidden))
		Expect(a.problem.Message).To(ContainSubstring("not bound to a pod"))
	})

	It("refuses an expired token that is otherwise the bound pod's, and accepts it unexpired", func() {
		expired := resign(bound, time.Now().Add(-time.Minute))
		a, _, _ := callToken(expired, team, session)
		Expect(a.code).To(Equal(http.StatusUnauthorized))

		By("accepting the same claims, signed the same way, with an expiry ahead")
		current := resign(bound, time.Now().Add(10*time.Minute))
		a, served, _ := callToken(current, team, session)
		Expect(a.code).To(Equal(http.StatusOK), "the re-signed token must be valid but for its expiry: %s", a.body)
		Expect(served.AccessToken).To(Equal(canary))
	})

	It("refuses the bound pod while the session is quarantined", func() {
		ctx := context.Background()
		s := &sessionsv1alpha1.TidalSession{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: team, Name: session}, s)).To(Succeed())
		s.Status.Binding.QuarantinedAt = ptr.To(metav1.NewTime(time.Now().UTC().Truncate(time.Second)))
		Expect(k8s.Status().Update(ctx, s)).To(Succeed())
		Eventually(tokenCodeOf(bound, team, session)).WithTimeout(10 * time.Second).Should(Equal(http.StatusForbidden))
		Eventually(refusalEvents(team, session)).WithTimeout(10 * time.Second).Should(ContainElement(SatisfyAll(
			ContainSubstring("(pod team-t/"+boundPod+", fingerprint v1:"), ContainSubstring("quarantined since"))))

		By("serving it again once a person lifted the quarantine")
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: team, Name: session}, s)).To(Succeed())
		s.Status.Binding.QuarantinedAt = nil
		Expect(k8s.Status().Update(ctx, s)).To(Succeed())
		Eventually(tokenCodeOf(bound, team, session)).WithTimeout(10 * time.Second).Should(Equal(http.StatusOK))
	})

	It("refuses a deleted pod's token", func() {
		Expect(k8s.Delete(context.Background(), pods[boundPod])).To(Succeed())
		deleted := time.Now()
		// The endpoint's live check refuses it at once; the API server's own review soon after.
		Eventually(tokenCodeOf(bound, team, session)).WithTimeout(10 * time.Second).
			Should(BeElementOf(http.StatusForbidden, http.StatusUnauthorized))
		AddReportEntry("deleted pod refused after", time.Since(deleted).Round(100*time.Millisecond).String())
	})

	It("names the pods in its Events and no token", func() {
		notes := refusalEvents(team, session)()
		Expect(notes).NotTo(BeEmpty())
		text := strings.Join(notes, "\n")
		Expect(text).To(ContainSubstring(intruderPod))
		minted.ExpectNoneIn(text, "a TokenRequestRefused Event")
		accessTokens.ExpectNoneIn(text, "a TokenRequestRefused Event")
	})
})
