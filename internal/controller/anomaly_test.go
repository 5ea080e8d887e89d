package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// anotherUser is what TIDAL answers once the session belongs to someone else.
var anotherUser = &tidal.SessionInfo{SessionID: "sess-1", UserID: "2002", CountryCode: "NO", ClientID: "77"}

// A check that finds another user behind the session raises an anomaly under a binding; in
// Enforce mode it also quarantines the session until a person approves.
func TestIdentityChangeAnomaly(t *testing.T) {
	for _, tc := range []struct {
		name           string
		binding        *sessionsv1alpha1.BindingPolicy
		wantAnomaly    bool
		wantQuarantine bool
	}{
		{"no binding", nil, false, false},
		{"observe", &sessionsv1alpha1.BindingPolicy{Mode: sessionsv1alpha1.BindingObserve}, true, false},
		{"enforce", &sessionsv1alpha1.BindingPolicy{Mode: sessionsv1alpha1.BindingEnforce}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession()
			s.Spec.Binding = tc.binding
			f := newFixture(t, s, newCreds())
			f.mustReconcile(t)
			f.drainEvents()
			quarantines := securityCount(metrics.SecurityQuarantined)

			f.tidal.identity = anotherUser
			f.clock.Step(defaultHealthInterval)
			res, err := f.reconcile(t)
			if err != nil {
				t.Fatal(err)
			}
			s = f.session(t)
			anomaly := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionAnomaly)
			switch {
			case !tc.wantAnomaly && anomaly != nil:
				t.Errorf("Anomaly condition %+v without a binding", anomaly)
			case tc.wantAnomaly && (anomaly == nil || anomaly.Status != metav1.ConditionTrue ||
				anomaly.Reason != sessionsv1alpha1.ReasonIdentityChanged || !strings.Contains(anomaly.Message, "user")):
				t.Errorf("Anomaly %+v, want True with reason IdentityChanged naming the user", anomaly)
			}
			out := f.secret(t, "alice-token")
			if !tc.wantQuarantine {
				if s.Status.Phase != sessionsv1alpha1.PhaseActive || string(out.Data[sessionsv1alpha1.KeyAccessToken]) != canaryAccess {
					t.Errorf("phase %s, token withheld: an identity change quarantines only in Enforce mode", s.Status.Phase)
				}
				return
			}
			if res.RequeueAfter != 0 || s.Status.Phase != sessionsv1alpha1.PhaseQuarantined ||
				len(out.Data[sessionsv1alpha1.KeyAccessToken]) != 0 || s.Status.AccessTokenExpiresAt != nil {
				t.Fatalf("phase %s, requeue %v, token present %t; want a quarantine", s.Status.Phase, res.RequeueAfter,
					len(out.Data[sessionsv1alpha1.KeyAccessToken]) != 0)
			}
			ready := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady)
			if ready.Reason != sessionsv1alpha1.ReasonQuarantined || !strings.Contains(ready.Message, "user") ||
				!strings.Contains(s.Status.Binding.QuarantineReason, "another identity") {
				t.Errorf("Ready %+v, quarantine reason %q: neither says why", ready, s.Status.Binding.QuarantineReason)
			}
			if securityCount(metrics.SecurityQuarantined)-quarantines != 1 {
				t.Error("quarantine not counted")
			}

			// A later reconcile keeps the quarantine and its reason; no token is fetched.
			calls := f.tidal.calls
			f.clock.Step(2 * time.Hour)
			f.mustReconcile(t)
			s = f.session(t)
			if f.tidal.calls != calls || s.Status.Phase != sessionsv1alpha1.PhaseQuarantined ||
				!strings.Contains(readyMessage(s), "another identity") {
				t.Errorf("after 2h: %d refreshes, phase %s, Ready %q", f.tidal.calls-calls, s.Status.Phase, readyMessage(s))
			}

			// A person who has looked approves: a fresh token, and the new identity is the known one.
			s.Annotations = map[string]string{sessionsv1alpha1.BindingApprovalAnnotation: "2026-12-04T15:00:00Z"}
			if err := f.c.Update(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			f.mustReconcile(t)
			s = f.session(t)
			if s.Status.Phase != sessionsv1alpha1.PhaseActive || f.tidal.calls != calls+1 || s.Status.UserID != "2002" ||
				condition(s, sessionsv1alpha1.ConditionAnomaly).Status != metav1.ConditionFalse {
				t.Errorf("after approval: phase %s, %d refreshes, user %s, Anomaly %+v", s.Status.Phase,
					f.tidal.calls-calls, s.Status.UserID, condition(s, sessionsv1alpha1.ConditionAnomaly))
			}
			assertNoCanary(t, f, nil, f.drainEvents())
		})
	}
}

