package controller

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// tidalapiFile is a session file as tidalapi's save_session_to_file writes it.
const tidalapiFile = `{"token_type": {"data": "Bearer"}, "session_id": {"data": "s-1"}, ` +
	`"access_token": {"data": "` + canaryAccess + `-old"}, "refresh_token": {"data": "` + canaryRefresh + `-file"}, ` +
	`"is_pkce": {"data": false}}`

// adoptingFixture has a session whose credentials Secret holds a session file under
// "session.json" and a client id, but no refresh_token key.
func adoptingFixture(t *testing.T, file string) *fixture {
	t.Helper()
	s := newSession()
	s.Spec.CredentialsSecretRef.SessionFileKey = "session.json"
	creds := newCreds()
	delete(creds.Data, "refresh_token")
	creds.Data["session.json"] = []byte(file)
	return newFixture(t, s, creds)
}

func TestAdoptsASessionFile(t *testing.T) {
	f := adoptingFixture(t, tidalapiFile)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.tidal.got.RefreshToken != canaryRefresh+"-file" || f.tidal.got.ClientID != testClientID {
		t.Errorf("refreshed with the wrong credentials (client %q)", f.tidal.got.ClientID)
	}
	if p := f.session(t).Status.Phase; p != sessionsv1alpha1.PhaseActive {
		t.Errorf("phase %s, want Active", p)
	}

	// A rotated token is stored under refresh_token, which wins over the file from then on.
	f.tidal.rotate = canaryRotated
	f.clock.Step(f.session(t).Status.NextRefreshTime.Sub(f.clock.Now()))
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	creds := f.secret(t, "alice-creds")
	if string(creds.Data["refresh_token"]) != canaryRotated || string(creds.Data["session.json"]) != tidalapiFile {
		t.Fatal("the rotated token was not stored beside an unchanged session file")
	}
	f.tidal.rotate = ""
	f.clock.Step(f.session(t).Status.NextRefreshTime.Sub(f.clock.Now()))
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.tidal.got.RefreshToken != canaryRotated {
		t.Error("the refresh after a rotation did not use the stored token")
	}
	assertNoCanary(t, f, nil, f.drainEvents())
}

func TestMalformedSessionFileIsRejected(t *testing.T) {
	for _, tc := range []struct {
		name, file, wantInMsg string
	}{
		{"not JSON", `{"refresh_token": ` + canaryRefresh, "not valid JSON"},
		{"no refresh token", `{"access_token": "` + canaryAccess + `"}`, "refresh_token"},
		{"empty", ``, "neither key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := adoptingFixture(t, tc.file)
			res, err := f.reconcile(t)
			if err != nil {
				t.Fatal(err)
			}
			s := f.session(t)
			ready := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady)
			if s.Status.Phase != sessionsv1alpha1.PhaseError || ready == nil ||
				!strings.Contains(ready.Message, tc.wantInMsg) || !strings.Contains(ready.Message, "session.json") {
				t.Errorf("phase %s, Ready %+v; want Error naming the key and %q", s.Status.Phase, ready, tc.wantInMsg)
			}
			if f.tidal.calls != 0 || res.RequeueAfter != f.r.RecheckInterval {
				t.Errorf("%d refreshes, requeue after %v; want none, and a look again after %v", f.tidal.calls,
					res.RequeueAfter, f.r.RecheckInterval)
			}
			out := &corev1.Secret{}
			if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: "alice-token"}, out); !apierrors.IsNotFound(err) {
				t.Errorf("an output Secret was written from a malformed file (get: %v)", err)
			}
			assertNoCanary(t, f, nil, f.drainEvents())
		})
	}
}

func TestSessionFileClientID(t *testing.T) {
	flat := `{"access_token": "` + canaryAccess + `", "refresh_token": "` + canaryRefresh + `-flat", "client_id": "fileClient1"}`
	f := adoptingFixture(t, flat)
	creds := f.secret(t, "alice-creds")
	delete(creds.Data, "client_id")
	if err := f.c.Update(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if f.tidal.got.ClientID != "fileClient1" || f.tidal.got.RefreshToken != canaryRefresh+"-flat" {
		t.Errorf("refreshed as client %q; want the file's client id", f.tidal.got.ClientID)
	}
}
