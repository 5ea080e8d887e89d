package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
)

// reauthSession is a session that needs a new login and allows device logins.
func reauthSession(dl *sessionsv1alpha1.DeviceLoginStatus) *sessionsv1alpha1.TidalSession {
	s := newSession("music", "alice", sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired)
	s.Spec.Reauth.DeviceLogin = true
	s.Status.DeviceLogin = dl
	return s
}

// loginOperatorFake answers a login request the way the operator does: a pending login
// with a link and a code, recorded as the answer to the request.
func loginOperatorFake() interceptor.Funcs {
	return interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if err := c.Patch(ctx, obj, p, opts...); err != nil {
				return err
			}
			s := &sessionsv1alpha1.TidalSession{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), s); err != nil {
				return err
			}
			s.Status.LastLoginRequest = s.Annotations[sessionsv1alpha1.LoginRequestAnnotation]
			s.Status.DeviceLogin = &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginPending,
				VerificationURI: "https://link.tidal.com/WXYZ1", UserCode: "WXYZ1",
				ExpiresAt: &metav1.Time{Time: t0.Add(5 * time.Minute)}}
			return c.Status().Update(ctx, s)
		},
	}
}

func TestLoginStartsAndReturnsLinkAndCode(t *testing.T) {
	f := start(t, defaultTools(), loginOperatorFake(), reauthSession(nil), credentials("music", "alice-creds"))
	res, text := call(t, f, toolLogin, map[string]any{"name": "alice"})
	if res.IsError || !strings.Contains(text, "open https://link.tidal.com/WXYZ1 and enter the code WXYZ1 before 2026-12-04T10:05:00Z") {
		t.Fatalf("result %v: %s", res.IsError, text)
	}
	var l sessionops.Login
	structured, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(structured, &l); err != nil || l.UserCode != "WXYZ1" || l.Requested != "2026-12-04T10:00:00Z" || !l.Answered {
		t.Fatalf("structured %s (%v)", structured, err)
	}
	if *f.patches != 1 || !strings.Contains(f.logs.String(), "tool=tidal_login") {
		t.Fatalf("patches %d, logs %s", *f.patches, f.logs.String())
	}
}

func TestLoginReportsTheRunningLogin(t *testing.T) {
	running := &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginPending,
		VerificationURI: "https://link.tidal.com/RUN1", UserCode: "RUN1", ExpiresAt: &metav1.Time{Time: t0.Add(time.Minute)}}
	f := start(t, defaultTools(), interceptor.Funcs{}, reauthSession(running))
	res, text := call(t, f, toolLogin, map[string]any{"name": "alice"})
	if res.IsError || !strings.Contains(text, "enter the code RUN1") || *f.patches != 0 {
		t.Fatalf("result %v, patches %d: %s", res.IsError, *f.patches, text)
	}
}

func TestLoginWhenNotNeededOrNotAllowed(t *testing.T) {
	f := start(t, defaultTools(), interceptor.Funcs{},
		newSession("music", "alice", sessionsv1alpha1.PhaseActive, sessionsv1alpha1.ReasonTokenValid),
		newSession("music", "bob", sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired))
	if res, text := call(t, f, toolLogin, map[string]any{"name": "alice"}); res.IsError || !strings.Contains(text, "needs no login") {
		t.Fatalf("active: %v %s", res.IsError, text)
	}
	if res, text := call(t, f, toolLogin, map[string]any{"name": "bob"}); !res.IsError || !strings.Contains(text, "spec.reauth.deviceLogin") {
		t.Fatalf("not allowed: %v %s", res.IsError, text)
	}
	if res, text := call(t, f, toolLogin, map[string]any{"name": "carol"}); !res.IsError || !strings.Contains(text, "no TidalSession") {
		t.Fatalf("missing: %v %s", res.IsError, text)
	}
	if res, text := call(t, f, toolLogin, map[string]any{"name": "Bad Name"}); !res.IsError || !strings.Contains(text, "session name") {
		t.Fatalf("bad name: %v %s", res.IsError, text)
	}
	if *f.patches != 0 {
		t.Fatalf("patched %d times", *f.patches)
	}
}

func TestLoginReportsAnEndedAttempt(t *testing.T) {
	// The operator answers the request, but TIDAL refuses the client: the tool says so.
	funcs := loginOperatorFake()
	answer := funcs.Patch
	funcs.Patch = func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
		if err := answer(ctx, c, obj, p, opts...); err != nil {
			return err
		}
		s := &sessionsv1alpha1.TidalSession{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), s); err != nil {
			return err
		}
		s.Status.DeviceLogin = &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginFailed,
			Message: "TIDAL refused the device login (invalid_client)."}
		return c.Status().Update(ctx, s)
	}
	f := start(t, defaultTools(), funcs, reauthSession(&sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginDenied}))
	res, text := call(t, f, toolLogin, map[string]any{"name": "alice"})
	if !res.IsError || !strings.Contains(text, "ended: Failed") || !strings.Contains(text, "invalid_client") {
		t.Fatalf("result %v: %s", res.IsError, text)
	}
}