// The first token's own lookup already finds another identity: the token is never written.
func TestIdentityChangeOnRefreshWithholdsTheNewToken(t *testing.T) {
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), newCreds())
	f.mustReconcile(t)
	f.tidal.identity = anotherUser
	f.clock.Step(2 * time.Hour) // past expiry: the next reconcile refreshes
	f.mustReconcile(t)
	s := f.session(t)
	out := f.secret(t, "alice-token")
	if s.Status.Phase != sessionsv1alpha1.PhaseQuarantined || len(out.Data[sessionsv1alpha1.KeyAccessToken]) != 0 ||
		string(out.Data[sessionsv1alpha1.KeyTokenStatus]) != sessionsv1alpha1.TokenStatusQuarantined {
		t.Errorf("phase %s, token_status %q: the new token of another identity was written", s.Status.Phase,
			out.Data[sessionsv1alpha1.KeyTokenStatus])
	}
}

// TIDAL rejects a refresh token it had issued to the operator and nobody changed since:
// reported as possible theft, not as routine expiry.
func TestRejectedIssuedTokenIsPossibleTheft(t *testing.T) {
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingObserve), newCreds())
	f.tidal.rotate = canaryRotated
	f.mustReconcile(t)
	s := f.session(t)
	if s.Status.IssuedTokenVersion == "" || s.Status.IssuedTokenVersion != f.secret(t, "alice-creds").ResourceVersion {
		t.Fatalf("issuedTokenVersion %q, Secret at %q", s.Status.IssuedTokenVersion, f.secret(t, "alice-creds").ResourceVersion)
	}
	f.drainEvents()

	reused := securityCount(metrics.SecurityRefreshTokenReused)
	f.tidal.rotate = ""
	f.tidal.err = errRejected
	f.clock.Step(2 * time.Hour)
	f.mustReconcile(t)
	s = f.session(t)
	ready := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady)
	if s.Status.Phase != sessionsv1alpha1.PhaseReauthRequired || ready.Reason != sessionsv1alpha1.ReasonRefreshTokenReused ||
		!strings.Contains(ready.Message, "Possible theft") {
		t.Errorf("phase %s, Ready %+v; want ReauthRequired with RefreshTokenReused", s.Status.Phase, ready)
	}
	if a := condition(s, sessionsv1alpha1.ConditionAnomaly); a.Status != metav1.ConditionTrue ||
		a.Reason != sessionsv1alpha1.ReasonRefreshTokenReused {
		t.Errorf("Anomaly %+v", a)
	}
	if securityCount(metrics.SecurityRefreshTokenReused)-reused != 1 {
		t.Error("refresh_token_reused not counted")
	}
	evs := f.drainEvents()
	if !containsReason(evs, sessionsv1alpha1.ReasonRefreshTokenReused) {
		t.Errorf("events %q lack RefreshTokenReused", evs)
	}
	assertNoCanary(t, f, nil, evs)
}

// A refresh token a person put in the Secret, rejected: routine, whatever was issued before.
func TestRejectedTokenOfAPersonIsRoutine(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.rotate = canaryRotated
	f.mustReconcile(t)

	creds := f.secret(t, "alice-creds")
	creds.Data["refresh_token"] = []byte("a-token-from-a-new-login")
	if err := f.c.Update(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
	reused := securityCount(metrics.SecurityRefreshTokenReused)
	f.tidal.rotate = ""
	f.tidal.err = errRejected
	f.clock.Step(2 * time.Hour)
	f.mustReconcile(t)
	s := f.session(t)
	if readyReason(s) != sessionsv1alpha1.ReasonReauthRequired || securityCount(metrics.SecurityRefreshTokenReused) != reused {
		t.Errorf("Ready reason %s; a token a person stored is routine", readyReason(s))
	}
	if meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionAnomaly) != nil {
		t.Error("Anomaly condition without a binding")
	}
}

func TestIssuedTokenRejected(t *testing.T) {
	for _, tc := range []struct {
		issued, used string
		want         bool
	}{
		{"", "", false},
		{"", "7", false},
		{"7", "7", true},
		{"7", "9", false},
	} {
		st := sessionsv1alpha1.TidalSessionStatus{IssuedTokenVersion: tc.issued, CredentialsVersion: tc.used}
		if got := issuedTokenRejected(st); got != tc.want {
			t.Errorf("issued %q, used %q: %t, want %t", tc.issued, tc.used, got, tc.want)
		}
	}
}

