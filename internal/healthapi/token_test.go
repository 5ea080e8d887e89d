package healthapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/fingerprint"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
)

// Canary tokens of the token route's callers, and the session's access token: only a 200
// body may hold the access token, and nothing may hold a caller's token.
const (
	tokenPod         = "CANARY-TOKENROUTE-POD-3e19a0"
	tokenIntruder    = "CANARY-TOKENROUTE-INTRUDER-c5d2f1"
	tokenUnbound     = "CANARY-TOKENROUTE-UNBOUND-9a7b3e"
	tokenOtherNS     = "CANARY-TOKENROUTE-OTHERNS-14f6d8"
	tokenLate        = "CANARY-TOKENROUTE-LATE-b0c4e2"
	tokenGone        = "CANARY-TOKENROUTE-GONE-62a9f7"
	tokenReplaced    = "CANARY-TOKENROUTE-REPLACED-d83c15"
	tokenOtherSA     = "CANARY-TOKENROUTE-OTHERSA-7e2b90"
	canaryAccessTok  = "CANARY-TOKENROUTE-ACCESS-a4f0c6"
	tokenRouteAud    = "tidal-session-operator"
	tokenRouteNS     = "team-a"
	tokenRouteOwner  = "mcp"
	tokenRoutePodUID = "uid-mcp-1"
)

var callerTokens = []string{tokenPod, tokenIntruder, tokenUnbound, tokenOtherNS, tokenLate, tokenGone, tokenReplaced,
	tokenOtherSA, tokenForged, tokenBroken}

var tokenRouteNow = time.Date(2026, 5, 1, 11, 30, 0, 0, time.UTC)

// podUser is what the API server reviews a pod-bound token of ns/sa as.
func podUser(ns, sa, pod, uid string) authenticationv1.UserInfo {
	return authenticationv1.UserInfo{Username: "system:serviceaccount:" + ns + ":" + sa,
		Extra: map[string]authenticationv1.ExtraValue{
			"authentication.kubernetes.io/pod-name": {pod}, "authentication.kubernetes.io/pod-uid": {uid}}}
}

// reviewPodToken stands for a TokenReview with the endpoint's audience.
func reviewPodToken(_ context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	switch token {
	case tokenPod:
		return podUser(tokenRouteNS, "mcp", "mcp-abc", tokenRoutePodUID), true, nil
	case tokenIntruder:
		return podUser(tokenRouteNS, "intruder", "intruder", "uid-intruder"), true, nil
	case tokenUnbound:
		return authenticationv1.UserInfo{Username: "system:serviceaccount:team-a:mcp"}, true, nil
	case tokenOtherNS:
		return podUser("team-b", "mcp", "mcp-xyz", "uid-b"), true, nil
	case tokenLate:
		return podUser(tokenRouteNS, "mcp", "late", "uid-late"), true, nil
	case tokenGone:
		return podUser(tokenRouteNS, "mcp", "gone", "uid-gone"), true, nil
	case tokenReplaced:
		return podUser(tokenRouteNS, "mcp", "mcp-abc", "uid-mcp-0"), true, nil
	case tokenOtherSA:
		return podUser(tokenRouteNS, "other", "mcp-abc", tokenRoutePodUID), true, nil
	case tokenBroken:
		return authenticationv1.UserInfo{}, false, errors.New("connection refused")
	}
	return authenticationv1.UserInfo{}, false, nil
}

func owned(kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name),
		Controller: ptr.To(true)}}
}

func tokenRoutePod(name, sa, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: tokenRouteNS, Name: name, UID: types.UID(uid),
		OwnerReferences: owned("ReplicaSet", "mcp-rs")}, Spec: corev1.PodSpec{ServiceAccountName: sa}}
}

