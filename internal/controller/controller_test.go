package controller

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/schedule"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// Canary values: if any of them shows up in a status, Event or error, a secret leaked.
const (
	canaryRefresh  = "CANARY-REFRESH-7f3a9c"
	canaryRotated  = "CANARY-ROTATED-d41b77"
	canaryAccess   = "CANARY-ACCESS-52e0aa"
	canarySecret   = "CANARY-CLIENTSECRET-9b1f"
	testNamespace  = "music"
	testClientID   = "client-1"
	testSessionKey = "alice"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// spread is how much earlier than its policy the test session ("uid-1") refreshes a
// one-hour token.
var spread = schedule.Spread("uid-1", time.Hour)

// fakeTIDAL answers refreshes with canary tokens and counts calls.
type fakeTIDAL struct {
	clock    *clocktesting.FakeClock
	lifetime time.Duration
	err      error
	rotate   string
	// skew sets the answer's Date header this far from the fake clock; 0 sends none.
	skew  time.Duration
	calls int
	got   tidal.Credentials
	// checkErr fails session checks; identity, when set, is what they answer.
	checkErr    error
	identity    *tidal.SessionInfo
	checks      int
	usersMe     int
	checkedWith string
	// onRefresh, when set, runs at each refresh.
	onRefresh func()
	// device answers device logins (devicelogin_test.go).
	device fakeDevice
}

func (f *fakeTIDAL) Refresh(_ context.Context, creds tidal.Credentials) (*tidal.Token, error) {
	f.calls++
	f.got = creds
	if f.onRefresh != nil {
		f.onRefresh()
	}
	if f.err != nil {
		if f.rotate != "" {
			// An unusable answer that still rotated the refresh token.
			return &tidal.Token{RefreshToken: f.rotate}, f.err
		}
		return nil, f.err
	}
	now := f.clock.Now()
	tok := &tidal.Token{AccessToken: canaryAccess, TokenType: "Bearer", RefreshToken: f.rotate,
		ReceivedAt: now, Lifetime: f.lifetime, ExpiresAt: now.Add(f.lifetime), UserID: "1001"}
	if f.skew != 0 {
		tok.ServerDate = now.Add(f.skew)
	}
	return tok, nil
}

func (f *fakeTIDAL) Session(_ context.Context, token string) (*tidal.SessionInfo, error) {
	f.checks++
	f.checkedWith = token
	if f.checkErr != nil {
		return nil, f.checkErr
	}
	if f.identity != nil {
		id := *f.identity
		return &id, nil
	}
	return &tidal.SessionInfo{SessionID: "sess-1", UserID: "1001", CountryCode: "NO", ClientID: "77",
		ClientName: "Test client"}, nil
}

func (f *fakeTIDAL) UsersMe(ctx context.Context, token string) (*tidal.SessionInfo, error) {
	f.usersMe++
	s, err := f.Session(ctx, token)
	if s != nil {
		s = &tidal.SessionInfo{UserID: s.UserID, CountryCode: s.CountryCode}
	}
	return s, err
}

type fixture struct {
	r      *TidalSessionReconciler
	tidal  *fakeTIDAL
	clock  *clocktesting.FakeClock
	events *events.FakeRecorder
	c      client.Client
}

func newSession() *sessionsv1alpha1.TidalSession {
	return &sessionsv1alpha1.TidalSession{
		ObjectMeta: metav1.ObjectMeta{Name: testSessionKey, Namespace: testNamespace, UID: "uid-1", Generation: 1},
		Spec: sessionsv1alpha1.TidalSessionSpec{
			CredentialsSecretRef: sessionsv1alpha1.CredentialsSecretReference{Name: "alice-creds"},
			OutputSecret:         sessionsv1alpha1.OutputSecretSpec{Name: "alice-token"},
		},
	}
}

func newCreds() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-creds", Namespace: testNamespace},
		Data: map[string][]byte{"refresh_token": []byte(canaryRefresh), "client_id": []byte(testClientID),
			"client_secret": []byte(canarySecret)},
	}
}

