package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

func boundSession(mode sessionsv1alpha1.BindingMode) *sessionsv1alpha1.TidalSession {
	s := newSession()
	s.Spec.Binding = &sessionsv1alpha1.BindingPolicy{Mode: mode}
	return s
}

// deploymentRS is a ReplicaSet of Deployment deploy, as the Deployment controller makes it.
func deploymentRS(name, deploy string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, UID: types.UID("uid-" + name),
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: deploy,
			UID: types.UID("uid-" + deploy), Controller: ptr.To(true)}}}}
}

// consumerPod is a pod under sa that mounts the output Secret as a volume; owner, when set,
// is its controlling ReplicaSet.
func consumerPod(name, sa string, owner *appsv1.ReplicaSet) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "mcp", Image: "mcp:1"}},
			Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: "alice-token"}}}}}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner.Name,
			UID: owner.UID, Controller: ptr.To(true)}}
	}
	return p
}

func securityCount(typ string) float64 {
	return testutil.ToFloat64(metrics.SecurityEvents.WithLabelValues(typ))
}

func (f *fixture) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := f.c.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) mustReconcile(t *testing.T) {
	t.Helper()
	if _, err := f.reconcile(t); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
}

// firstToken reconciles a new session twice: once to write its first token, once for the
// output Secret's watch event, whose reconcile judges the consumers present then.
func (f *fixture) firstToken(t *testing.T) {
	t.Helper()
	f.mustReconcile(t)
	f.mustReconcile(t)
}

func condition(s *sessionsv1alpha1.TidalSession, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(s.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func warnings(evs []string) []string {
	return slices.DeleteFunc(slices.Clone(evs), func(e string) bool { return !strings.HasPrefix(e, corev1.EventTypeWarning) })
}

func TestBindingObserveLearnsIgnoresRolloutsAndReports(t *testing.T) {
	rs1 := deploymentRS("mcp-5d4f8b", "mcp")
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingObserve), newCreds(), rs1, consumerPod("mcp-5d4f8b-x1", "mcp", rs1))
	f.firstToken(t)
	s := f.session(t)
	if b := s.Status.Binding; b == nil || len(b.Bound) != 1 || b.Bound[0].Workload.Kind != "Deployment" ||
		b.Bound[0].Workload.Name != "mcp" || b.Bound[0].ServiceAccount != "mcp" || !strings.HasPrefix(b.Bound[0].Fingerprint, "v1:") {
		t.Fatalf("binding after the first look: %+v", s.Status.Binding)
	}
	if c := condition(s, sessionsv1alpha1.ConditionBound); c.Status != metav1.ConditionTrue {
		t.Errorf("Bound %+v", c)
	}
	if c := condition(s, sessionsv1alpha1.ConditionAnomaly); c.Status != metav1.ConditionFalse || c.Reason != sessionsv1alpha1.ReasonNoAnomaly {
		t.Errorf("Anomaly %+v", c)
	}
	if !containsReason(f.drainEvents(), sessionsv1alpha1.ReasonConsumerBound) {
		t.Errorf("no ConsumerBound Event")
	}
	learned := s.Status.Binding.Bound[0].Fingerprint

	// A rollout: a new ReplicaSet with new pods replaces the old ones.
	mismatches, changes := securityCount(metrics.SecurityConsumerMismatch), securityCount(metrics.SecurityFingerprintChanged)
	rs2 := deploymentRS("mcp-77c9aa", "mcp")
	f.create(t, rs2, consumerPod("mcp-77c9aa-a", "mcp", rs2), consumerPod("mcp-77c9aa-b", "mcp", rs2))
	if err := f.c.Delete(context.Background(), consumerPod("mcp-5d4f8b-x1", "mcp", rs1)); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(t)
	s = f.session(t)
	if evs := f.drainEvents(); len(evs) != 0 {
		t.Errorf("a rollout raised Events: %q", evs)
	}
	if len(s.Status.Binding.Bound) != 1 || s.Status.Binding.Bound[0].Fingerprint != learned ||
		condition(s, sessionsv1alpha1.ConditionBound).Status != metav1.ConditionTrue {
		t.Errorf("after the rollout: %+v, Bound %+v", s.Status.Binding, condition(s, sessionsv1alpha1.ConditionBound))
	}
	if securityCount(metrics.SecurityConsumerMismatch) != mismatches || securityCount(metrics.SecurityFingerprintChanged) != changes {
		t.Errorf("a rollout counted security events")
	}

	// A pod of another ServiceAccount reads the Secret through env.
	rogue := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rogue", Namespace: testNamespace},
		Spec: corev1.PodSpec{ServiceAccountName: "intruder", Containers: []corev1.Container{{Name: "c",
			Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "alice-token"}, Key: "access_token"}}}}}}}}
	f.create(t, rogue)
	f.mustReconcile(t)
	s = f.session(t)
	evs := f.drainEvents()
	ws := warnings(evs)
	if len(ws) != 1 || !strings.Contains(ws[0], sessionsv1alpha1.ReasonConsumerMismatch) || !strings.Contains(ws[0], "pod rogue") ||
		!strings.Contains(ws[0], s.Status.Binding.Violators[0].Fingerprint) {
		t.Errorf("want one ConsumerMismatch Warning naming the pod and its fingerprint, got %q", evs)
	}
	if c := condition(s, sessionsv1alpha1.ConditionBound); c.Status != metav1.ConditionFalse || c.Reason != sessionsv1alpha1.ReasonConsumerMismatch {
		t.Errorf("Bound %+v", c)
	}
	if got := securityCount(metrics.SecurityConsumerMismatch) - mismatches; got != 1 {
		t.Errorf("consumer_mismatch counted %v times, want 1", got)
	}
	if s.Status.Binding.Violations != 1 || s.Status.Phase != sessionsv1alpha1.PhaseActive {
		t.Errorf("violations %d, phase %s; Observe keeps the session active", s.Status.Binding.Violations, s.Status.Phase)
	}
	if string(f.secret(t, "alice-token").Data[sessionsv1alpha1.KeyAccessToken]) != canaryAccess {
		t.Errorf("Observe must not touch the token")
	}

	// The same violator seen again is not news.
	f.mustReconcile(t)
	if evs := warnings(f.drainEvents()); len(evs) != 0 || securityCount(metrics.SecurityConsumerMismatch)-mismatches != 1 {
		t.Errorf("the violation was reported again: %q", evs)
	}
	assertNoCanary(t, f, nil, evs)
}

