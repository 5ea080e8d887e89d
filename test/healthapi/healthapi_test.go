package healthapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	healthendpoint "github.com/tidal-mcp/tidal-session-operator/internal/healthapi"
)

// answer is one response of the endpoint.
type answer struct {
	code    int
	body    string
	health  healthendpoint.SessionHealth
	problem healthendpoint.Problem
}

// call GETs path with the token (none when empty) and records the answer for the leak search.
func call(token, path string) answer {
	GinkgoHelper()
	a, header := get(token, path)
	record(a, header)
	return a
}

// record adds an answer to those the leak search reads.
func record(a answer, header http.Header) {
	fmt.Fprintf(&answers, "%d %v %s\n", a.code, header, a.body)
}

// get GETs path with the token (none when empty) and returns the answer and its headers.
func get(token, path string) (answer, http.Header) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, endpoint+path, nil)
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())

	a := answer{code: resp.StatusCode, body: string(body)}
	Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
	Expect(json.Valid(body)).To(BeTrue(), "body: %s", body)
	// Both decodes succeed on any JSON object; the spec reads the one it expects.
	_ = json.Unmarshal(body, &a.health)
	_ = json.Unmarshal(body, &a.problem)
	return a, resp.Header
}

// codeOf is call's status code, for Eventually.
func codeOf(token, path string) func() int {
	return func() int { return call(token, path).code }
}

// newSession is a TidalSession ns/name whose output Secret is <name>-token.
func newSession(ns, name string) *sessionsv1alpha1.TidalSession {
	return &sessionsv1alpha1.TidalSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sessionsv1alpha1.TidalSessionSpec{
			CredentialsSecretRef: sessionsv1alpha1.CredentialsSecretReference{Name: name + "-credentials"},
			OutputSecret:         sessionsv1alpha1.OutputSecretSpec{Name: name + "-token"},
		},
	}
}

// createSession creates a TidalSession and writes its status through the status
// subresource, as the reconciler would; no reconciler runs in this suite.
func createSession(ns, name string, ready bool) {
	GinkgoHelper()
	ctx := context.Background()
	s := newSession(ns, name)
	Expect(k8s.Create(ctx, s)).To(Succeed())

	now := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	expires := metav1.NewTime(now.Add(time.Hour))
	next := metav1.NewTime(now.Add(45 * time.Minute))
	s.Status = sessionsv1alpha1.TidalSessionStatus{
		Phase:                sessionsv1alpha1.PhaseActive,
		ObservedGeneration:   s.Generation,
		AccessTokenExpiresAt: &expires,
		LastRefreshTime:      &now,
		NextRefreshTime:      &next,
		Health: &sessionsv1alpha1.SessionHealth{
			Result: sessionsv1alpha1.HealthHealthy, LastCheckTime: &now, LastHealthyTime: &now,
		},
		Conditions: []metav1.Condition{{
			Type: sessionsv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: sessionsv1alpha1.ReasonRefreshed,
			Message: "access token refreshed", LastTransitionTime: now, ObservedGeneration: s.Generation,
		}},
	}
	if !ready {
		s.Status.Phase = sessionsv1alpha1.PhaseDegraded
		s.Status.Conditions[0].Status = metav1.ConditionFalse
		s.Status.Conditions[0].Reason = sessionsv1alpha1.ReasonRefreshRetrying
		s.Status.Conditions[0].Message = "refresh failed 2 times; next attempt soon"
	}
	Expect(k8s.Status().Update(ctx, s)).To(Succeed())
}

// grantGet creates a Role allowing get on tidalsessions in ns (only the named ones, if any)
// and binds it to the ServiceAccount saNS/sa.
func grantGet(ns, saNS, sa string, names ...string) *rbacv1.RoleBinding {
	GinkgoHelper()
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "get-sessions-" + saNS + "-" + sa},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{sessionsv1alpha1.GroupVersion.Group}, Resources: []string{"tidalsessions"},
			Verbs: []string{"get"}, ResourceNames: names,
		}},
	}
	Expect(k8s.Create(ctx, role)).To(Succeed())
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNS, Name: sa}},
	}
	Expect(k8s.Create(ctx, binding)).To(Succeed())
	return binding
}