// boundSession is a TidalSession of team-a with a binding; its output Secret, when servable,
// holds canaryAccessTok.
func boundSession(name string, bound bool) *sessionsv1alpha1.TidalSession {
	s := session(name, sessionsv1alpha1.PhaseActive, metav1.ConditionTrue)
	s.UID = types.UID("uid-session-" + name)
	s.Spec.OutputSecret.Name = name + "-token"
	s.Spec.Binding = &sessionsv1alpha1.BindingPolicy{Mode: sessionsv1alpha1.BindingEnforce}
	s.Status.Binding = &sessionsv1alpha1.BindingStatus{}
	if bound {
		id := fingerprint.Identity{Namespace: tokenRouteNS, ServiceAccount: "mcp",
			Workload: fingerprint.Workload{Group: "apps", Kind: "Deployment", Name: tokenRouteOwner}}
		s.Status.Binding.Bound = []sessionsv1alpha1.BoundConsumer{{Fingerprint: id.Fingerprint(),
			ServiceAccount: "mcp", Workload: sessionsv1alpha1.WorkloadReference{APIGroup: "apps", Kind: "Deployment",
				Name: tokenRouteOwner}, FirstSeen: refreshedAt}}
	}
	return s
}

func outputSecret(s *sessionsv1alpha1.TidalSession, status string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Spec.OutputSecret.Name,
		Labels: map[string]string{sessionsv1alpha1.ManagedByLabel: sessionsv1alpha1.ManagedByValue},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: sessionsv1alpha1.GroupVersion.String(),
			Kind: "TidalSession", Name: s.Name, UID: s.UID, Controller: ptr.To(true)}}},
		Data: map[string][]byte{
			sessionsv1alpha1.KeyAccessToken: []byte(canaryAccessTok),
			sessionsv1alpha1.KeyTokenType:   []byte("Bearer"),
			sessionsv1alpha1.KeyExpiresAt:   []byte(expiresAt.UTC().Format(time.RFC3339)),
			sessionsv1alpha1.KeyTokenStatus: []byte(status),
		}}
}

type tokenFixture struct {
	mux    http.Handler
	logs   *bytes.Buffer
	events *events.FakeRecorder
	// ownerReads counts the live reads of ReplicaSets, which fingerprinting a pod costs.
	ownerReads int
	// cache is what the handler reads pods, sessions and Secrets from.
	cache client.Client
}

// newTokenFixture serves the token route over a cache that holds the pods mcp-abc and
// intruder, and an API server that also has the pod "late", which the cache has not seen.
// Sessions: alice (bound to the mcp Deployment, token valid), quarantined, unbound (binding
// without bound consumers), open (no binding), empty (no token in its Secret), expired.
func newTokenFixture(t *testing.T, verdicts ...*utilcache.LRUExpireCache) *tokenFixture {
	t.Helper()
	scheme := newScheme(t)
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	alice, unbound, empty, expired := boundSession("alice", true), boundSession("unbound", false),
		boundSession("empty", true), boundSession("expired", true)
	quarantined := boundSession("quarantined", true)
	quarantined.Status.Binding.QuarantinedAt = &checkedAt
	open := boundSession("open", true)
	open.Spec.Binding = nil
	objs := []client.Object{
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: tokenRouteNS, Name: "mcp-rs", UID: "uid-mcp-rs",
			OwnerReferences: owned("Deployment", tokenRouteOwner)}},
		tokenRoutePod("mcp-abc", "mcp", tokenRoutePodUID), tokenRoutePod("intruder", "intruder", "uid-intruder"),
		alice, unbound, quarantined, open, empty, expired,
		outputSecret(alice, sessionsv1alpha1.TokenStatusValid), outputSecret(unbound, sessionsv1alpha1.TokenStatusValid),
		outputSecret(quarantined, sessionsv1alpha1.TokenStatusValid), outputSecret(open, sessionsv1alpha1.TokenStatusValid),
		outputSecret(expired, sessionsv1alpha1.TokenStatusExpired),
	}
	byName := func(o client.Object) []string { return []string{o.GetName()} }
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	live := fake.NewClientBuilder().WithScheme(scheme).WithIndex(&corev1.Pod{}, "metadata.name", byName).
		WithObjects(append(objs, tokenRoutePod("late", "mcp", "uid-late"))...).Build()

	tokens, err := NewPodTokens(reviewPodToken, 0, AccessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &tokenFixture{logs: &bytes.Buffer{}, events: events.NewFakeRecorder(100)}
	counted := interceptor.NewClient(live, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if obj.GetObjectKind().GroupVersionKind().Kind == "ReplicaSet" {
				f.ownerReads++
			}
			return c.Get(ctx, key, obj, opts...)
		}})
	log := funcr.New(func(prefix, args string) { f.logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 4})
	h := &TokenHandler{Cache: cache, Live: counted, Tokens: tokens, Audience: tokenRouteAud, Recorder: f.events,
		Log: logr.Logger(log), Clock: clocktesting.NewFakePassiveClock(tokenRouteNow)}
	if len(verdicts) > 0 {
		h.Verdicts = verdicts[0]
	}
	f.mux = NewMux(&Handler{Sessions: cache, Log: logr.Logger(log)}, h)
	f.cache = cache
	return f
}