func newFixture(t *testing.T, objs ...client.Object) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := sessionsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&sessionsv1alpha1.TidalSession{}).
		WithIndex(&corev1.Pod{}, podSecretsIndex, indexPodSecrets).
		WithIndex(&sessionsv1alpha1.TidalSession{}, outputSecretIndex, indexOutputSecret).Build()
	clk := clocktesting.NewFakeClock(t0)
	ft := &fakeTIDAL{clock: clk, lifetime: time.Hour}
	rec := events.NewFakeRecorder(100)
	return &fixture{
		r: &TidalSessionReconciler{Client: c, APIReader: c, Scheme: scheme, Recorder: rec, Clock: clk,
			TIDAL: ft, RecheckInterval: 30 * time.Second},
		tidal: ft, clock: clk, events: rec, c: c,
	}
}

func (f *fixture) reconcile(t *testing.T) (ctrl.Result, error) {
	t.Helper()
	return f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{
		Namespace: testNamespace, Name: testSessionKey}})
}

func (f *fixture) session(t *testing.T) *sessionsv1alpha1.TidalSession {
	t.Helper()
	s := &sessionsv1alpha1.TidalSession{}
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: testSessionKey}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) secret(t *testing.T, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: name}, s); err != nil {
		t.Fatalf("get Secret %s: %v", name, err)
	}
	return s
}

func (f *fixture) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-f.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// assertNoCanary fails when a canary value appears in the session, the Events or err.
func assertNoCanary(t *testing.T, f *fixture, err error, evs []string) {
	t.Helper()
	s := f.session(t)
	b, _ := json.Marshal(s)
	haystack := string(b) + strings.Join(evs, "\n")
	if err != nil {
		haystack += err.Error()
	}
	for _, c := range []string{canaryRefresh, canaryRotated, canaryAccess, canarySecret} {
		if strings.Contains(haystack, c) {
			t.Errorf("canary %s leaked into status, Events or error", c)
		}
	}
}

func TestReconcileRefreshesAndWritesSecret(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	res, err := f.reconcile(t)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if f.tidal.calls != 1 || f.tidal.got.RefreshToken != canaryRefresh || f.tidal.got.ClientSecret != canarySecret {
		t.Errorf("TIDAL got %d calls with unexpected credentials", f.tidal.calls)
	}
	out := f.secret(t, "alice-token")
	if string(out.Data[sessionsv1alpha1.KeyAccessToken]) != canaryAccess {
		t.Errorf("output Secret has no access token")
	}
	if _, ok := out.Data["refresh_token"]; ok {
		t.Errorf("output Secret must not hold the refresh token")
	}
	if strings.Contains(string(out.Data[sessionsv1alpha1.KeySessionFile]), canaryRefresh) {
		t.Errorf("session.json must not hold the refresh token")
	}
	if got := string(out.Data[sessionsv1alpha1.KeyExpiresAt]); got != "2026-12-04T11:00:00Z" {
		t.Errorf("expires_at = %q", got)
	}
	if out.Labels[sessionsv1alpha1.ManagedByLabel] != sessionsv1alpha1.ManagedByValue || len(out.OwnerReferences) != 1 {
		t.Errorf("output Secret not labelled and owned: %v %v", out.Labels, out.OwnerReferences)
	}

	s := f.session(t)
	if s.Status.Phase != sessionsv1alpha1.PhaseActive || !meta.IsStatusConditionTrue(s.Status.Conditions, sessionsv1alpha1.ConditionReady) {
		t.Errorf("phase %s, conditions %v", s.Status.Phase, s.Status.Conditions)
	}
	if s.Status.RefreshCount != 1 || s.Status.UserID != "1001" || s.Status.CountryCode != "NO" || s.Status.ClientID != "77" {
		t.Errorf("status = %+v", s.Status)
	}
	// A one-hour token is refreshed 15 minutes before expiry, less the session's spread.
	if want := 45*time.Minute - spread; res.RequeueAfter != want {
		t.Errorf("requeue after %v, want %v", res.RequeueAfter, want)
	}
	assertNoCanary(t, f, err, f.drainEvents())
}

