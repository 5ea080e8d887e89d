package sessionops

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// needsLogin: ReauthRequired, device logins allowed, with the login given (nil: none yet).
func needsLogin(dl *sessionsv1alpha1.DeviceLoginStatus) func(*sessionsv1alpha1.TidalSession) {
	return func(s *sessionsv1alpha1.TidalSession) {
		failing(sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired, 1)(s)
		s.Spec.Reauth.DeviceLogin = true
		s.Status.DeviceLogin = dl
	}
}

func pendingLogin(code string) *sessionsv1alpha1.DeviceLoginStatus {
	return &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginPending,
		VerificationURI: "https://link.tidal.com/" + code, UserCode: code, ExpiresAt: tm(t0.Add(5 * time.Minute))}
}

func TestStartLogin(t *testing.T) {
	denied := &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginDenied, Message: "denied"}
	tests := []struct {
		name        string
		session     func(*sessionsv1alpha1.TidalSession)
		wantRequest bool
		wantErr     error
		wantText    string
	}{
		{"no login yet", needsLogin(nil), true, nil, "shows no device login yet"},
		{"ended login", needsLogin(denied), true, nil, "shows no device login yet"},
		{"pending login is reported, not restarted", needsLogin(pendingLogin("ABCD")), false, nil,
			"open https://link.tidal.com/ABCD and enter the code ABCD before 2026-12-04T10:05:00Z"},
		{"active session", active(t0), false, nil, "is active: it needs no login"},
		{"not allowed", failing(sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired, 1),
			false, ErrLoginNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, interceptor.Funcs{}, session(tt.session))
			l, err := StartLogin(context.Background(), c, key, t0)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			s := session()
			if err := c.Get(context.Background(), key, s); err != nil {
				t.Fatal(err)
			}
			got := s.Annotations[sessionsv1alpha1.LoginRequestAnnotation]
			if tt.wantRequest != (got == "2026-12-04T10:00:00Z") || l.Requested != got || s.Annotations["team"] != "audio" {
				t.Fatalf("annotation %q, Requested %q, annotations %v", got, l.Requested, s.Annotations)
			}
			if tt.wantText != "" && !strings.Contains(l.Text(), tt.wantText) {
				t.Fatalf("text %q", l.Text())
			}
			if tt.wantErr != nil && !strings.Contains(err.Error(), "spec.reauth.deviceLogin") {
				t.Fatalf("error %q does not say what to change", err)
			}
		})
	}

	if _, err := StartLogin(context.Background(), newClient(t, interceptor.Funcs{}), key, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing session: %v", err)
	}
	bad := key
	bad.Namespace = "Bad"
	if _, err := StartLogin(context.Background(), newClient(t, interceptor.Funcs{}), bad, t0); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
}

func TestWaitForLogin(t *testing.T) {
	PollInterval = 10 * time.Millisecond
	requested := "2026-12-04T10:00:00Z"

	// The stale ended login does not count; the one that answers the request does.
	funcs, _ := operatorAfter(t, 3, func(s *sessionsv1alpha1.TidalSession) {
		s.Status.LastLoginRequest = requested
		s.Status.DeviceLogin = pendingLogin("NEW1")
	})
	denied := &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginDenied}
	c := newClient(t, funcs, session(needsLogin(denied)))
	l, err := WaitForLogin(context.Background(), c, key, requested, 5*time.Second, func(l Login) bool {
		return l.Pending() || l.Ended() || l.Done()
	})
	if err != nil || !l.Pending() || l.UserCode != "NEW1" || !l.Answered {
		t.Fatalf("login %+v, err %v", l, err)
	}

	// Approval: the session turns Active and the login disappears.
	funcs, _ = operatorAfter(t, 2, func(s *sessionsv1alpha1.TidalSession) {
		active(t0)(s)
		s.Status.DeviceLogin = nil
	})
	c = newClient(t, funcs, session(needsLogin(pendingLogin("NEW1"))))
	l, err = WaitForLogin(context.Background(), c, key, "", 5*time.Second, Login.Done)
	if err != nil || !l.Done() || l.State != "" {
		t.Fatalf("login %+v, err %v", l, err)
	}

	// Nothing happens: the wait times out with the login as last read.
	c = newClient(t, interceptor.Funcs{}, session(needsLogin(pendingLogin("OLD1"))))
	l, err = WaitForLogin(context.Background(), c, key, "", 50*time.Millisecond, Login.Done)
	if !errors.Is(err, ErrTimedOut) || l.UserCode != "OLD1" || !strings.Contains(err.Error(), "no outcome of its device login") {
		t.Fatalf("login %+v, err %v", l, err)
	}

	// A deleted session ends the wait at once.
	c = newClient(t, interceptor.Funcs{})
	if _, err := WaitForLogin(context.Background(), c, key, "", time.Second, Login.Done); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing session: %v", err)
	}

	// The caller giving up is not the wait's timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c = newClient(t, interceptor.Funcs{}, session(needsLogin(nil)))
	if _, err := WaitForLogin(ctx, c, key, "", time.Second, Login.Done); errors.Is(err, ErrTimedOut) || err == nil {
		t.Fatalf("canceled: %v", err)
	}
}

func TestLoginText(t *testing.T) {
	ended := loginOf(session(needsLogin(&sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginExpired,
		Message: "Nobody approved the device login in time.", StartedAt: &metav1.Time{Time: t0}})), "")
	if !ended.Ended() || ended.Pending() || !strings.Contains(ended.Text(), "ended: Expired. Nobody approved") {
		t.Fatalf("ended login %+v: %q", ended, ended.Text())
	}
	// A pending login that does not answer the caller's request yet is not the caller's.
	unanswered := loginOf(session(needsLogin(pendingLogin("OLD1"))), "2026-12-04T10:00:00Z")
	if unanswered.Pending() || unanswered.Ended() {
		t.Fatalf("unanswered %+v", unanswered)
	}
	if unknown := loginOf(session(), ""); unknown.Phase != "Unknown" {
		t.Fatalf("phase %q", unknown.Phase)
	}
}