func TestBindingEnforceQuarantinesUntilApproval(t *testing.T) {
	rs := deploymentRS("mcp-5d4f8b", "mcp")
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), newCreds(), rs, consumerPod("mcp-5d4f8b-x1", "mcp", rs))
	f.firstToken(t)
	if f.tidal.calls != 1 {
		t.Fatalf("%d refreshes, want the first token", f.tidal.calls)
	}
	f.drainEvents()

	quarantines := securityCount(metrics.SecurityQuarantined)
	f.create(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rogue", Namespace: testNamespace},
		Spec: corev1.PodSpec{ServiceAccountName: "intruder", Containers: []corev1.Container{{Name: "c",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "alice-token"}}}}}}}})
	f.clock.Step(time.Minute)
	res, err := f.reconcile(t)
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("a quarantine waits for a person: result %+v, err %v", res, err)
	}
	out := f.secret(t, "alice-token")
	if len(out.Data[sessionsv1alpha1.KeyAccessToken]) != 0 || len(out.Data[sessionsv1alpha1.KeySessionFile]) != 0 ||
		string(out.Data[sessionsv1alpha1.KeyTokenStatus]) != sessionsv1alpha1.TokenStatusQuarantined {
		t.Errorf("quarantined Secret still holds the token or lacks the marker: token_status %q",
			out.Data[sessionsv1alpha1.KeyTokenStatus])
	}
	for _, k := range []string{sessionsv1alpha1.KeyAccessToken, sessionsv1alpha1.KeySessionFile, sessionsv1alpha1.KeyExpiresAt} {
		if _, ok := out.Data[k]; !ok {
			t.Errorf("quarantine removed key %s; keys stay", k)
		}
	}
	s := f.session(t)
	if s.Status.Phase != sessionsv1alpha1.PhaseQuarantined || readyReason(s) != sessionsv1alpha1.ReasonQuarantined ||
		s.Status.Binding.QuarantinedAt == nil || s.Status.AccessTokenExpiresAt != nil {
		t.Errorf("phase %s, Ready reason %s, binding %+v", s.Status.Phase, readyReason(s), s.Status.Binding)
	}
	if c := condition(s, sessionsv1alpha1.ConditionBound); c.Status != metav1.ConditionFalse || c.Reason != sessionsv1alpha1.ReasonQuarantined {
		t.Errorf("Bound %+v", c)
	}
	if securityCount(metrics.SecurityQuarantined)-quarantines != 1 {
		t.Errorf("quarantine not counted")
	}
	evs := f.drainEvents()
	if !containsReason(evs, sessionsv1alpha1.ReasonConsumerMismatch) || !containsReason(evs, sessionsv1alpha1.ReasonQuarantined) {
		t.Errorf("events %q lack ConsumerMismatch and Quarantined", evs)
	}
	assertNoCanary(t, f, nil, evs)

	// Long past the token's expiry, the operator still does not refresh into the Secret.
	f.clock.Step(2 * time.Hour)
	f.mustReconcile(t)
	if f.tidal.calls != 1 || len(f.secret(t, "alice-token").Data[sessionsv1alpha1.KeyAccessToken]) != 0 {
		t.Errorf("refreshed while quarantined: %d calls", f.tidal.calls)
	}

	// A person approves: the current consumers are bound and a fresh token is written.
	s = f.session(t)
	s.Annotations = map[string]string{sessionsv1alpha1.BindingApprovalAnnotation: "2026-12-04T12:05:00Z"}
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(t)
	s = f.session(t)
	out = f.secret(t, "alice-token")
	if f.tidal.calls != 2 || string(out.Data[sessionsv1alpha1.KeyAccessToken]) != canaryAccess ||
		string(out.Data[sessionsv1alpha1.KeyTokenStatus]) != sessionsv1alpha1.TokenStatusValid {
		t.Errorf("after approval: %d calls, token_status %q", f.tidal.calls, out.Data[sessionsv1alpha1.KeyTokenStatus])
	}
	if s.Status.Phase != sessionsv1alpha1.PhaseActive || s.Status.Binding.QuarantinedAt != nil ||
		len(s.Status.Binding.Bound) != 2 || len(s.Status.Binding.Violators) != 0 || s.Status.Binding.LastApproval != "2026-12-04T12:05:00Z" {
		t.Errorf("after approval: phase %s, binding %+v", s.Status.Phase, s.Status.Binding)
	}
	if !containsReason(f.drainEvents(), sessionsv1alpha1.ReasonBindingApproved) {
		t.Errorf("no BindingApproved Event")
	}
}