func TestReconcileNotDueMakesNoRequest(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	rv := f.session(t).ResourceVersion
	f.clock.Step(10 * time.Minute)
	res, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if f.tidal.calls != 1 || f.tidal.checks != 1 {
		t.Errorf("TIDAL saw %d refreshes and %d checks, want 1 each: neither was due", f.tidal.calls, f.tidal.checks)
	}
	if got := f.session(t).ResourceVersion; got != rv {
		t.Errorf("status written although nothing changed")
	}
	// The refresh's lookup was the first check; the next one is due after the default
	// interval, before the refresh.
	if want := 5 * time.Minute; res.RequeueAfter != want {
		t.Errorf("requeue after %v, want %v (the next health check)", res.RequeueAfter, want)
	}
	f.clock.Step(5 * time.Minute)
	if res, err = f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.tidal.calls != 1 || f.tidal.checks != 2 {
		t.Errorf("TIDAL saw %d refreshes and %d checks, want 1 and 2", f.tidal.calls, f.tidal.checks)
	}
	if want := 15 * time.Minute; res.RequeueAfter != want {
		t.Errorf("requeue after %v, want %v (the next check, before the refresh)", res.RequeueAfter, want)
	}
	f.clock.Step(30*time.Minute - spread)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.tidal.calls != 2 || f.session(t).Status.RefreshCount != 2 {
		t.Errorf("due token not refreshed: %d calls", f.tidal.calls)
	}
	refreshed := 0
	for _, e := range f.drainEvents() {
		if strings.Contains(e, sessionsv1alpha1.ReasonRefreshed) {
			refreshed++
		}
	}
	if refreshed != 1 {
		t.Errorf("%d Refreshed Events for 2 refreshes, want 1: routine refreshes are no Events", refreshed)
	}
}

func TestReconcileStoresRotatedRefreshToken(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.rotate = canaryRotated
	_, err := f.reconcile(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.secret(t, "alice-creds").Data["refresh_token"]); got != canaryRotated {
		t.Errorf("rotated refresh token not stored")
	}
	evs := f.drainEvents()
	if !containsReason(evs, sessionsv1alpha1.ReasonTokenRotated) {
		t.Errorf("no %s event in %v", sessionsv1alpha1.ReasonTokenRotated, evs)
	}
	assertNoCanary(t, f, err, evs)
}

