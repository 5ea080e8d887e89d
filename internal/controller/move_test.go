package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

func renameOutput(t *testing.T, f *fixture, name string) {
	t.Helper()
	s := f.session(t)
	s.Spec.OutputSecret.Name = name
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func TestRenamedOutputSecretMovesTheToken(t *testing.T) {
	f := newFixture(t, newSession(), newCreds())
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	before := f.secret(t, "alice-token")
	f.drainEvents()

	f.clock.Step(time.Minute)
	renameOutput(t, f, "alice-token-v2")
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	moved := f.secret(t, "alice-token-v2")
	if string(moved.Data[sessionsv1alpha1.KeyAccessToken]) != string(before.Data[sessionsv1alpha1.KeyAccessToken]) ||
		moved.Annotations[refreshedAtAnnotation] != before.Annotations[refreshedAtAnnotation] {
		t.Error("the new Secret does not hold the token of the old one")
	}
	if f.tidal.calls != 1 {
		t.Errorf("TIDAL saw %d refreshes; a move needs none", f.tidal.calls)
	}
	err := f.c.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: "alice-token"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the old Secret is still there (get: %v)", err)
	}
	if got := f.session(t).Status.OutputSecretName; got != "alice-token-v2" {
		t.Errorf("status.outputSecretName = %q", got)
	}
	if evs := f.drainEvents(); !containsReason(evs, sessionsv1alpha1.ReasonOutputSecretMoved) {
		t.Errorf("no %s Event in %q", sessionsv1alpha1.ReasonOutputSecretMoved, evs)
	}
}

func TestRenameLeavesAnUnmanagedOldSecretAlone(t *testing.T) {
	s := newSession()
	s.Status.OutputSecretName = "someone-elses"
	other := &corev1.Secret{}
	other.Namespace, other.Name = testNamespace, "someone-elses"
	other.Data = map[string][]byte{"x": []byte("y")}
	f := newFixture(t, s, newCreds(), other)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got := f.secret(t, "someone-elses"); string(got.Data["x"]) != "y" {
		t.Error("an unmanaged Secret was changed")
	}
	if f.tidal.calls != 1 || f.session(t).Status.OutputSecretName != "alice-token" {
		t.Errorf("%d refreshes, output %q: the session should have written its own Secret", f.tidal.calls,
			f.session(t).Status.OutputSecretName)
	}
}