func refusedCount() float64 {
	return testutil.ToFloat64(metrics.SecurityEvents.WithLabelValues(metrics.SecurityTokenRequestRefused))
}

func TestTokenHandler(t *testing.T) {
	const sameForbidden = `may not get the access token of tidalsessions.sessions.tidal-mcp.dev`
	for _, tc := range []struct {
		name   string
		method string
		path   string
		token  string
		// auth overrides the Authorization header built from token.
		auth       string
		wantCode   int
		wantInBody string
		// wantEvent is a part of the Warning Event's text; empty means no Event.
		wantEvent string
	}{
		{name: "bound pod", path: "/sessions/team-a/alice/token", token: tokenPod, wantCode: 200,
			wantInBody: `"access_token":"` + canaryAccessTok + `","token_type":"Bearer","expires_at":"2026-05-01T12:00:00Z"`},
		{name: "pod of another ServiceAccount", path: "/sessions/team-a/alice/token", token: tokenIntruder,
			wantCode: 403, wantInBody: `system:serviceaccount:team-a:intruder ` + sameForbidden,
			wantEvent: "Refused the access token to system:serviceaccount:team-a:intruder (pod team-a/intruder, fingerprint v1:"},
		{name: "nothing bound: no trust on first use", path: "/sessions/team-a/unbound/token", token: tokenPod,
			wantCode: 403, wantInBody: sameForbidden, wantEvent: "pod team-a/mcp-abc, fingerprint v1:"},
		{name: "quarantined", path: "/sessions/team-a/quarantined/token", token: tokenPod, wantCode: 403,
			wantInBody: sameForbidden, wantEvent: "quarantined since 2026-05-01T11:30:00Z"},
		{name: "no binding", path: "/sessions/team-a/open/token", token: tokenPod, wantCode: 403,
			wantInBody: sameForbidden, wantEvent: "no spec.binding"},
		{name: "unknown session", path: "/sessions/team-a/nobody/token", token: tokenPod, wantCode: 403,
			wantInBody: sameForbidden},
		{name: "another namespace, existing session", path: "/sessions/team-a/alice/token", token: tokenOtherNS,
			wantCode: 403, wantInBody: `system:serviceaccount:team-b:mcp ` + sameForbidden}, // no Event from outside
		{name: "another namespace, unknown session", path: "/sessions/team-a/nobody/token", token: tokenOtherNS,
			wantCode: 403, wantInBody: `system:serviceaccount:team-b:mcp ` + sameForbidden},
		{name: "token not bound to a pod", path: "/sessions/team-a/alice/token", token: tokenUnbound, wantCode: 403,
			wantInBody: "not bound to a pod", wantEvent: "system:serviceaccount:team-a:mcp: the token is not bound to a pod"},
		{name: "pod gone", path: "/sessions/team-a/alice/token", token: tokenGone, wantCode: 403,
			wantInBody: sameForbidden, wantEvent: "(pod team-a/gone): the pod the token is bound to no longer exists"},
		{name: "pod replaced under the same name", path: "/sessions/team-a/alice/token", token: tokenReplaced,
			wantCode: 403, wantInBody: sameForbidden, wantEvent: "no longer exists"},
		{name: "ServiceAccount not the pod's", path: "/sessions/team-a/alice/token", token: tokenOtherSA,
			wantCode: 403, wantInBody: sameForbidden, wantEvent: "the token's ServiceAccount is not the pod's"},
		{name: "token not accepted", path: "/sessions/team-a/alice/token", token: tokenForged, wantCode: 401,
			wantInBody: `the token was not accepted; send a current ServiceAccount token for audience \"tidal-session-operator\"`},
		{name: "no token", path: "/sessions/team-a/alice/token", wantCode: 401,
			wantInBody: "unauthorized: send the ServiceAccount token"},
		{name: "basic credentials", path: "/sessions/team-a/alice/token", auth: "Basic " + tokenPod, wantCode: 401},
		{name: "no token, unknown session", path: "/sessions/team-a/nobody/token", wantCode: 401},
		{name: "pod not in the cache yet", path: "/sessions/team-a/alice/token", token: tokenLate, wantCode: 503,
			wantInBody: "has not seen the pod yet"},
		{name: "no token in the Secret yet", path: "/sessions/team-a/empty/token", token: tokenPod, wantCode: 503,
			wantInBody: "no valid access token"},
		{name: "token marked expired", path: "/sessions/team-a/expired/token", token: tokenPod, wantCode: 503},
		{name: "review unavailable", path: "/sessions/team-a/alice/token", token: tokenBroken, wantCode: 503},
		{name: "invalid namespace", path: "/sessions/Team_A/alice/token", token: tokenPod, wantCode: 400},
		{name: "write method", method: http.MethodPost, path: "/sessions/team-a/alice/token", token: tokenPod,
			wantCode: 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTokenFixture(t)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tc.path, nil)
			switch {
			case tc.auth != "":
				req.Header.Set("Authorization", tc.auth)
			case tc.token != "":
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			before := refusedCount()
			rec := httptest.NewRecorder()
			f.mux.ServeHTTP(rec, req)

			body := rec.Body.String()
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantCode, body)
			}
			if !json.Valid(rec.Body.Bytes()) || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("body %s, Cache-Control %q", body, rec.Header().Get("Cache-Control"))
			}
			if !strings.Contains(body, tc.wantInBody) {
				t.Errorf("body lacks %s: %s", tc.wantInBody, body)
			}
			refused := rec.Code == 401 || rec.Code == 403
			if got := refusedCount() - before; got != map[bool]float64{true: 1}[refused] {
				t.Errorf("security events counted: %v", got)
			}
			if rec.Code == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", rec.Header())
			}
			if refused && !strings.Contains(f.logs.String(), `"msg"="Token request refused"`) {
				t.Errorf("refusal not logged: %s", f.logs)
			}

			// The fixture is the subtest's own: every Event it holds is this request's.
			evs := make([]string, len(f.events.Events))
			for i := range evs {
				evs[i] = <-f.events.Events
			}
			switch {
			case tc.wantEvent == "" && len(evs) > 0:
				t.Errorf("Events %q, want none", evs)
			case tc.wantEvent != "" && (len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning TokenRequestRefused ") ||
				!strings.Contains(evs[0], tc.wantEvent)):
				t.Errorf("Events %q, want one TokenRequestRefused naming %q", evs, tc.wantEvent)
			}

			headers, _ := json.Marshal(rec.Header())
			outputs := map[string]string{"body": body, "headers": string(headers), "log": f.logs.String(),
				"Events": strings.Join(evs, "\n")}
			for where, text := range outputs {
				for _, tok := range callerTokens {
					if strings.Contains(text, tok) {
						t.Errorf("%s contains a caller's token", where)
					}
				}
				if where != "body" || rec.Code != 200 {
					if strings.Contains(text, canaryAccessTok) {
						t.Errorf("%s contains the access token", where)
					}
				}
			}
		})
	}
}