func TestReconcileFailures(t *testing.T) {
	tests := []struct {
		name       string
		objs       func() []client.Object
		tidalErr   error
		wantPhase  sessionsv1alpha1.Phase
		wantReason string
		wantReady  metav1.ConditionStatus
		wantErr    bool
		wantCalls  int
		wantInMsg  string
	}{
		{
			name:      "credentials Secret missing",
			objs:      func() []client.Object { return []client.Object{newSession()} },
			wantPhase: sessionsv1alpha1.PhaseError, wantReason: sessionsv1alpha1.ReasonCredentialsMissing,
			wantReady: metav1.ConditionFalse, wantInMsg: "alice-creds",
		},
		{
			name: "refresh token key missing",
			objs: func() []client.Object {
				c := newCreds()
				delete(c.Data, "refresh_token")
				return []client.Object{newSession(), c}
			},
			wantPhase: sessionsv1alpha1.PhaseError, wantReason: sessionsv1alpha1.ReasonCredentialsMissing,
			wantReady: metav1.ConditionFalse, wantInMsg: `"refresh_token"`,
		},
		{
			name: "refresh token with white space",
			objs: func() []client.Object {
				c := newCreds()
				c.Data["refresh_token"] = []byte("abc def")
				return []client.Object{newSession(), c}
			},
			wantPhase: sessionsv1alpha1.PhaseError, wantReason: sessionsv1alpha1.ReasonCredentialsInvalid,
			wantReady: metav1.ConditionFalse, wantInMsg: "white space",
		},
		{
			name: "refresh token of binary garbage",
			objs: func() []client.Object {
				c := newCreds()
				c.Data["refresh_token"] = []byte{0x01, 0xff, 'a', 0x7f}
				return []client.Object{newSession(), c}
			},
			wantPhase: sessionsv1alpha1.PhaseError, wantReason: sessionsv1alpha1.ReasonCredentialsInvalid,
			wantReady: metav1.ConditionFalse, wantInMsg: "printable ASCII",
		},
		{
			name: "unmanaged Secret of the output name",
			objs: func() []client.Object {
				return []client.Object{newSession(), newCreds(), &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: "alice-token", Namespace: testNamespace},
					Data:       map[string][]byte{"mine": []byte("keep")}}}
			},
			wantPhase: sessionsv1alpha1.PhaseError, wantReason: sessionsv1alpha1.ReasonOutputSecretConflict,
			wantReady: metav1.ConditionFalse, wantInMsg: "alice-token",
		},
		{
			name: "same Secret for input and output",
			objs: func() []client.Object {
				s := newSession()
				s.Spec.OutputSecret.Name = "alice-creds"
				return []client.Object{s, newCreds()}
			},
			wantPhase: sessionsv1alpha1.PhaseError, wantReason: sessionsv1alpha1.ReasonInvalidSpec,
			wantReady: metav1.ConditionFalse, wantInMsg: "must differ",
		},
		{
			name: "suspended",
			objs: func() []client.Object {
				s := newSession()
				s.Spec.Suspend = true
				return []client.Object{s, newCreds()}
			},
			wantPhase: sessionsv1alpha1.PhaseSuspended, wantReason: sessionsv1alpha1.ReasonSuspended,
			wantReady: metav1.ConditionFalse,
		},
		{
			name:      "invalid_grant",
			objs:      func() []client.Object { return []client.Object{newSession(), newCreds()} },
			tidalErr:  &tidal.Error{Op: "refresh token", Kind: tidal.GrantInvalid, Code: "invalid_grant", HTTPStatus: 400},
			wantPhase: sessionsv1alpha1.PhaseReauthRequired, wantReason: sessionsv1alpha1.ReasonReauthRequired,
			wantReady: metav1.ConditionFalse, wantCalls: 1, wantInMsg: "invalid_grant",
		},
		{
			name:      "invalid_client",
			objs:      func() []client.Object { return []client.Object{newSession(), newCreds()} },
			tidalErr:  &tidal.Error{Op: "refresh token", Kind: tidal.ClientInvalid, Code: "invalid_client", HTTPStatus: 401},
			wantPhase: sessionsv1alpha1.PhaseError, wantReason: sessionsv1alpha1.ReasonClientRejected,
			wantReady: metav1.ConditionFalse, wantCalls: 1,
		},
		{
			name:      "TIDAL outage before the first token",
			objs:      func() []client.Object { return []client.Object{newSession(), newCreds()} },
			tidalErr:  &tidal.Error{Op: "refresh token", Kind: tidal.Transient, HTTPStatus: 503},
			wantPhase: sessionsv1alpha1.PhasePending, wantReason: sessionsv1alpha1.ReasonRefreshRetrying,
			wantReady: metav1.ConditionFalse, wantCalls: 1, wantInMsg: "failures 1; next attempt at",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.objs()...)
			f.tidal.err = tt.tidalErr
			_, err := f.reconcile(t)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if f.tidal.calls != tt.wantCalls {
				t.Errorf("TIDAL called %d times, want %d", f.tidal.calls, tt.wantCalls)
			}
			s := f.session(t)
			c := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady)
			if s.Status.Phase != tt.wantPhase || c == nil || c.Reason != tt.wantReason || c.Status != tt.wantReady {
				t.Fatalf("phase %q, Ready %+v; want %q %s %s", s.Status.Phase, c, tt.wantPhase, tt.wantReady, tt.wantReason)
			}
			if !strings.Contains(c.Message, tt.wantInMsg) {
				t.Errorf("message %q does not name %q", c.Message, tt.wantInMsg)
			}
			evs := f.drainEvents()
			if !containsReason(evs, tt.wantReason) {
				t.Errorf("no %s event in %v", tt.wantReason, evs)
			}
			assertNoCanary(t, f, err, evs)
		})
	}
}

func TestUnmanagedOutputSecretIsLeftUntouched(t *testing.T) {
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alice-token", Namespace: testNamespace},
		Data: map[string][]byte{"mine": []byte("keep")}}
	f := newFixture(t, newSession(), newCreds(), mine)
	before := f.secret(t, "alice-token")
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	after := f.secret(t, "alice-token")
	if after.ResourceVersion != before.ResourceVersion || string(after.Data["mine"]) != "keep" {
		t.Errorf("unmanaged Secret changed")
	}
	if f.tidal.calls != 0 {
		t.Errorf("refreshed although the token could not be written")
	}
}

