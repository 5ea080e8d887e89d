package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

var (
	errNoAnswer = &tidal.Error{Op: "refresh token", Kind: tidal.Transient, Cause: "connection closed before an answer"}
	errRejected = &tidal.Error{Op: "refresh token", Kind: tidal.GrantInvalid, Code: "invalid_grant", HTTPStatus: 400}
)

func TestAnswered(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{errNoAnswer, false},
		{&tidal.Error{Kind: tidal.Transient, HTTPStatus: 503}, true},
		{errRejected, true},
		{errors.New("not from TIDAL"), false},
	} {
		if got := answered(tc.err); got != tc.want {
			t.Errorf("answered(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
}

// wantLostToken checks that the session asks for a new login and says the rotated token was
// lost, and that it does not ask TIDAL again with the same token.
func wantLostToken(t *testing.T, f *fixture, lostAt time.Time) {
	t.Helper()
	s := f.session(t)
	ready := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady)
	if s.Status.Phase != sessionsv1alpha1.PhaseReauthRequired || ready == nil ||
		ready.Reason != sessionsv1alpha1.ReasonRefreshTokenLost {
		t.Fatalf("phase %s, Ready %+v; want ReauthRequired with reason %s", s.Status.Phase, ready,
			sessionsv1alpha1.ReasonRefreshTokenLost)
	}
	if !strings.Contains(ready.Message, lostAt.Format(time.RFC3339)) || !strings.Contains(ready.Message, "Log in again") {
		t.Errorf("message %q does not say when the answer was lost and what to do", ready.Message)
	}
	if s.Status.RefreshStartedAt != nil {
		t.Error("TIDAL answered, yet status still says an answer is awaited")
	}
	calls := f.tidal.calls
	for range 3 {
		f.clock.Step(time.Hour)
		if _, err := f.reconcile(t); err != nil {
			t.Fatal(err)
		}
	}
	if f.tidal.calls != calls {
		t.Errorf("TIDAL asked %d more times with the rejected token; want none", f.tidal.calls-calls)
	}
	if r := meta.FindStatusCondition(f.session(t).Status.Conditions, sessionsv1alpha1.ConditionReady); r.Reason != sessionsv1alpha1.ReasonRefreshTokenLost {
		t.Errorf("reason changed to %s while waiting for a new login", r.Reason)
	}
	assertNoCanary(t, f, nil, f.drainEvents())
}

// The answer to a refresh is lost on the way; TIDAL rotated the token in it and now rejects
// the old one.
func TestLostAnswerThenRejected(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.err = errNoAnswer
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	s := f.session(t)
	if s.Status.RefreshStartedAt == nil || !s.Status.RefreshStartedAt.Time.Equal(t0) {
		t.Fatalf("refreshStartedAt = %v, want %v: the answer never arrived", s.Status.RefreshStartedAt, t0)
	}
	if s.Status.Phase != sessionsv1alpha1.PhasePending {
		t.Errorf("phase %s after one lost answer, want Pending (retried)", s.Status.Phase)
	}

	f.clock.Step(time.Minute)
	f.tidal.err = errRejected
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	wantLostToken(t, f, t0)
}

// The operator stops after TIDAL answered with a rotated token but before it was stored:
// here the store fails, which leaves the same state a crash would.
func TestRotatedTokenNotStoredThenRejected(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.rotate = canaryRotated
	f.r.Client = interceptor.NewClient(f.c.(client.WithWatch), interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if s, ok := obj.(*corev1.Secret); ok && string(s.Data["refresh_token"]) == canaryRotated {
				return errors.New("the operator stopped")
			}
			return c.Update(ctx, obj, opts...)
		},
	})
	if _, err := f.reconcile(t); err == nil {
		t.Fatal("a failed store of the rotated token was not an error")
	}
	if f.session(t).Status.RefreshStartedAt == nil {
		t.Fatal("status does not say that an answer was awaited")
	}

	f.r.Client = f.c
	f.tidal.rotate = ""
	f.tidal.err = errRejected
	f.clock.Step(time.Minute)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	wantLostToken(t, f, t0)
}

// An answer that arrived, even an error, clears the record; a rejection then is a plain
// ReauthRequired.
func TestAnsweredFailureClearsTheRecord(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.Transient, HTTPStatus: 503}
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.session(t).Status.RefreshStartedAt != nil {
		t.Fatal("a 503 answer left refreshStartedAt set")
	}
	f.clock.Step(time.Minute)
	f.tidal.err = errRejected
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	ready := meta.FindStatusCondition(f.session(t).Status.Conditions, sessionsv1alpha1.ConditionReady)
	if ready.Reason != sessionsv1alpha1.ReasonReauthRequired {
		t.Errorf("reason %s, want %s: no answer was lost", ready.Reason, sessionsv1alpha1.ReasonReauthRequired)
	}
}
