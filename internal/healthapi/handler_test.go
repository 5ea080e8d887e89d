package healthapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// Canary tokens: no answer, header or log line may contain them.
const (
	tokenReader   = "CANARY-HEALTHAPI-READER-5b1c7e"
	tokenOutsider = "CANARY-HEALTHAPI-OUTSIDER-0d93aa"
	tokenBroken   = "CANARY-HEALTHAPI-OUTAGE-77f2c1"
	tokenForged   = "CANARY-HEALTHAPI-FORGED-e4a820"
)

var allTokens = []string{tokenReader, tokenOutsider, tokenBroken, tokenForged}

// Instants truncated to seconds, as the API server stores them.
var (
	expiresAt   = metav1.NewTime(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	refreshedAt = metav1.NewTime(time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC))
	nextRefresh = metav1.NewTime(time.Date(2026, 5, 1, 11, 45, 0, 0, time.UTC))
	checkedAt   = metav1.NewTime(time.Date(2026, 5, 1, 11, 30, 0, 0, time.UTC))
)

// fakeAuth stands in for TokenReview and SubjectAccessReview: the reader may get every
// session in team-a, the outsider nothing; the broken token's review fails.
type fakeAuth struct {
	authnCalls, authzCalls atomic.Int32
}

func (f *fakeAuth) authenticate(_ context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	f.authnCalls.Add(1)
	switch token {
	case tokenReader:
		return authenticationv1.UserInfo{Username: "system:serviceaccount:team-a:mcp"}, true, nil
	case tokenOutsider:
		return authenticationv1.UserInfo{Username: "system:serviceaccount:team-b:other"}, true, nil
	case tokenBroken:
		return authenticationv1.UserInfo{}, false, errors.New("connection refused")
	}
	return authenticationv1.UserInfo{}, false, nil
}

func (f *fakeAuth) authorize(_ context.Context, u authenticationv1.UserInfo, s types.NamespacedName) (bool, error) {
	f.authzCalls.Add(1)
	return u.Username == "system:serviceaccount:team-a:mcp" && s.Namespace == "team-a", nil
}

func newScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := sessionsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return scheme
}

// session builds a TidalSession in team-a with the given phase and Ready status.
func session(name string, phase sessionsv1alpha1.Phase, ready metav1.ConditionStatus) *sessionsv1alpha1.TidalSession {
	return &sessionsv1alpha1.TidalSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, Generation: 3},
		Status: sessionsv1alpha1.TidalSessionStatus{
			Phase:              phase,
			ObservedGeneration: 3,
			Conditions: []metav1.Condition{{
				Type: sessionsv1alpha1.ConditionReady, Status: ready, Reason: sessionsv1alpha1.ReasonRefreshed,
				Message: "token refreshed", LastTransitionTime: refreshedAt, ObservedGeneration: 3,
			}},
			AccessTokenExpiresAt: &expiresAt,
			LastRefreshTime:      &refreshedAt,
			NextRefreshTime:      &nextRefresh,
			ConsecutiveFailures:  2,
			Health: &sessionsv1alpha1.SessionHealth{
				Result: sessionsv1alpha1.HealthHealthy, LastCheckTime: &checkedAt, LastHealthyTime: &checkedAt,
			},
			OutputSecretName: "alice-token",
		},
	}
}

type fixture struct {
	auth *fakeAuth
	gets atomic.Int32
	logs *bytes.Buffer
	mux  http.Handler
}