var _ = Describe("The health endpoint", Ordered, func() {
	const (
		team  = "team-a"
		other = "team-b"
	)
	var reader, outsider, pinned, elsewhere string

	BeforeAll(func() {
		createNamespace(team)
		createNamespace(other)
		createSession(team, "alice", true)
		createSession(team, "bob", false)
		createSession(other, "carol", true)

		reader = mintToken(team, "mcp-reader")
		grantGet(team, team, "mcp-reader")
		outsider = mintToken(team, "mcp-outsider")
		pinned = mintToken(team, "mcp-pinned")
		grantGet(team, team, "mcp-pinned", "alice")
		elsewhere = mintToken(other, "mcp-elsewhere")
		grantGet(other, other, "mcp-elsewhere")
	})

	It("runs against an API server that issues and reviews ServiceAccount tokens", func() {
		ctx := context.Background()
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: reader}}
		Expect(k8s.Create(ctx, review)).To(Succeed())
		Expect(review.Status.Authenticated).To(BeTrue(), "TokenReview: %s", review.Status.Error)
		Expect(review.Status.User.Username).To(Equal("system:serviceaccount:" + team + ":mcp-reader"))

		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: review.Status.User.Username, Groups: review.Status.User.Groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: sessionsv1alpha1.GroupVersion.Group,
				Resource: "tidalsessions", Namespace: team, Name: "alice", Verb: "get"},
		}}
		Expect(k8s.Create(ctx, sar)).To(Succeed())
		Expect(sar.Status.Allowed).To(BeTrue(), "RBAC answers SubjectAccessReviews: %s", sar.Status.Reason)
	})

	It("serves the session's health to a caller allowed to get it", func() {
		// The manager's cache may not have seen the status yet.
		Eventually(func() sessionsv1alpha1.Phase { return call(reader, "/sessions/team-a/alice").health.Phase }).
			WithTimeout(10 * time.Second).Should(Equal(sessionsv1alpha1.PhaseActive))
		a := call(reader, "/sessions/team-a/alice")
		Expect(a.code).To(Equal(http.StatusOK))
		h := a.health
		Expect(h.Namespace).To(Equal(team))
		Expect(h.Name).To(Equal("alice"))
		Expect(h.Ready).To(BeTrue())
		Expect(h.Conditions).To(ConsistOf(SatisfyAll(
			HaveField("Type", sessionsv1alpha1.ConditionReady), HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", sessionsv1alpha1.ReasonRefreshed), HaveField("Message", "access token refreshed"))))
		Expect(h.AccessTokenExpiresAt).NotTo(BeNil())
		Expect(h.AccessTokenExpiresAt.Sub(h.LastRefreshTime.Time)).To(Equal(time.Hour))
		Expect(h.NextRefreshTime).NotTo(BeNil())
		Expect(h.Health).NotTo(BeNil())
		Expect(h.Health.Result).To(Equal(sessionsv1alpha1.HealthHealthy))
		Expect(h.Health.LastCheckTime).NotTo(BeNil())
		Expect(h.Health.LastHealthyTime).NotTo(BeNil())
		Expect(a.body).NotTo(ContainSubstring("alice-token"), "the output Secret is not the endpoint's business")

		Expect(call(reader, "/sessions/team-a/alice?ready=1").code).To(Equal(http.StatusOK))

		By("answering on a replica that is not the leader")
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: operatorNamespace, Name: "health-api-suite"},
			&coordinationv1.Lease{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the suite's manager holds a Lease: %v", err)
	})

	It("answers a probe with 503 while the session is not Ready, and still says why", func() {
		Eventually(codeOf(reader, "/sessions/team-a/bob?ready=1")).WithTimeout(10 * time.Second).
			Should(Equal(http.StatusServiceUnavailable))
		a := call(reader, "/sessions/team-a/bob?ready=1")
		Expect(a.health.Phase).To(Equal(sessionsv1alpha1.PhaseDegraded))
		Expect(a.health.Conditions).To(ConsistOf(HaveField("Reason", sessionsv1alpha1.ReasonRefreshRetrying)))
		Expect(call(reader, "/sessions/team-a/bob").code).To(Equal(http.StatusOK), "without ?ready it is a plain read")
	})

	It("answers 404 for an unknown session only to a caller allowed to get it", func() {
		a := call(reader, "/sessions/team-a/nobody")
		Expect(a.code).To(Equal(http.StatusNotFound))
		Expect(a.problem.Message).To(ContainSubstring("not found"))

		existing, unknown := call(outsider, "/sessions/team-a/alice"), call(outsider, "/sessions/team-a/nobody")
		Expect(existing.code).To(Equal(http.StatusForbidden))
		Expect(unknown.code).To(Equal(http.StatusForbidden), "a forbidden caller cannot tell whether a session exists")
		Expect(unknown.problem.Message).NotTo(ContainSubstring("not found"))
	})

	It("forbids a ServiceAccount without RBAC for the session, naming nothing secret", func() {
		a := call(outsider, "/sessions/team-a/alice")
		Expect(a.code).To(Equal(http.StatusForbidden))
		Expect(a.problem.Message).To(Equal(
			`forbidden: system:serviceaccount:team-a:mcp-outsider may not get tidalsessions.sessions.tidal-mcp.dev "alice" in namespace "team-a"`))
		Expect(a.body).NotTo(ContainSubstring("Active"))
	})

	It("checks the session's name and namespace, not only the resource", func() {
		Expect(call(pinned, "/sessions/team-a/alice").code).To(Equal(http.StatusOK))
		Expect(call(pinned, "/sessions/team-a/bob").code).To(Equal(http.StatusForbidden))
		Expect(call(elsewhere, "/sessions/team-b/carol").code).To(Equal(http.StatusOK))
		Expect(call(elsewhere, "/sessions/team-a/alice").code).To(Equal(http.StatusForbidden))
		Expect(call(reader, "/sessions/team-b/carol").code).To(Equal(http.StatusForbidden))
	})

	It("rejects anonymous callers and tokens the API server does not accept", func() {
		a := call("", "/sessions/team-a/alice")
		Expect(a.code).To(Equal(http.StatusUnauthorized))
		Expect(a.body).NotTo(ContainSubstring("Active"))

		for _, tok := range []string{
			"not-a-token",
			// A well-formed JWT signed by nobody the API server trusts.
			"eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGVhbS1hOm1jcC1yZWFkZXIifQ.c2lnbmF0dXJl",
		} {
			Expect(call(tok, "/sessions/team-a/alice").code).To(Equal(http.StatusUnauthorized))
		}

		By("rejecting a genuine token once its ServiceAccount is deleted")
		gone := mintToken(team, "mcp-deleted")
		grantGet(team, team, "mcp-deleted")
		Expect(k8s.Delete(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Namespace: team, Name: "mcp-deleted"}})).To(Succeed())
		Eventually(codeOf(gone, "/sessions/team-a/alice")).WithTimeout(5 * time.Second).
			Should(Equal(http.StatusUnauthorized))
	})

	It("stops answering a caller whose RoleBinding is deleted once the cached decision expires", func() {
		late := mintToken(team, "mcp-revoked")
		binding := grantGet(team, team, "mcp-revoked")
		Eventually(codeOf(late, "/sessions/team-a/alice")).WithTimeout(5 * time.Second).Should(Equal(http.StatusOK))

		Expect(k8s.Delete(context.Background(), binding)).To(Succeed())
		revoked := time.Now()
		Eventually(codeOf(late, "/sessions/team-a/alice")).WithTimeout(20 * time.Second).
			WithPolling(500 * time.Millisecond).Should(Equal(http.StatusForbidden))
		// The decision cache keeps answers 10 s; RBAC itself takes a moment to notice.
		Expect(time.Since(revoked)).To(BeNumerically("<", 15*time.Second))
		AddReportEntry("revocation took effect after", time.Since(revoked).Round(100*time.Millisecond).String())
	})

	It("costs the API server one TokenReview and one SubjectAccessReview per caller and session per 10 s", func() {
		probe := mintToken(team, "mcp-probe")
		grantGet(team, team, "mcp-probe")
		Eventually(codeOf(probe, "/sessions/team-a/alice")).WithTimeout(5 * time.Second).Should(Equal(http.StatusOK))

		tokenReviews, accessReviews := reviewCount("tokenreviews"), reviewCount("subjectaccessreviews")
		start := time.Now()
		for range 20 {
			Expect(call(probe, "/sessions/team-a/alice").code).To(Equal(http.StatusOK))
		}
		Expect(time.Since(start)).To(BeNumerically("<", 9*time.Second), "the calls outlasted the cached answer")
		Expect(reviewCount("tokenreviews") - tokenReviews).To(BeZero())
		Expect(reviewCount("subjectaccessreviews") - accessReviews).To(BeZero())

		By("asking again once the answer has expired")
		time.Sleep(11 * time.Second)
		Expect(call(probe, "/sessions/team-a/alice").code).To(Equal(http.StatusOK))
		Expect(reviewCount("tokenreviews") - tokenReviews).To(Equal(1))
		Expect(reviewCount("subjectaccessreviews") - accessReviews).To(Equal(1))
	})
})

// reviewCount is how many reviews of the kind (tokenreviews, subjectaccessreviews) the API
// server has created, from its own request counter.
func reviewCount(resource string) int {
	GinkgoHelper()
	raw, err := apiServer.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	Expect(err).NotTo(HaveOccurred())
	total := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="`+resource+`"`) ||
			!strings.Contains(line, `verb="POST"`) {
			continue
		}
		fields := strings.Fields(line)
		n, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		Expect(err).NotTo(HaveOccurred())
		total += int(n)
	}
	return total
}