func TestBindingRemovedLiftsQuarantine(t *testing.T) {
	s := boundSession(sessionsv1alpha1.BindingEnforce)
	s.Status.Binding = &sessionsv1alpha1.BindingStatus{QuarantinedAt: &metav1.Time{Time: t0}}
	f := newFixture(t, s, newCreds())
	if err := f.c.Status().Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(t)
	if got := f.session(t); got.Status.Phase != sessionsv1alpha1.PhaseQuarantined || f.tidal.calls != 0 {
		t.Fatalf("phase %s, %d calls; want quarantined without a refresh", got.Status.Phase, f.tidal.calls)
	}
	got := f.session(t)
	got.Spec.Binding = nil
	if err := f.c.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(t)
	got = f.session(t)
	if got.Status.Binding != nil || meta.FindStatusCondition(got.Status.Conditions, sessionsv1alpha1.ConditionBound) != nil ||
		meta.FindStatusCondition(got.Status.Conditions, sessionsv1alpha1.ConditionAnomaly) != nil ||
		got.Status.Phase != sessionsv1alpha1.PhaseActive || f.tidal.calls != 1 {
		t.Errorf("without spec.binding: phase %s, binding %+v, conditions %v, %d calls", got.Status.Phase,
			got.Status.Binding, got.Status.Conditions, f.tidal.calls)
	}
}