func TestTransientFailureKeepsValidToken(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(50 * time.Minute)
	f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.Transient, HTTPStatus: 500}
	var waits []time.Duration
	for range 3 {
		res, err := f.reconcile(t)
		if err != nil || res.RequeueAfter <= 0 {
			t.Fatalf("transient failure: %+v, %v; want a requeue after a backoff", res, err)
		}
		waits = append(waits, res.RequeueAfter)
		f.clock.Step(res.RequeueAfter)
	}
	if !(waits[0] < waits[1] && waits[1] < waits[2]) || waits[0] < schedule.RetryBase {
		t.Errorf("waits %v do not back off from %v", waits, schedule.RetryBase)
	}
	s := f.session(t)
	if s.Status.Phase != sessionsv1alpha1.PhaseDegraded || s.Status.ConsecutiveFailures != 3 {
		t.Errorf("phase %s failures %d", s.Status.Phase, s.Status.ConsecutiveFailures)
	}
	if ready := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady); !strings.Contains(ready.Message, "next attempt at") {
		t.Errorf("Ready message %q does not name the next attempt", ready.Message)
	}
	if string(f.secret(t, "alice-token").Data[sessionsv1alpha1.KeyAccessToken]) != canaryAccess {
		t.Errorf("valid token removed from the output Secret during an outage")
	}
	f.tidal.err = nil
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if s := f.session(t); s.Status.Phase != sessionsv1alpha1.PhaseActive || s.Status.ConsecutiveFailures != 0 {
		t.Errorf("not recovered: %s %d", s.Status.Phase, s.Status.ConsecutiveFailures)
	}
}

func TestOutcomeOf(t *testing.T) {
	const recheck = time.Minute
	transient := &tidal.Error{Op: "refresh token", Kind: tidal.Transient, HTTPStatus: 503}
	tests := []struct {
		name        string
		err         error
		token       tokenHealth
		wantPhase   sessionsv1alpha1.Phase
		wantReason  string
		wantReady   metav1.ConditionStatus
		wantRetry   bool
		wantRequeue time.Duration
	}{
		{"unknown error, valid token", errors.New("boom"), tokenValid,
			sessionsv1alpha1.PhaseDegraded, sessionsv1alpha1.ReasonRefreshRetrying, metav1.ConditionTrue, true, 0},
		{"outage before the first token", transient, noToken,
			sessionsv1alpha1.PhasePending, sessionsv1alpha1.ReasonRefreshRetrying, metav1.ConditionFalse, true, 0},
		{"outage outlasting the token", transient, tokenExpired,
			sessionsv1alpha1.PhaseExpired, sessionsv1alpha1.ReasonTokenExpired, metav1.ConditionFalse, true, 0},
		{"grant rejected waits for new credentials", &tidal.Error{Kind: tidal.GrantInvalid, Code: "invalid_grant"}, tokenValid,
			sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired, metav1.ConditionFalse, false, recheck},
		{"client rejected", &tidal.Error{Kind: tidal.ClientInvalid, Code: "invalid_client"}, tokenExpired,
			sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonClientRejected, metav1.ConditionFalse, false, recheck},
		{"waiting", waitf(5*time.Second, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsMissing, "x"), noToken,
			sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsMissing, metav1.ConditionFalse, false, 5 * time.Second},
		{"terminal", terminalf(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec, "x"), tokenValid,
			sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec, metav1.ConditionFalse, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := outcomeOf(tt.err, tt.token, recheck)
			if o.phase != tt.wantPhase || o.reason != tt.wantReason || o.ready != tt.wantReady ||
				o.retry != tt.wantRetry || o.requeueAfter != tt.wantRequeue {
				t.Errorf("outcomeOf = %+v, want phase %s reason %s ready %s retry %v requeue %v",
					o, tt.wantPhase, tt.wantReason, tt.wantReady, tt.wantRetry, tt.wantRequeue)
			}
		})
	}
}