func readyMessage(s *sessionsv1alpha1.TidalSession) string {
	if c := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

// Two pods reported in one reconcile get an Event each: the recorder folds Events of the same
// session and reason unless their related objects differ, and keeps only the first text.
func TestBindingEventsNameEachPod(t *testing.T) {
	clientset := k8sfake.NewClientset()
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: clientset.EventsV1()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broadcaster.StartRecordingToSink(ctx.Done())
	defer broadcaster.Shutdown()

	f := newFixture(t, boundSession(sessionsv1alpha1.BindingObserve), newCreds())
	f.r.Recorder = broadcaster.NewRecorder(f.r.Scheme, "tidal-session-operator")
	s := f.session(t)
	var evs []bindingEvent
	for _, pod := range []string{"rogue-1", "rogue-2"} {
		evs = append(evs, violationEvent(violation{c: cons(pod, "intruder", "Pod", pod),
			typ: sessionsv1alpha1.ViolationConsumerMismatch}, nil))
	}
	f.r.emitBindingEvents(ctx, s, evs)

	var notes []string
	deadline := time.Now().Add(5 * time.Second)
	for len(notes) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		list, err := clientset.EventsV1().Events(testNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		notes = notes[:0]
		for _, e := range list.Items {
			notes = append(notes, e.Note)
		}
	}
	slices.Sort(notes)
	if len(notes) != 2 || !strings.Contains(notes[0], "pod rogue-1 ") || !strings.Contains(notes[1], "pod rogue-2 ") {
		t.Errorf("Events %q; want one naming each pod", notes)
	}
}

// An approval annotation left on the session from an earlier binding approves nothing when a
// binding is set again.
func TestOldApprovalDoesNotApproveANewBinding(t *testing.T) {
	s := newSession()
	s.Annotations = map[string]string{sessionsv1alpha1.BindingApprovalAnnotation: "2026-12-04T12:00:00Z"}
	rs := deploymentRS("mcp-5d4f8b", "mcp")
	f := newFixture(t, s, newCreds(), rs, consumerPod("mcp-5d4f8b-x1", "mcp", rs), consumerPod("rogue", "intruder", nil))
	f.mustReconcile(t)

	s = f.session(t)
	s.Spec.Binding = &sessionsv1alpha1.BindingPolicy{Mode: sessionsv1alpha1.BindingEnforce,
		Allowed: &sessionsv1alpha1.AllowedConsumers{ServiceAccounts: []string{"mcp"}}}
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(t)
	s = f.session(t)
	if s.Status.Phase != sessionsv1alpha1.PhaseQuarantined || len(s.Status.Binding.Bound) != 1 ||
		s.Status.Binding.LastApproval != "2026-12-04T12:00:00Z" || containsReason(f.drainEvents(), sessionsv1alpha1.ReasonBindingApproved) {
		t.Errorf("phase %s, binding %+v: the old annotation approved the rogue pod", s.Status.Phase, s.Status.Binding)
	}
}

// A session waiting for its credentials still has consumers, and a token in its Secret: they
// are judged all the same.
func TestBindingJudgedWhileCredentialsAreMissing(t *testing.T) {
	rs := deploymentRS("mcp-5d4f8b", "mcp")
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), newCreds(), rs, consumerPod("mcp-5d4f8b-x1", "mcp", rs))
	f.firstToken(t)
	if err := f.c.Delete(context.Background(), f.secret(t, "alice-creds")); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(t)
	if readyReason(f.session(t)) != sessionsv1alpha1.ReasonCredentialsMissing {
		t.Fatalf("Ready reason %s, want CredentialsMissing", readyReason(f.session(t)))
	}

	f.create(t, consumerPod("rogue", "intruder", nil))
	f.mustReconcile(t)
	s := f.session(t)
	if s.Status.Phase != sessionsv1alpha1.PhaseQuarantined ||
		len(f.secret(t, "alice-token").Data[sessionsv1alpha1.KeyAccessToken]) != 0 {
		t.Errorf("phase %s; a rogue consumer of a session without credentials went unjudged", s.Status.Phase)
	}
}

// Trust on first use waits for the session's first token: a pod that names the output Secret
// while the session has no credentials yet is not learned alone, and the real workload that
// comes with the credentials is not reported.
func TestFirstUseWaitsForTheFirstToken(t *testing.T) {
	rs := deploymentRS("mcp-5d4f8b", "mcp")
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), rs, consumerPod("early", "squatter", nil))
	f.mustReconcile(t)
	if b := f.session(t).Status.Binding; b != nil && len(b.Bound) > 0 {
		t.Fatalf("bound %+v before the session had a token", b.Bound)
	}
	f.create(t, newCreds(), consumerPod("mcp-5d4f8b-x1", "mcp", rs))
	f.firstToken(t)
	s := f.session(t)
	if s.Status.Phase != sessionsv1alpha1.PhaseActive || len(s.Status.Binding.Bound) != 2 || len(s.Status.Binding.Violators) != 0 {
		t.Errorf("phase %s, binding %+v; want both consumers present at the first token bound", s.Status.Phase,
			s.Status.Binding)
	}
}