func TestBindingSkipsTerminatingPodsOfAGoneReplicaSet(t *testing.T) {
	gone := deploymentRS("mcp-old", "mcp") // never created: deleted, its pods on their way out
	pod := consumerPod("mcp-old-x", "intruder", gone)
	pod.Finalizers = []string{"test/keep"}
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), newCreds(), pod)
	if err := f.c.Delete(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(t)
	s := f.session(t)
	if len(s.Status.Binding.Bound) != 0 || len(s.Status.Binding.Violators) != 0 || s.Status.Phase != sessionsv1alpha1.PhaseActive {
		t.Errorf("a terminating pod of a gone ReplicaSet was judged: phase %s, binding %+v", s.Status.Phase, s.Status.Binding)
	}
}

// A pod that names an owner that does not exist, and is not going away, is judged as itself:
// the owner reference is whatever its creator wrote.
func TestBindingJudgesAPodWithAMadeUpOwner(t *testing.T) {
	for name, owner := range map[string]func(bound *appsv1.ReplicaSet) *appsv1.ReplicaSet{
		"no such ReplicaSet": func(*appsv1.ReplicaSet) *appsv1.ReplicaSet { return deploymentRS("ghost", "mcp") },
		"the bound ReplicaSet's name, another UID": func(bound *appsv1.ReplicaSet) *appsv1.ReplicaSet {
			borrowed := bound.DeepCopy()
			borrowed.UID = "made-up"
			return borrowed
		},
		"a name no object can have": func(*appsv1.ReplicaSet) *appsv1.ReplicaSet { return deploymentRS("a%b", "mcp") },
	} {
		t.Run(name, func(t *testing.T) {
			rs := deploymentRS("mcp-5d4f8b", "mcp")
			f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), newCreds(), rs, consumerPod("mcp-5d4f8b-x1", "mcp", rs))
			f.firstToken(t)
			f.create(t, consumerPod("forged", "mcp", owner(rs)))
			f.mustReconcile(t)
			s := f.session(t)
			if s.Status.Phase != sessionsv1alpha1.PhaseQuarantined || len(s.Status.Binding.Violators) != 1 ||
				s.Status.Binding.Violators[0].Workload.Kind != "Pod" || s.Status.Binding.Violators[0].Workload.Name != "forged" {
				t.Errorf("phase %s, violators %+v; want the forged pod reported as Pod/forged", s.Status.Phase,
					s.Status.Binding.Violators)
			}
		})
	}
}

func TestBindingInvalidSelectorIsTerminal(t *testing.T) {
	s := boundSession(sessionsv1alpha1.BindingObserve)
	s.Spec.Binding.Allowed = &sessionsv1alpha1.AllowedConsumers{PodSelector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}}
	f := newFixture(t, s, newCreds())
	f.mustReconcile(t)
	if got := f.session(t); readyReason(got) != sessionsv1alpha1.ReasonInvalidSpec || f.tidal.calls != 0 {
		t.Errorf("Ready reason %s, %d calls", readyReason(got), f.tidal.calls)
	}
}

func TestPodSecretNamesAndStripPod(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: testNamespace, UID: "u", Labels: map[string]string{"app": "mcp"},
			Annotations: map[string]string{"big": "annotation"}, OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs"}}},
		Spec: corev1.PodSpec{ServiceAccountName: "mcp", NodeName: "node-1",
			Volumes: []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
				{Name: "b", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "projected-secret"}}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}}}},
				{Name: "c", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			InitContainers: []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom-secret"}}},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}}},
			Containers: []corev1.Container{{Name: "main", Image: "mcp:1", Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: "a literal that may be a credential"},
				{Name: "T", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "env-secret"}, Key: "k"}}}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	want := []string{"env-secret", "envfrom-secret", "projected-secret", "vol-secret"}
	if got := podSecretNames(pod); !slices.Equal(got, want) {
		t.Errorf("secret names %v, want %v", got, want)
	}
	obj, err := stripPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	stripped := obj.(*corev1.Pod)
	if got := podSecretNames(stripped); !slices.Equal(got, want) {
		t.Errorf("stripped pod references %v, want %v", got, want)
	}
	if stripped.Name != "p" || stripped.UID != "u" || stripped.Labels["app"] != "mcp" || len(stripped.OwnerReferences) != 1 ||
		stripped.Spec.ServiceAccountName != "mcp" || stripped.Status.Phase != corev1.PodRunning {
		t.Errorf("stripped pod lost what binding needs: %+v", stripped)
	}
	if stripped.Annotations != nil || stripped.Spec.NodeName != "" || stripped.Status.PodIP != "" || len(stripped.Spec.Volumes) != 2 ||
		len(stripped.Spec.InitContainers) != 0 || stripped.Spec.Containers[0].Image != "" {
		t.Errorf("stripped pod kept more than binding needs: %+v", stripped)
	}
	for _, c := range stripped.Spec.Containers {
		for _, e := range c.Env {
			if e.Value != "" {
				t.Errorf("stripped pod kept env value of %s", e.Name)
			}
		}
	}
	if tomb, _ := stripPod("not a pod"); tomb != "not a pod" {
		t.Errorf("non-pods must pass through")
	}
}