// A rejected refresh token is not sent to TIDAL again; a new one in the credentials Secret
// is, without any change to the session.
func TestReauthRequiredRecoversWhenCredentialsChange(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.GrantInvalid, Code: "invalid_grant", HTTPStatus: 400}
	res, err := f.reconcile(t)
	if err != nil || res.RequeueAfter != f.r.RecheckInterval {
		t.Fatalf("first reconcile = %+v, %v; want a requeue after %v", res, err, f.r.RecheckInterval)
	}
	if p := f.session(t).Status.Phase; p != sessionsv1alpha1.PhaseReauthRequired {
		t.Fatalf("phase = %s, want ReauthRequired", p)
	}

	f.clock.Step(time.Minute)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.tidal.calls != 1 {
		t.Fatalf("TIDAL saw %d refreshes with the rejected token, want 1", f.tidal.calls)
	}

	creds := f.secret(t, "alice-creds")
	creds.Data["refresh_token"] = []byte(canaryRefresh + "-new")
	if err := f.c.Update(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
	f.tidal.err = nil
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	s := f.session(t)
	if f.tidal.calls != 2 || s.Status.Phase != sessionsv1alpha1.PhaseActive {
		t.Errorf("after new credentials: %d refreshes, phase %s; want 2 and Active", f.tidal.calls, s.Status.Phase)
	}
	if f.tidal.got.RefreshToken != canaryRefresh+"-new" {
		t.Error("the refresh did not use the new refresh token")
	}
	assertNoCanary(t, f, nil, f.drainEvents())
}

// The spec chooses the credentials Secret's keys, so nothing read from that Secret may be
// echoed into status: it would let anyone who can create a session read any Secret value.
func TestStatusNeverEchoesCredentialValues(t *testing.T) {
	session := newSession()
	session.Spec.CredentialsSecretRef.ClientIDKey = "client_secret"
	f := newFixture(t, session, newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got := f.session(t).Status.ClientID; got != "77" {
		t.Errorf("status.clientID = %q, want TIDAL's own answer 77", got)
	}
	assertNoCanary(t, f, nil, f.drainEvents())
}

func TestRetryDelay(t *testing.T) {
	limited := &tidal.Error{Kind: tidal.Transient, HTTPStatus: 429, RetryAfter: 90 * time.Second}
	outage := &tidal.Error{Kind: tidal.Transient, HTTPStatus: 503}
	tests := []struct {
		name        string
		err         *tidal.Error
		failures    int32
		untilExpiry time.Duration
		min, max    time.Duration
	}{
		{"first failure", outage, 1, time.Hour, 5 * time.Second, 6 * time.Second},
		{"fourth failure", outage, 4, time.Hour, 40 * time.Second, 48 * time.Second},
		{"many failures are capped", outage, 50, time.Hour, 5 * time.Minute, 6 * time.Minute},
		{"Retry-After wins over a shorter backoff", limited, 1, time.Hour, 90 * time.Second, 90 * time.Second},
		{"Retry-After wins over a longer backoff", limited, 50, time.Hour, 90 * time.Second, 90 * time.Second},
		{"expiry cuts the wait short", outage, 50, 10 * time.Second, 11 * time.Second, 11 * time.Second},
		{"expired token: plain backoff", outage, 2, 0, 10 * time.Second, 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := retryDelay(tt.err, tt.failures, tt.untilExpiry, 0); d < tt.min || d > tt.max {
				t.Errorf("retryDelay = %v, want within [%v, %v]", d, tt.min, tt.max)
			}
		})
	}
}

// During an outage that outlasts the token, the Secret says the token has expired, and
// says it is valid again once a refresh succeeds.
func TestExpiredTokenIsMarkedInTheSecret(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	status := func() string { return string(f.secret(t, "alice-token").Data[sessionsv1alpha1.KeyTokenStatus]) }
	if got := status(); got != sessionsv1alpha1.TokenStatusValid {
		t.Fatalf("token_status after a refresh = %q, want valid", got)
	}

	f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.Transient, HTTPStatus: 503}
	f.clock.Step(50 * time.Minute)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != sessionsv1alpha1.TokenStatusValid {
		t.Errorf("token_status of a failing session whose token is still valid = %q, want valid", got)
	}
	f.clock.Step(11 * time.Minute)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got, phase := status(), f.session(t).Status.Phase; got != sessionsv1alpha1.TokenStatusExpired ||
		phase != sessionsv1alpha1.PhaseExpired {
		t.Errorf("after expiry: token_status %q, phase %s; want expired and Expired", got, phase)
	}

	f.tidal.err = nil
	f.clock.Step(time.Minute)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != sessionsv1alpha1.TokenStatusValid {
		t.Errorf("token_status after recovery = %q, want valid", got)
	}
}