// A caller of another namespace gets the same answer whether the session exists or not.
func TestTokenHandlerHidesSessionsFromOtherNamespaces(t *testing.T) {
	f := newTokenFixture(t)
	var bodies []string
	for _, path := range []string{"/sessions/team-a/alice/token", "/sessions/team-a/nobody/token"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+tokenOtherNS)
		rec := httptest.NewRecorder()
		f.mux.ServeHTTP(rec, req)
		bodies = append(bodies, strings.ReplaceAll(rec.Body.String(), "nobody", "alice"))
	}
	if bodies[0] != bodies[1] {
		t.Errorf("answers differ:\n%s\n%s", bodies[0], bodies[1])
	}
}

// Without a token audience the route does not exist: it answers 404 like any unknown path,
// and nothing is counted.
func TestTokenRouteOff(t *testing.T) {
	mux := NewMux(&Handler{}, nil)
	before := refusedCount()
	req := httptest.NewRequest(http.MethodGet, "/sessions/team-a/alice/token", nil)
	req.Header.Set("Authorization", "Bearer "+tokenPod)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || refusedCount() != before {
		t.Errorf("status %d, refusals counted %v", rec.Code, refusedCount()-before)
	}
}

func TestPodIdentityOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		user   authenticationv1.UserInfo
		wantOK bool
		want   PodIdentity
	}{
		{name: "pod-bound ServiceAccount token", user: podUser("team-a", "mcp", "mcp-abc", "u1"), wantOK: true,
			want: PodIdentity{User: "system:serviceaccount:team-a:mcp", Namespace: "team-a", ServiceAccount: "mcp",
				Pod: "mcp-abc", PodUID: "u1"}},
		{name: "ServiceAccount token without a pod", user: authenticationv1.UserInfo{Username: "system:serviceaccount:team-a:mcp"},
			want: PodIdentity{User: "system:serviceaccount:team-a:mcp", Namespace: "team-a", ServiceAccount: "mcp"}},
		{name: "pod name without UID", user: authenticationv1.UserInfo{Username: "system:serviceaccount:team-a:mcp",
			Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"mcp-abc"}}},
			want: PodIdentity{User: "system:serviceaccount:team-a:mcp", Namespace: "team-a", ServiceAccount: "mcp"}},
		{name: "two pods", user: authenticationv1.UserInfo{Username: "system:serviceaccount:team-a:mcp",
			Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"a", "b"},
				"authentication.kubernetes.io/pod-uid": {"u1", "u2"}}},
			want: PodIdentity{User: "system:serviceaccount:team-a:mcp", Namespace: "team-a", ServiceAccount: "mcp"}},
		{name: "a person, with pod extras", user: authenticationv1.UserInfo{Username: "alice@example.org",
			Extra: podUser("team-a", "mcp", "mcp-abc", "u1").Extra}, want: PodIdentity{User: "alice@example.org"}},
		{name: "malformed ServiceAccount name", user: podUser("team-a:x", "mcp", "mcp-abc", "u1"),
			want: PodIdentity{User: "system:serviceaccount:team-a:x:mcp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := podIdentityOf(tc.user)
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// PodTokens remembers answers as Access does: one review per token per TTL, errors not kept.
func TestPodTokensCachesAnswers(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(tokenRouteNow)
	calls := 0
	review := func(ctx context.Context, token string) (authenticationv1.UserInfo, bool, error) {
		calls++
		return reviewPodToken(ctx, token)
	}
	p, err := NewPodTokens(review, 0, AccessOptions{TTL: 10 * time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for tok, want := range map[string]Decision{tokenPod: Allowed, tokenUnbound: Forbidden, tokenForged: Unauthenticated} {
			if d, _, err := p.Review(context.Background(), tok); d != want || err != nil {
				t.Fatalf("decision %v, %v; want %v", d, err, want)
			}
		}
	}
	if _, _, err := p.Review(context.Background(), tokenBroken); err == nil {
		t.Fatal("no error when the review fails")
	}
	if _, _, err := p.Review(context.Background(), tokenBroken); err == nil || calls != 5 {
		t.Fatalf("9 reviews of 3 tokens and 2 failed ones cost %d TokenReviews, want 5", calls)
	}
	clk.SetTime(tokenRouteNow.Add(11 * time.Second))
	if _, _, _ = p.Review(context.Background(), tokenPod); calls != 6 {
		t.Errorf("answer kept past its TTL: %d reviews", calls)
	}
}

// jwtWith is a token whose payload is claims, unsigned: plausibleToken reads claims only.
func jwtWith(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestPlausibleToken(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	future, past := now.Add(time.Hour).Unix(), now.Add(-time.Second).Unix()
	pod := `"kubernetes.io":{"namespace":"team-a","pod":{"name":"mcp-abc","uid":"u1"}}`
	for _, tc := range []struct {
		name, token string
		want        bool
	}{
		{"pod-bound, audience string", jwtWith(fmt.Sprintf(`{"aud":"tso","exp":%d,%s}`, future, pod)), true},
		{"pod-bound, audience in a list", jwtWith(fmt.Sprintf(`{"aud":["x","tso"],"exp":%d,%s}`, future, pod)), true},
		{"another audience", jwtWith(fmt.Sprintf(`{"aud":["x"],"exp":%d,%s}`, future, pod)), false},
		{"no audience", jwtWith(fmt.Sprintf(`{"exp":%d,%s}`, future, pod)), false},
		{"expired", jwtWith(fmt.Sprintf(`{"aud":"tso","exp":%d,%s}`, past, pod)), false},
		{"no expiry", jwtWith(fmt.Sprintf(`{"aud":"tso",%s}`, pod)), false},
		// The review tells it apart from a pod's token, and answers 403.
		{"not bound to a pod", jwtWith(fmt.Sprintf(`{"aud":"tso","exp":%d,"kubernetes.io":{"namespace":"team-a"}}`, future)), true},
		{"garbage", "not-a-token", false},
		{"bad base64", "a.%%%.c", false},
		{"too large", jwtWith(fmt.Sprintf(`{"aud":"tso","exp":%d,%s,"pad":"%s"}`, future, pod, strings.Repeat("x", maxTokenBytes))), false},
	} {
		if got := plausibleToken(tc.token, "tso", now); got != tc.want {
			t.Errorf("%s: %t, want %t", tc.name, got, tc.want)
		}
	}
}

// Reviews beyond the bound are not queued: the caller hears ErrBusy at once, and answers
// already cached are served without a slot.
func TestPodTokensBoundsReviewsInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	review := func(_ context.Context, token string) (authenticationv1.UserInfo, bool, error) {
		if token == "slow" {
			started <- struct{}{}
			<-release
		}
		return podUser(tokenRouteNS, "mcp", "mcp-abc", tokenRoutePodUID), true, nil
	}
	p, err := NewPodTokens(review, 1, AccessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d, _, err := p.Review(context.Background(), "cached"); err != nil || d != Allowed {
		t.Fatalf("first review: %v, %v", d, err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := p.Review(context.Background(), "slow"); done <- err }()
	<-started
	if _, _, err := p.Review(context.Background(), "another"); !errors.Is(err, ErrBusy) {
		t.Errorf("a review beyond the bound: %v, want ErrBusy", err)
	}
	if d, _, err := p.Review(context.Background(), "cached"); err != nil || d != Allowed {
		t.Errorf("a cached answer while busy: %v, %v", d, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Review(context.Background(), "another"); err != nil {
		t.Errorf("after the slot freed: %v", err)
	}
}

// A pod asking again and again is judged once per session version: its owner is read live
// only when the verdict is not remembered.
func TestTokenHandlerRemembersVerdicts(t *testing.T) {
	f := newTokenFixture(t, utilcache.NewLRUExpireCache(16))
	call := func(token string) int {
		req := httptest.NewRequest(http.MethodGet, "/sessions/team-a/alice/token", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		f.mux.ServeHTTP(rec, req)
		return rec.Code
	}
	for range 5 {
		if code := call(tokenIntruder); code != http.StatusForbidden {
			t.Fatalf("intruder: %d", code)
		}
		if code := call(tokenPod); code != http.StatusOK {
			t.Fatalf("bound pod: %d", code)
		}
	}
	if f.ownerReads != 2 {
		t.Errorf("%d ReplicaSet reads for 10 calls of 2 pods, want 2", f.ownerReads)
	}

	// A change of the pod (here its labels, as a podSelector reads them) is judged anew.
	pod := &corev1.Pod{}
	if err := f.cache.Get(context.Background(), types.NamespacedName{Namespace: tokenRouteNS, Name: "mcp-abc"}, pod); err != nil {
		t.Fatal(err)
	}
	pod.Labels = map[string]string{"changed": "yes"}
	if err := f.cache.Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	call(tokenPod)
	if f.ownerReads != 3 {
		t.Errorf("%d ReplicaSet reads after the pod changed, want 3", f.ownerReads)
	}
}