func TestSessionsForPod(t *testing.T) {
	other := newSession()
	other.Name, other.UID = "bob", "uid-2" // same output Secret name, but no binding
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingObserve), other)
	got := f.r.sessionsForPod(context.Background(), consumerPod("p", "mcp", nil))
	want := []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: testNamespace, Name: testSessionKey}}}
	if !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	unrelated := consumerPod("q", "mcp", nil)
	unrelated.Spec.Volumes[0].Secret.SecretName = "something-else"
	if got := f.r.sessionsForPod(context.Background(), unrelated); len(got) != 0 {
		t.Errorf("a pod of another Secret mapped to %v", got)
	}
}

func TestIdentityChangeCountsAsSecurityEvent(t *testing.T) {
	f := healthyFixture(t)
	before := securityCount(metrics.SecurityIdentityChanged)
	f.tidal.identity = &tidal.SessionInfo{SessionID: "sess-1", UserID: "2002", CountryCode: "NO", ClientID: "77"}
	f.mustReconcile(t)
	if got := securityCount(metrics.SecurityIdentityChanged) - before; got != 1 {
		t.Errorf("identity_changed counted %v times, want 1", got)
	}
}

func TestCacheKeepsStrippedPods(t *testing.T) {
	for obj, by := range CacheOptions([]string{"music"}).ByObject {
		if _, ok := obj.(*corev1.Pod); ok {
			if by.Transform == nil {
				t.Fatal("Pods are cached without a transform")
			}
			return
		}
	}
	t.Fatal("Pods are not configured in the cache options")
}

// A reconcile triggered by the operator's own Secret write may find the session in the cache
// as it was before the status write of the reconcile that triggered it; the quarantine and
// the violation must not be counted twice.
func TestBindingNotDecidedTwiceFromAnOutdatedCache(t *testing.T) {
	rs := deploymentRS("mcp-5d4f8b", "mcp")
	f := newFixture(t, boundSession(sessionsv1alpha1.BindingEnforce), newCreds(), rs, consumerPod("mcp-5d4f8b-x1", "mcp", rs))
	f.firstToken(t)
	rogue := consumerPod("rogue", "intruder", nil)
	f.create(t, rogue)
	outdated := f.session(t)
	quarantines, mismatches := securityCount(metrics.SecurityQuarantined), securityCount(metrics.SecurityConsumerMismatch)
	f.mustReconcile(t)

	f.r.Client = interceptor.NewClient(f.c.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if s, ok := obj.(*sessionsv1alpha1.TidalSession); ok {
				outdated.DeepCopyInto(s)
				return nil
			}
			return c.Get(ctx, key, obj, opts...)
		}})
	f.mustReconcile(t)
	if q, m := securityCount(metrics.SecurityQuarantined)-quarantines, securityCount(metrics.SecurityConsumerMismatch)-mismatches; q != 1 || m != 1 {
		t.Errorf("counted %v quarantines and %v mismatches, want 1 each", q, m)
	}
	if s := f.session(t); s.Status.Binding.Violations != 1 {
		t.Errorf("violations %d, want 1", s.Status.Binding.Violations)
	}
}
