package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// callerPod is a running pod of the test namespace with the given ServiceAccount.
func callerPod(name, sa string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name},
		Spec: corev1.PodSpec{ServiceAccountName: sa}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

func TestDecideTokenCaller(t *testing.T) {
	observe := &sessionsv1alpha1.BindingPolicy{Mode: sessionsv1alpha1.BindingObserve}
	quarantined := boundTo(mcpPod)
	quarantined.QuarantinedAt = &metav1.Time{Time: t0.Add(-time.Minute)}
	bound := boundTo(mcpPod)
	saOnly, _ := allowedMatcher(&sessionsv1alpha1.AllowedConsumers{ServiceAccounts: []string{"mcp"}})
	pod := callerPod(mcpRolled.pod, "mcp")
	terminating := pod.DeepCopy()
	terminating.DeletionTimestamp = &metav1.Time{Time: t0}
	finished := pod.DeepCopy()
	finished.Status.Phase = corev1.PodSucceeded
	elsewhere := pod.DeepCopy()
	elsewhere.Namespace = "other"

	for _, tc := range []struct {
		name        string
		in          tokenCallerInput
		wantAllowed bool
		// wantReason is a part of the refusal's reason.
		wantReason string
	}{
		{name: "bound fingerprint, another pod of the same workload (a rollout)",
			in:          tokenCallerInput{policy: observe, status: &bound, pod: pod, caller: &mcpRolled},
			wantAllowed: true},
		{name: "fingerprint not bound, allowed by spec",
			in: tokenCallerInput{policy: observe, status: &sessionsv1alpha1.BindingStatus{}, allowed: saOnly, pod: pod,
				caller: &mcpRolled},
			wantAllowed: true},
		{name: "fingerprint not bound, allowed by spec, no status yet",
			in:          tokenCallerInput{policy: observe, allowed: saOnly, pod: pod, caller: &mcpRolled},
			wantAllowed: true},
		{name: "a bound workload under another ServiceAccount",
			in:         tokenCallerInput{policy: observe, status: &bound, pod: pod, caller: &mcpNewSA},
			wantReason: "ServiceAccount intruder, fingerprint " + mcpNewSA.fp + ") is not bound"},
		{name: "allowed matches not the pod",
			in:         tokenCallerInput{policy: observe, status: &bound, allowed: saOnly, pod: pod, caller: &rogue},
			wantReason: "is not bound to the session"},
		{name: "nothing bound yet: no trust on first use",
			in:         tokenCallerInput{policy: observe, status: &sessionsv1alpha1.BindingStatus{}, pod: pod, caller: &mcpPod},
			wantReason: "is not bound to the session"},
		{name: "no binding",
			in:         tokenCallerInput{pod: pod, caller: &mcpPod},
			wantReason: "no spec.binding"},
		{name: "quarantined, even for a bound pod",
			in:         tokenCallerInput{policy: observe, status: &quarantined, pod: pod, caller: &mcpPod},
			wantReason: "quarantined since 2026-12-04T09:59:00Z"},
		{name: "another namespace",
			in:         tokenCallerInput{policy: observe, status: &bound, pod: elsewhere},
			wantReason: "not in the session's namespace"},
		{name: "terminating",
			in:         tokenCallerInput{policy: observe, status: &bound, pod: terminating, caller: &mcpPod},
			wantReason: "is terminating"},
		{name: "finished",
			in:         tokenCallerInput{policy: observe, status: &bound, pod: finished, caller: &mcpPod},
			wantReason: "has finished (phase Succeeded)"},
		{name: "not fingerprinted",
			in:         tokenCallerInput{policy: observe, status: &bound, pod: pod},
			wantReason: "has no fingerprint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.sessionNamespace = testNamespace
			v := decideTokenCaller(tc.in)
			if v.Allowed != tc.wantAllowed {
				t.Fatalf("allowed %v, want %v (reason %q)", v.Allowed, tc.wantAllowed, v.Reason)
			}
			if tc.wantAllowed != (v.Reason == "") {
				t.Errorf("reason %q with allowed %v", v.Reason, v.Allowed)
			}
			if !strings.Contains(v.Reason, tc.wantReason) {
				t.Errorf("reason %q lacks %q", v.Reason, tc.wantReason)
			}
			if tc.in.caller != nil && v.Fingerprint != tc.in.caller.fp {
				t.Errorf("fingerprint %q, want the caller's", v.Fingerprint)
			}
		})
	}
}