func newFixture(t *testing.T, namespaces ...string) *fixture {
	t.Helper()
	f := &fixture{auth: &fakeAuth{}, logs: &bytes.Buffer{}}
	c := fake.NewClientBuilder().WithScheme(newScheme(t)).
		WithObjects(
			session("alice", sessionsv1alpha1.PhaseActive, metav1.ConditionTrue),
			session("bob", sessionsv1alpha1.PhaseDegraded, metav1.ConditionFalse),
		).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				f.gets.Add(1)
				if key.Name == "unreadable" {
					return errors.New("cache not synced")
				}
				return c.Get(ctx, key, obj, opts...)
			},
		}).Build()
	access, err := NewAccess(f.auth.authenticate, f.auth.authorize, AccessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	log := funcr.New(func(prefix, args string) { f.logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 4})
	f.mux = NewMux(&Handler{Sessions: c, Access: access, Namespaces: namespaces, Log: logr.Logger(log)}, nil)
	return f
}

func TestHandler(t *testing.T) {
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		auth       string // the Authorization header
		namespaces []string
		wantCode   int
		wantInBody []string
		// wantLookup says whether the session may be read: never before the caller is
		// allowed, so that a forbidden caller cannot tell whether it exists.
		wantLookup bool
		wantAuthn  bool
	}{
		{name: "allowed, ready", path: "/sessions/team-a/alice", auth: "Bearer " + tokenReader,
			wantCode: 200, wantInBody: []string{`"phase":"Active"`, `"ready":true`}, wantLookup: true, wantAuthn: true},
		{name: "allowed, probe of a ready session", path: "/sessions/team-a/alice?ready=1", auth: "Bearer " + tokenReader,
			wantCode: 200, wantInBody: []string{`"ready":true`}, wantLookup: true, wantAuthn: true},
		{name: "allowed, not ready, plain read", path: "/sessions/team-a/bob", auth: "Bearer " + tokenReader,
			wantCode: 200, wantInBody: []string{`"phase":"Degraded"`, `"ready":false`}, wantLookup: true, wantAuthn: true},
		{name: "allowed, probe of a session that is not ready", path: "/sessions/team-a/bob?ready=true",
			auth: "Bearer " + tokenReader, wantCode: 503, wantInBody: []string{`"phase":"Degraded"`, `"ready":false`},
			wantLookup: true, wantAuthn: true},
		{name: "allowed, ready=false is a plain read", path: "/sessions/team-a/bob?ready=false",
			auth: "Bearer " + tokenReader, wantCode: 200, wantLookup: true, wantAuthn: true},
		{name: "lower-case scheme", path: "/sessions/team-a/alice", auth: "bearer " + tokenReader,
			wantCode: 200, wantLookup: true, wantAuthn: true},
		{name: "allowed, unknown session", path: "/sessions/team-a/nobody", auth: "Bearer " + tokenReader,
			wantCode: 404, wantInBody: []string{`not found`}, wantLookup: true, wantAuthn: true},
		{name: "allowed, namespace the operator does not manage", path: "/sessions/team-a/alice",
			auth: "Bearer " + tokenReader, namespaces: []string{"team-z"}, wantCode: 404, wantAuthn: true},
		{name: "allowed, session unreadable", path: "/sessions/team-a/unreadable", auth: "Bearer " + tokenReader,
			wantCode: 503, wantLookup: true, wantAuthn: true},
		{name: "forbidden, existing session", path: "/sessions/team-a/alice", auth: "Bearer " + tokenOutsider,
			wantCode: 403, wantInBody: []string{`system:serviceaccount:team-b:other may not get`}, wantAuthn: true},
		{name: "forbidden, unknown session answers the same", path: "/sessions/team-a/nobody",
			auth: "Bearer " + tokenOutsider, wantCode: 403, wantInBody: []string{`may not get`}, wantAuthn: true},
		{name: "anonymous", path: "/sessions/team-a/alice", wantCode: 401},
		{name: "empty bearer token", path: "/sessions/team-a/alice", auth: "Bearer ", wantCode: 401},
		{name: "basic credentials", path: "/sessions/team-a/alice", auth: "Basic " + tokenForged, wantCode: 401},
		{name: "token the API server rejects", path: "/sessions/team-a/alice", auth: "Bearer " + tokenForged,
			wantCode: 401, wantInBody: []string{`not accepted`}, wantAuthn: true},
		{name: "token review unavailable", path: "/sessions/team-a/alice", auth: "Bearer " + tokenBroken,
			wantCode: 503, wantAuthn: true},
		{name: "invalid namespace", path: "/sessions/Team_A/alice", auth: "Bearer " + tokenReader, wantCode: 400},
		{name: "invalid ready parameter", path: "/sessions/team-a/alice?ready=maybe", auth: "Bearer " + tokenReader,
			wantCode: 400},
		{name: "write method", method: http.MethodPost, path: "/sessions/team-a/alice", auth: "Bearer " + tokenReader,
			wantCode: 405},
		{name: "other path", path: "/secrets/team-a/alice-token", auth: "Bearer " + tokenReader, wantCode: 404},
		{name: "list path", path: "/sessions/team-a", auth: "Bearer " + tokenReader, wantCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.namespaces...)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			f.mux.ServeHTTP(rec, req)

			body := rec.Body.String()
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantCode, body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("body is not JSON: %s", body)
			}
			for _, want := range tc.wantInBody {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %s: %s", want, body)
				}
			}
			if got := f.gets.Load() > 0; got != tc.wantLookup {
				t.Errorf("session read: %v, want %v", got, tc.wantLookup)
			}
			if got := f.auth.authnCalls.Load() > 0; got != tc.wantAuthn {
				t.Errorf("token reviewed: %v, want %v", got, tc.wantAuthn)
			}
			if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", rec.Header())
			}
			headers, _ := json.Marshal(rec.Header())
			for _, tok := range allTokens {
				for where, text := range map[string]string{"body": body, "headers": string(headers), "log": f.logs.String()} {
					if strings.Contains(text, tok) {
						t.Errorf("%s contains a token", where)
					}
				}
			}
		})
	}
}

