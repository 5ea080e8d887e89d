package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

func TestHealthDue(t *testing.T) {
	checked := func(ago time.Duration, result sessionsv1alpha1.HealthResult) *sessionsv1alpha1.SessionHealth {
		at := metav1.NewTime(t0.Add(-ago))
		return &sessionsv1alpha1.SessionHealth{LastCheckTime: &at, Result: result}
	}
	every := func(d time.Duration) sessionsv1alpha1.HealthCheckPolicy {
		return sessionsv1alpha1.HealthCheckPolicy{Interval: &metav1.Duration{Duration: d}}
	}
	for _, tc := range []struct {
		name     string
		health   *sessionsv1alpha1.SessionHealth
		policy   sessionsv1alpha1.HealthCheckPolicy
		wantDue  bool
		wantNext time.Time
	}{
		{"never checked", nil, sessionsv1alpha1.HealthCheckPolicy{}, true, t0},
		{"default interval, not yet", checked(10*time.Minute, sessionsv1alpha1.HealthHealthy), sessionsv1alpha1.HealthCheckPolicy{}, false, t0.Add(5 * time.Minute)},
		{"default interval, due", checked(15*time.Minute, sessionsv1alpha1.HealthHealthy), sessionsv1alpha1.HealthCheckPolicy{}, true, t0},
		{"spec interval", checked(30*time.Second, sessionsv1alpha1.HealthHealthy), every(time.Minute), false, t0.Add(30 * time.Second)},
		{"unknown result rechecks sooner", checked(time.Minute, sessionsv1alpha1.HealthUnknown), every(time.Hour), false, t0.Add(4 * time.Minute)},
		{"unknown result, short interval kept", checked(time.Minute, sessionsv1alpha1.HealthUnknown), every(2 * time.Minute), false, t0.Add(time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, next := healthDue(tc.health, tc.policy, t0)
			if due != tc.wantDue || !next.Equal(tc.wantNext) {
				t.Errorf("healthDue = %t, %s; want %t, %s", due, next, tc.wantDue, tc.wantNext)
			}
		})
	}
}