// JudgeTokenCaller resolves the pod past its ReplicaSet, as the binding step does, so a pod of
// a bound Deployment is allowed whatever its ReplicaSet; a lookup that fails is an error, not
// a refusal.
func TestJudgeTokenCaller(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "mcp-77c9aa", UID: "rs1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "mcp", UID: "d1",
			Controller: ptr.To(true)}}}}
	pod := callerPod(mcpRolled.pod, "mcp")
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name,
		UID: "rs1", Controller: ptr.To(true)}}
	orphan := pod.DeepCopy()
	orphan.OwnerReferences[0].Name = "gone"
	session := newSession()
	session.Spec.Binding = &sessionsv1alpha1.BindingPolicy{Mode: sessionsv1alpha1.BindingEnforce}
	st := boundTo(mcpPod)
	session.Status.Binding = &st

	f := newFixture(t, rs)
	v, err := JudgeTokenCaller(context.Background(), f.c, session, pod)
	if err != nil || !v.Allowed || v.Fingerprint != mcpPod.fp {
		t.Fatalf("pod of the bound Deployment: %+v, %v", v, err)
	}
	// An owner that does not exist is no owner: the pod is judged as a workload of its own.
	v, err = JudgeTokenCaller(context.Background(), f.c, session, orphan)
	if err != nil || v.Allowed || v.Fingerprint == "" || v.Fingerprint == mcpPod.fp ||
		!strings.Contains(v.Reason, "Pod/"+orphan.Name) {
		t.Fatalf("pod naming a ReplicaSet that does not exist: %+v, %v", v, err)
	}

	failing := interceptor.NewClient(f.c.(client.WithWatch), interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return errors.New("connection refused")
		}})
	if _, err := JudgeTokenCaller(context.Background(), failing, session, pod); err == nil {
		t.Fatal("no error when the ReplicaSet cannot be read")
	}

	elsewhere := pod.DeepCopy()
	elsewhere.Namespace = "other"
	v, err = JudgeTokenCaller(context.Background(), failing, session, elsewhere)
	if err != nil || v.Allowed || v.Fingerprint != "" {
		t.Fatalf("pod of another namespace is resolved, or allowed: %+v, %v", v, err)
	}
}

func TestServableToken(t *testing.T) {
	session := newSession()
	valid := func() *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "alice-token",
			Labels: map[string]string{sessionsv1alpha1.ManagedByLabel: sessionsv1alpha1.ManagedByValue},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: sessionsv1alpha1.GroupVersion.String(),
				Kind: "TidalSession", Name: session.Name, UID: session.UID, Controller: ptr.To(true)}}},
			Data: map[string][]byte{
				sessionsv1alpha1.KeyAccessToken: []byte(canaryAccess),
				sessionsv1alpha1.KeyTokenType:   []byte("Bearer"),
				sessionsv1alpha1.KeyExpiresAt:   []byte(t0.Add(time.Hour).Format(time.RFC3339)),
				sessionsv1alpha1.KeyTokenStatus: []byte(sessionsv1alpha1.TokenStatusValid),
			}}
		return s
	}
	with := func(change func(*corev1.Secret)) *corev1.Secret {
		s := valid()
		change(s)
		return s
	}

	for _, tc := range []struct {
		name   string
		secret *corev1.Secret
		now    time.Time
		want   bool
	}{
		{name: "valid", secret: valid(), now: t0, want: true},
		{name: "no Secret", now: t0},
		{name: "expired by the clock", secret: valid(), now: t0.Add(time.Hour)},
		{name: "marked expired", now: t0, secret: with(func(s *corev1.Secret) {
			s.Data[sessionsv1alpha1.KeyTokenStatus] = []byte(sessionsv1alpha1.TokenStatusExpired)
		})},
		{name: "quarantined", now: t0, secret: with(func(s *corev1.Secret) { s.Data = quarantinedData(s.Data) })},
		{name: "no token", now: t0, secret: with(func(s *corev1.Secret) { delete(s.Data, sessionsv1alpha1.KeyAccessToken) })},
		{name: "unreadable expiry", now: t0, secret: with(func(s *corev1.Secret) {
			s.Data[sessionsv1alpha1.KeyExpiresAt] = []byte("soon")
		})},
		{name: "not labelled managed", now: t0, secret: with(func(s *corev1.Secret) { s.Labels = nil })},
		{name: "another session's", now: t0, secret: with(func(s *corev1.Secret) { s.OwnerReferences[0].UID = "uid-2" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, ok := ServableToken(tc.secret, session, tc.now)
			if ok != tc.want {
				t.Fatalf("servable %v, want %v", ok, tc.want)
			}
			if ok && (tok.AccessToken != canaryAccess || tok.TokenType != "Bearer" || !tok.ExpiresAt.Equal(t0.Add(time.Hour))) {
				t.Errorf("token %+v", tok)
			}
			if !ok && tok != (OutputToken{}) {
				t.Error("a refused token is returned anyway")
			}
		})
	}
}