// TestHandlerServesTheStatusFields checks each field of the answer against the status it
// comes from, and that nothing else (here the output Secret's name) is served.
func TestHandlerServesTheStatusFields(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest(http.MethodGet, "/sessions/team-a/alice", nil)
	req.Header.Set("Authorization", "Bearer "+tokenReader)
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", rec.Header().Get("Cache-Control"))
	}

	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"namespace": "team-a", "name": "alice", "phase": "Active", "ready": true,
		"generation": 3.0, "observedGeneration": 3.0, "consecutiveFailures": 2.0,
		"accessTokenExpiresAt": "2026-05-01T12:00:00Z",
		"lastRefreshTime":      "2026-05-01T11:00:00Z",
		"nextRefreshTime":      "2026-05-01T11:45:00Z",
		"conditions": []any{map[string]any{
			"type": "Ready", "status": "True", "reason": "Refreshed", "message": "token refreshed",
			"lastTransitionTime": "2026-05-01T11:00:00Z", "observedGeneration": 3.0,
		}},
		"health": map[string]any{
			"result": "Healthy", "lastCheckTime": "2026-05-01T11:30:00Z", "lastHealthyTime": "2026-05-01T11:30:00Z",
		},
	}
	gotJSON, _ := json.MarshalIndent(got, "", " ")
	wantJSON, _ := json.MarshalIndent(want, "", " ")
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("answer:\n%s\nwant:\n%s", gotJSON, wantJSON)
	}
}

// TestHandlerNewSession: a session the operator has not looked at yet has no status; it is
// served as not ready, with an empty list of conditions rather than null.
func TestHandlerNewSession(t *testing.T) {
	h := View(&sessionsv1alpha1.TidalSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "new"}})
	if h.Ready || h.Phase != "" || h.Health != nil || h.AccessTokenExpiresAt != nil {
		t.Errorf("view of an empty status: %+v", h)
	}
	b, _ := json.Marshal(h)
	if !strings.Contains(string(b), `"conditions":[]`) {
		t.Errorf("conditions not an empty list: %s", b)
	}
}