func TestClassifyCheck(t *testing.T) {
	sessions, usersMe := sessionsv1alpha1.HealthCheckSessions, sessionsv1alpha1.HealthCheckUsersMe
	for _, tc := range []struct {
		name     string
		err      error
		endpoint sessionsv1alpha1.HealthCheckEndpoint
		want     verdict
	}{
		{"answer", nil, sessions, verdictHealthy},
		{"revoked grant", &tidal.Error{Kind: tidal.GrantInvalid, HTTPStatus: 401, SubStatus: 11003}, sessions, verdictGone},
		{"expired access token", &tidal.Error{Kind: tidal.Transient, HTTPStatus: 401, SubStatus: 11003}, sessions, verdictTokenRejected},
		{"invalid access token", &tidal.Error{Kind: tidal.Transient, HTTPStatus: 401, SubStatus: 11002}, sessions, verdictTokenRejected},
		{"client revoked", &tidal.Error{Kind: tidal.ClientInvalid, HTTPStatus: 401, SubStatus: 8003}, sessions, verdictTokenRejected},
		{"developer app on /v1/sessions", &tidal.Error{Kind: tidal.Transient, HTTPStatus: 403, SubStatus: 6001}, sessions, verdictWrongEndpoint},
		{"403 from users/me", &tidal.Error{Kind: tidal.Transient, HTTPStatus: 403}, usersMe, verdictUnknown},
		{"outage", &tidal.Error{Kind: tidal.Transient, HTTPStatus: 503}, sessions, verdictUnknown},
		{"no answer", &tidal.Error{Kind: tidal.Transient}, sessions, verdictUnknown},
		{"not from TIDAL", errors.New("boom"), sessions, verdictUnknown},
	} {
		if got := classifyCheck(tc.err, tc.endpoint); got != tc.want {
			t.Errorf("%s: verdict %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestIdentityChanges(t *testing.T) {
	known := sessionsv1alpha1.TidalSessionStatus{UserID: "1", CountryCode: "NO", ClientID: "77"}
	for _, tc := range []struct {
		name  string
		known sessionsv1alpha1.TidalSessionStatus
		found sessionInfo
		want  []string
	}{
		{"same", known, sessionInfo{UserID: "1", CountryCode: "NO", ClientID: "77"}, nil},
		{"first check", sessionsv1alpha1.TidalSessionStatus{}, sessionInfo{UserID: "1", CountryCode: "NO"}, nil},
		{"users/me names no client", known, sessionInfo{UserID: "1", CountryCode: "NO"}, nil},
		{"country", known, sessionInfo{UserID: "1", CountryCode: "SE", ClientID: "77"}, []string{"country NO → SE"}},
		{"user and client", known, sessionInfo{UserID: "2", CountryCode: "NO", ClientID: "78"},
			[]string{"user 1 → 2", "client 77 → 78"}},
	} {
		got := identityChanges(tc.known, tc.found)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// healthyFixture returns a fixture whose session was refreshed at t0 and whose next check
// is due at t0 + 15m.
func healthyFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, newSession(), newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	f.drainEvents()
	f.clock.Step(defaultHealthInterval)
	return f
}

func healthyCondition(t *testing.T, f *fixture) *metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(f.session(t).Status.Conditions, sessionsv1alpha1.ConditionHealthy)
	if c == nil {
		t.Fatal("no Healthy condition")
	}
	return c
}

func TestPeriodicCheckRecordsTheSession(t *testing.T) {
	f := healthyFixture(t)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	s := f.session(t)
	h := s.Status.Health
	if f.tidal.checks != 2 || f.tidal.calls != 1 {
		t.Fatalf("%d checks and %d refreshes, want 2 and 1", f.tidal.checks, f.tidal.calls)
	}
	if f.tidal.checkedWith != canaryAccess {
		t.Error("the check did not use the output Secret's access token")
	}
	if h == nil || h.Result != sessionsv1alpha1.HealthHealthy || !h.LastCheckTime.Time.Equal(f.clock.Now()) ||
		!h.LastHealthyTime.Time.Equal(f.clock.Now()) || h.SessionID != "sess-1" || h.ClientName != "Test client" {
		t.Errorf("health = %+v", h)
	}
	if c := healthyCondition(t, f); c.Status != metav1.ConditionTrue || c.Reason != sessionsv1alpha1.ReasonHealthCheckPassed {
		t.Errorf("Healthy = %s/%s", c.Status, c.Reason)
	}
	if s.Status.UserID != "1001" || s.Status.CountryCode != "NO" || s.Status.ClientID != "77" {
		t.Errorf("identity = %s %s %s", s.Status.UserID, s.Status.CountryCode, s.Status.ClientID)
	}
	assertNoCanary(t, f, nil, f.drainEvents())
}

func TestIdentityChangeIsAnEvent(t *testing.T) {
	f := healthyFixture(t)
	f.tidal.identity = &tidal.SessionInfo{SessionID: "sess-1", UserID: "2002", CountryCode: "SE", ClientID: "77"}
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	s := f.session(t)
	if s.Status.UserID != "2002" || s.Status.CountryCode != "SE" || s.Status.Health.LastIdentityChangeTime == nil {
		t.Errorf("status after the change: user %s, country %s, change time %v", s.Status.UserID,
			s.Status.CountryCode, s.Status.Health.LastIdentityChangeTime)
	}
	evs := f.drainEvents()
	if !containsReason(evs, sessionsv1alpha1.ReasonIdentityChanged) || !strings.Contains(strings.Join(evs, "\n"), "user 1001 → 2002") {
		t.Errorf("events %q lack an IdentityChanged Event naming the change", evs)
	}
}

func TestRejectedAccessTokenIsRefreshedAndRechecked(t *testing.T) {
	f := healthyFixture(t)
	expired := &tidal.Error{Op: "get session", Kind: tidal.Transient, HTTPStatus: 401, SubStatus: 11003}
	f.tidal.checkErr = expired
	// The refresh's own lookup is the re-check; let it pass.
	calls := 0
	f.tidal.onRefresh = func() { calls++; f.tidal.checkErr = nil }
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	s := f.session(t)
	if calls != 1 || s.Status.RefreshCount != 2 || f.tidal.checks != 3 {
		t.Errorf("%d refreshes, count %d, %d checks; want an immediate refresh and a re-check", calls,
			s.Status.RefreshCount, f.tidal.checks)
	}
	if s.Status.Phase != sessionsv1alpha1.PhaseActive || s.Status.Health.Result != sessionsv1alpha1.HealthHealthy {
		t.Errorf("phase %s, health %s; want Active and Healthy", s.Status.Phase, s.Status.Health.Result)
	}
}

func TestGoneSessionNeedsANewLogin(t *testing.T) {
	f := healthyFixture(t)
	f.tidal.checkErr = &tidal.Error{Op: "get session", Kind: tidal.GrantInvalid, HTTPStatus: 401, SubStatus: 11003}
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	s := f.session(t)
	ready := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady)
	if s.Status.Phase != sessionsv1alpha1.PhaseReauthRequired || ready.Reason != sessionsv1alpha1.ReasonSessionGone ||
		!strings.Contains(ready.Message, "Log in again") {
		t.Errorf("phase %s, Ready %s %q", s.Status.Phase, ready.Reason, ready.Message)
	}
	if c := healthyCondition(t, f); c.Status != metav1.ConditionFalse || s.Status.Health.Result != sessionsv1alpha1.HealthUnhealthy {
		t.Errorf("Healthy %s, result %s; want False and Unhealthy", c.Status, s.Status.Health.Result)
	}
	calls, checks := f.tidal.calls, f.tidal.checks
	for range 3 {
		f.clock.Step(time.Hour)
		if _, err := f.reconcile(t); err != nil {
			t.Fatal(err)
		}
	}
	if f.tidal.calls != calls || f.tidal.checks != checks {
		t.Errorf("TIDAL asked again while waiting for a new login: %d refreshes, %d checks", f.tidal.calls-calls,
			f.tidal.checks-checks)
	}
	assertNoCanary(t, f, nil, f.drainEvents())
}

func TestFailedCheckChangesNothingElse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantMsg string
	}{
		{"outage", &tidal.Error{Op: "get session", Kind: tidal.Transient, HTTPStatus: 503}, "repeated"},
		{"developer app", &tidal.Error{Op: "get session", Kind: tidal.Transient, HTTPStatus: 403, SubStatus: 6001}, "UsersMe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyFixture(t)
			f.tidal.checkErr = tc.err
			res, err := f.reconcile(t)
			if err != nil {
				t.Fatal(err)
			}
			s := f.session(t)
			if s.Status.Phase != sessionsv1alpha1.PhaseActive || f.tidal.calls != 1 {
				t.Errorf("phase %s after %d refreshes; a failed check must not touch the session", s.Status.Phase, f.tidal.calls)
			}
			c := healthyCondition(t, f)
			if c.Status != metav1.ConditionUnknown || !strings.Contains(c.Message, tc.wantMsg) ||
				s.Status.Health.Result != sessionsv1alpha1.HealthUnknown {
				t.Errorf("Healthy %s %q, result %s", c.Status, c.Message, s.Status.Health.Result)
			}
			if res.RequeueAfter != maxUnknownRecheck {
				t.Errorf("requeue after %v, want %v", res.RequeueAfter, maxUnknownRecheck)
			}
		})
	}
}

func TestUsersMeEndpoint(t *testing.T) {
	s := newSession()
	s.Spec.HealthCheck.Endpoint = sessionsv1alpha1.HealthCheckUsersMe
	f := newFixture(t, s, newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	got := f.session(t)
	if f.tidal.usersMe != 1 || got.Status.Health.Result != sessionsv1alpha1.HealthHealthy || got.Status.UserID != "1001" {
		t.Errorf("users/me calls %d, health %+v, user %s", f.tidal.usersMe, got.Status.Health, got.Status.UserID)
	}
}
