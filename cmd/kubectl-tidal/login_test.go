package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
)

// needsLogin returns the session ns/name in ReauthRequired, allowing device logins, with the
// login given.
func needsLogin(dl *sessionsv1alpha1.DeviceLoginStatus) *sessionsv1alpha1.TidalSession {
	s := session(testNamespace, "alice")
	s.Spec.Reauth.DeviceLogin = true
	s.Status.Phase = sessionsv1alpha1.PhaseReauthRequired
	s.Status.Conditions[0].Status, s.Status.Conditions[0].Reason = metav1.ConditionFalse, sessionsv1alpha1.ReasonReauthRequired
	s.Status.DeviceLogin = dl
	return s
}

func pending(code string) *sessionsv1alpha1.DeviceLoginStatus {
	return &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginPending,
		VerificationURI: "https://link.tidal.com/" + code, UserCode: code, ExpiresAt: &metav1.Time{Time: expiresAt}}
}

// loginOperator plays the operator: a login request gets a pending login with code CODE1; the
// given status changes follow on later reads, one per read from the read numbered at.
func loginOperator(t *testing.T, at int32, later ...func(*sessionsv1alpha1.TidalSession)) *interceptor.Funcs {
	var reads atomic.Int32
	apply := func(ctx context.Context, c client.WithWatch, key client.ObjectKey, change func(*sessionsv1alpha1.TidalSession)) error {
		s := &sessionsv1alpha1.TidalSession{}
		if err := c.Get(ctx, key, s); err != nil {
			return err
		}
		change(s)
		return c.Status().Update(ctx, s)
	}
	return &interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if err := c.Patch(ctx, obj, p, opts...); err != nil {
				return err
			}
			return apply(ctx, c, client.ObjectKeyFromObject(obj), func(s *sessionsv1alpha1.TidalSession) {
				s.Status.LastLoginRequest = s.Annotations[sessionsv1alpha1.LoginRequestAnnotation]
				s.Status.DeviceLogin = pending("CODE1")
			})
		},
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if n := reads.Add(1) - at; n >= 0 && int(n) < len(later) {
				if err := apply(ctx, c, key, later[n]); err != nil {
					t.Errorf("operator: %v", err)
				}
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}
}

func approved(s *sessionsv1alpha1.TidalSession) {
	s.Status.Phase = sessionsv1alpha1.PhaseActive
	s.Status.DeviceLogin = nil
}

func TestLoginStartsPrintsAndWaits(t *testing.T) {
	sessionops.PollInterval = 10 * time.Millisecond
	ended := &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginExpired}
	// The operator restarts mid-login (a new code) before the person approves.
	c := newFakeClient(loginOperator(t, 4, func(s *sessionsv1alpha1.TidalSession) { s.Status.DeviceLogin = pending("CODE2") },
		func(*sessionsv1alpha1.TidalSession) {}, approved), needsLogin(ended))
	r := execute(t, c, "", "login", "alice", "-n", testNamespace)
	if r.err != nil {
		t.Fatalf("login: %v\n%s", r.err, r.stderr)
	}
	want := "open https://link.tidal.com/CODE1 and enter the code CODE1 before 2026-12-04T19:46:40Z"
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "enter the code CODE2") ||
		!strings.HasSuffix(r.stdout, "tidalsession.sessions.tidal-mcp.dev/alice logged in: phase Active\n") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	s := &sessionsv1alpha1.TidalSession{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: "alice"}, s); err != nil ||
		s.Annotations[sessionsv1alpha1.LoginRequestAnnotation] == "" {
		t.Fatalf("no login request written: %v %v", err, s.Annotations)
	}
}

func TestLoginFollowsARunningLogin(t *testing.T) {
	sessionops.PollInterval = 10 * time.Millisecond
	funcs := loginOperator(t, 3, approved)
	funcs.Patch = func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
		t.Error("a running login was restarted")
		return nil
	}
	c := newFakeClient(funcs, needsLogin(pending("RUN1")))
	r := execute(t, c, "", "login", "alice", "-n", testNamespace)
	if r.err != nil || strings.Count(r.stdout, "enter the code RUN1") != 1 || !strings.Contains(r.stdout, "logged in") {
		t.Fatalf("err %v, stdout:\n%s", r.err, r.stdout)
	}
}

func TestLoginFails(t *testing.T) {
	sessionops.PollInterval = 10 * time.Millisecond
	denied := func(s *sessionsv1alpha1.TidalSession) {
		s.Status.DeviceLogin = &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginDenied,
			Message: "The device login was denied."}
	}
	tests := []struct {
		name    string
		c       client.Client
		args    []string
		wantErr string
	}{
		{"denied", newFakeClient(loginOperator(t, 3, denied), needsLogin(nil)), nil, "ended: Denied. The device login was denied."},
		{"times out", newFakeClient(nil, needsLogin(pending("SLOW1"))), []string{"--timeout", "100ms"}, "no outcome of its device login"},
		{"active", newFakeClient(nil, session(testNamespace, "alice")), nil, "is active: it needs no login"},
		{"not allowed", newFakeClient(nil, notAllowed()), nil, "set spec.reauth.deviceLogin to true"},
		{"bad timeout", newFakeClient(nil), []string{"--timeout", "0s"}, "--timeout must be positive"},
		{"missing", newFakeClient(nil), nil, "no TidalSession"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := execute(t, tt.c, "", append([]string{"login", "alice", "-n", testNamespace}, tt.args...)...)
			out := r.stdout + r.stderr
			if !strings.Contains(out, tt.wantErr) {
				t.Fatalf("err %v, output:\n%s", r.err, out)
			}
		})
	}
}

func notAllowed() *sessionsv1alpha1.TidalSession {
	s := needsLogin(nil)
	s.Spec.Reauth.DeviceLogin = false
	return s
}