// While refreshes fail, neither watch events nor refresh requests ask TIDAL before the
// backoff says so.
func TestBackoffHoldsBackRequests(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(50 * time.Minute)
	f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.Transient, HTTPStatus: 500}
	res, err := f.reconcile(t)
	if err != nil || f.tidal.calls != 2 {
		t.Fatalf("failing refresh: %d calls, %v", f.tidal.calls, err)
	}
	for i := range 5 {
		s := f.session(t)
		s.Annotations = map[string]string{sessionsv1alpha1.RefreshRequestAnnotation: f.clock.Now().Add(time.Duration(i) * time.Second).Format(time.RFC3339)}
		if err := f.c.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if _, err := f.reconcile(t); err != nil {
			t.Fatal(err)
		}
	}
	if f.tidal.calls != 2 {
		t.Errorf("5 requests during the backoff made %d more calls, want 0", f.tidal.calls-2)
	}
	f.clock.Step(res.RequeueAfter)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.tidal.calls != 3 {
		t.Errorf("after the backoff: %d calls, want 3", f.tidal.calls)
	}
}

// A credentials Secret changed without a new refresh token (a label, say) does not send
// the token TIDAL rejected again.
func TestRejectedTokenIsNotResentAfterAnUnrelatedChange(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.GrantInvalid, Code: "invalid_grant", HTTPStatus: 400}
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	creds := f.secret(t, "alice-creds")
	creds.Labels = map[string]string{"team": "music"}
	if err := f.c.Update(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(time.Minute)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.tidal.calls != 1 {
		t.Errorf("the rejected token was sent %d times, want once", f.tidal.calls)
	}
}

// A refresh token rotated in an answer that is otherwise unusable is stored all the same:
// TIDAL may have retired the old one.
func TestRotatedTokenOfFailedRefreshIsStored(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.Transient, HTTPStatus: 200, Cause: "answer has no positive expires_in"}
	f.tidal.rotate = canaryRotated
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got := string(f.secret(t, "alice-creds").Data["refresh_token"]); got != canaryRotated {
		t.Error("the rotated refresh token of a failed refresh was not stored")
	}
	if p := f.session(t).Status.Phase; p != sessionsv1alpha1.PhasePending {
		t.Errorf("phase %s, want Pending: no access token was written", p)
	}
	assertNoCanary(t, f, nil, f.drainEvents())
}

func TestClockSkew(t *testing.T) {
	tests := []struct {
		name string
		date time.Time
		want int64
	}{
		{"no Date header", time.Time{}, 0},
		{"in step", t0, 0},
		{"59s ahead", t0.Add(59 * time.Second), 0},
		{"a minute ahead", t0.Add(time.Minute), 60},
		{"five minutes behind", t0.Add(-5 * time.Minute), -300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clockSkew(tt.date, t0); got != tt.want {
				t.Errorf("clockSkew = %d, want %d", got, tt.want)
			}
		})
	}
}

// A skewed TIDAL clock is reported once, and expiry still follows the operator's clock.
func TestClockSkewIsReportedOnce(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.skew = 5 * time.Minute
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	s := f.session(t)
	if s.Status.ClockSkewSeconds != 300 || !s.Status.AccessTokenExpiresAt.Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("skew %d, expiry %v; want 300 and %v", s.Status.ClockSkewSeconds, s.Status.AccessTokenExpiresAt, t0.Add(time.Hour))
	}
	if !containsReason(f.drainEvents(), sessionsv1alpha1.ReasonClockSkew) {
		t.Error("no ClockSkew Event")
	}
	f.clock.Step(time.Hour)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if containsReason(f.drainEvents(), sessionsv1alpha1.ReasonClockSkew) {
		t.Error("ClockSkew Event repeated on every refresh")
	}
}

