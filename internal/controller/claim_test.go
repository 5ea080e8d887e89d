package controller

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// A second session pointed at another session's credentials Secret gets no token: its owner
// could read it from an output Secret of their own without being allowed to read Secrets.
func TestCredentialsServeOneSession(t *testing.T) {
	thief := newSession()
	thief.Name, thief.UID = "mallory", "uid-mallory"
	thief.Spec.OutputSecret.Name = "mallory-token"
	f := newFixture(t, newSession(), newCreds(), thief)
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got := f.secret(t, "alice-creds").Annotations[sessionsv1alpha1.CredentialsClaimAnnotation]; got != "uid-1" {
		t.Fatalf("claim = %q, want alice's UID", got)
	}

	thiefKey := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: testNamespace, Name: "mallory"}}
	res, err := f.r.Reconcile(context.Background(), thiefKey)
	if err != nil {
		t.Fatal(err)
	}
	got := &sessionsv1alpha1.TidalSession{}
	if err := f.c.Get(context.Background(), thiefKey.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	ready := meta.FindStatusCondition(got.Status.Conditions, sessionsv1alpha1.ConditionReady)
	if ready == nil || ready.Reason != sessionsv1alpha1.ReasonCredentialsInUse || !strings.Contains(ready.Message, "TidalSession alice") {
		t.Errorf("mallory's Ready = %+v, want CredentialsInUse naming alice", ready)
	}
	if f.tidal.calls != 1 || res.RequeueAfter != f.r.RecheckInterval {
		t.Errorf("TIDAL saw %d refreshes (want alice's only); requeue after %v", f.tidal.calls, res.RequeueAfter)
	}

	// Once alice is gone, her Secret may serve another session.
	if err := f.c.Delete(context.Background(), f.session(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Reconcile(context.Background(), thiefKey); err != nil {
		t.Fatal(err)
	}
	if got := f.secret(t, "alice-creds").Annotations[sessionsv1alpha1.CredentialsClaimAnnotation]; got != "uid-mallory" || f.tidal.calls != 2 {
		t.Errorf("claim %q after %d refreshes; the Secret of a deleted session should pass on", got, f.tidal.calls)
	}
	for _, e := range f.drainEvents() {
		if strings.Contains(e, canaryRefresh) || strings.Contains(e, canarySecret) || strings.Contains(e, canaryAccess) {
			t.Errorf("Event leaks a credential: %s", e)
		}
	}
}