// A quarantine cancels a device login under way: it would not be polled, and its code would
// stay in status.
func TestQuarantineCancelsADeviceLogin(t *testing.T) {
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), newCreds())
	s := f.session(t)
	now := metav1.NewTime(t0)
	s.Status.Binding = &sessionsv1alpha1.BindingStatus{QuarantinedAt: &now, QuarantineReason: "pod rogue does not match"}
	s.Status.DeviceLogin = &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginPending}
	err := f.r.enforceQuarantine(context.Background(), s, nil)
	if _, ok := asTerminal(err); !ok {
		t.Fatalf("err %v, want the terminal quarantine", err)
	}
	if s.Status.DeviceLogin != nil {
		t.Errorf("status.deviceLogin %+v kept through the quarantine", s.Status.DeviceLogin)
	}
	if evs := f.drainEvents(); !slices.ContainsFunc(evs, func(e string) bool { return strings.Contains(e, "device login") }) {
		t.Errorf("events %q do not say the login was cancelled", evs)
	}

	// A login that has ended (denied, expired) is kept: it waits for a person's request, and
	// nothing was under way to cancel.
	s.Status.DeviceLogin = &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginDenied}
	_ = f.r.enforceQuarantine(context.Background(), s, nil)
	if s.Status.DeviceLogin == nil || len(f.drainEvents()) != 0 {
		t.Errorf("an ended login was cleared, or said to be cancelled")
	}
}

func TestAwaitNewCredentials(t *testing.T) {
	reauth := func(phase sessionsv1alpha1.Phase) *sessionsv1alpha1.TidalSession {
		s := newSession()
		s.Status.Phase, s.Status.CredentialsVersion = phase, "7"
		s.Status.Conditions = []metav1.Condition{{Type: sessionsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: sessionsv1alpha1.ReasonRefreshTokenReused, Message: "Possible theft: ..."}}
		return s
	}
	for _, tc := range []struct {
		name       string
		phase      sessionsv1alpha1.Phase
		version    string
		sameToken  bool
		wantReason string // empty: go ahead and ask TIDAL
	}{
		{"waiting, Secret unchanged", sessionsv1alpha1.PhaseReauthRequired, "7", false, sessionsv1alpha1.ReasonRefreshTokenReused},
		{"waiting, Secret changed", sessionsv1alpha1.PhaseReauthRequired, "8", false, ""},
		{"waiting, Secret changed but the same token", sessionsv1alpha1.PhaseReauthRequired, "8", true, sessionsv1alpha1.ReasonRefreshTokenReused},
		{"active", sessionsv1alpha1.PhaseActive, "7", false, ""},
		{"after a quarantine, the rejected token", sessionsv1alpha1.PhaseQuarantined, "7", true, sessionsv1alpha1.ReasonReauthRequired},
	} {
		err := awaitNewCredentials(reauth(tc.phase), tc.version, tc.sameToken, time.Minute)
		w, waiting := asWait(err)
		switch {
		case tc.wantReason == "" && err != nil:
			t.Errorf("%s: %v, want to go ahead", tc.name, err)
		case tc.wantReason != "" && (!waiting || w.reason != tc.wantReason || w.phase != sessionsv1alpha1.PhaseReauthRequired):
			t.Errorf("%s: %v, want to wait in ReauthRequired with %s", tc.name, err, tc.wantReason)
		}
	}
}

// A suspended session keeps its last token in the Secret, so its consumers are still judged.
func TestSuspendedSessionIsJudged(t *testing.T) {
	rs := deploymentRS("mcp-5d4f8b", "mcp")
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), newCreds(), rs, consumerPod("mcp-5d4f8b-x1", "mcp", rs))
	f.firstToken(t)
	s := f.session(t)
	s.Spec.Suspend = true
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(t)
	if p := f.session(t).Status.Phase; p != sessionsv1alpha1.PhaseSuspended {
		t.Fatalf("phase %s, want Suspended", p)
	}
	f.create(t, consumerPod("rogue", "intruder", nil))
	f.mustReconcile(t)
	if p := f.session(t).Status.Phase; p != sessionsv1alpha1.PhaseQuarantined ||
		len(f.secret(t, "alice-token").Data[sessionsv1alpha1.KeyAccessToken]) != 0 {
		t.Errorf("phase %s; a rogue consumer of a suspended session went unjudged", p)
	}
}