func TestRequestKey(t *testing.T) {
	for _, v := range []string{"2026-12-04T10:00:00Z", strings.Repeat("x", 100), strings.Repeat("€", 30), "é" + strings.Repeat("a", 70)} {
		k := requestKey(v)
		if len(k) > maxRequestValue || !utf8.ValidString(k) || !strings.HasPrefix(v, k) {
			t.Errorf("requestKey(%q) = %q: want a valid prefix of at most %d bytes", v, k, maxRequestValue)
		}
	}
	if k := requestKey("2026-12-04T10:00:00Z"); k != "2026-12-04T10:00:00Z" {
		t.Errorf("a short value was changed: %q", k)
	}
}

func TestDecideRequest(t *testing.T) {
	last := t0
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name     string
		value    string
		handled  string
		now      time.Time
		want     request
		wantWait time.Duration
	}{
		{"no annotation", "", "", t0.Add(time.Hour), requestNone, 0},
		{"already handled", at(time.Minute), at(time.Minute), t0.Add(time.Hour), requestNone, 0},
		{"new request", at(time.Minute), "", t0.Add(2 * time.Minute), requestDue, 0},
		{"new request replacing a handled one", at(time.Hour), at(time.Minute), t0.Add(2 * time.Hour), requestDue, 0},
		{"made before the last refresh: coalesced", at(-time.Second), "", t0.Add(time.Minute), requestSatisfied, 0},
		{"made in the second of the last refresh: not known to be satisfied", at(0), "", t0.Add(time.Minute), requestDue, 0},
		{"too soon after the last refresh", at(5 * time.Second), "", t0.Add(10 * time.Second), requestTooSoon, 20 * time.Second},
		{"not a time", "now please", "", t0.Add(time.Hour), requestInvalid, 0},
		{"a date without time", "2026-12-04", "", t0.Add(time.Hour), requestInvalid, 0},
		{"an overlong value once handled", strings.Repeat("x", 100), strings.Repeat("x", 64), t0.Add(time.Hour), requestNone, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, wait := decideRequest(tt.value, tt.handled, last, tt.now)
			if got != tt.want || wait != tt.wantWait {
				t.Errorf("decideRequest = %v, %v; want %v, %v", got, wait, tt.want, tt.wantWait)
			}
		})
	}
}

// A refresh request annotation causes one refresh, no sooner than 30 seconds after the last,
// and is not acted on twice.
func TestRefreshRequestAnnotation(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	annotate := func(v string) {
		t.Helper()
		s := f.session(t)
		s.Annotations = map[string]string{sessionsv1alpha1.RefreshRequestAnnotation: v}
		if err := f.c.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	f.drainEvents()

	f.clock.Step(10 * time.Second)
	annotate(f.clock.Now().Format(time.RFC3339))
	res, err := f.reconcile(t)
	if err != nil || f.tidal.calls != 1 || res.RequeueAfter != 20*time.Second {
		t.Fatalf("request 10s after a refresh: %d calls, requeue %v, %v; want 1 call and a 20s wait",
			f.tidal.calls, res.RequeueAfter, err)
	}
	f.clock.Step(20 * time.Second)
	if _, err := f.reconcile(t); err != nil || f.tidal.calls != 2 {
		t.Fatalf("request once 30s passed: %d calls, %v; want 2", f.tidal.calls, err)
	}
	if !containsReason(f.drainEvents(), sessionsv1alpha1.ReasonRefreshRequested) {
		t.Error("no RefreshRequested Event")
	}
	f.clock.Step(time.Minute)
	if _, err := f.reconcile(t); err != nil || f.tidal.calls != 2 {
		t.Fatalf("handled request acted on again: %d calls, %v", f.tidal.calls, err)
	}

	annotate("soon")
	if _, err := f.reconcile(t); err != nil || f.tidal.calls != 2 {
		t.Fatalf("invalid request: %d calls, %v; want 2", f.tidal.calls, err)
	}
	if !containsReason(f.drainEvents(), sessionsv1alpha1.ReasonRefreshRequestInvalid) {
		t.Error("no RefreshRequestInvalid Event")
	}
}

func containsReason(evs []string, reason string) bool {
	for _, e := range evs {
		if strings.Contains(e, " "+reason+" ") {
			return true
		}
	}
	return false
}
