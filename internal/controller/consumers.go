package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/fingerprint"
)

// Field indexes of the manager's cache.
const (
	// podSecretsIndex indexes Pods by the names of the Secrets they reference.
	podSecretsIndex = "tidal.podSecretNames"
	// outputSecretIndex indexes TidalSessions by spec.outputSecret.name.
	outputSecretIndex = "spec.outputSecret.name"
)

// Pods are read only from the cache, so list and watch are all the cache needs.
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch
// ReplicaSets, Jobs, StatefulSets and DaemonSets are read one at a time, without the cache,
// and only for the pods that consume a bound session, to check their owner references and
// resolve their workload: caching them would keep every rollout's history of every namespace
// in memory for a lookup that is needed rarely, and list and watch would grant more.
// +kubebuilder:rbac:groups=apps,resources=replicasets;statefulsets;daemonsets,verbs=get
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get

// podSecretNames lists, sorted and without repeats, the Secrets a pod references: secret and
// projected volumes, env valueFrom.secretKeyRef and envFrom.secretRef, in every container.
func podSecretNames(pod *corev1.Pod) []string {
	var names []string
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			names = append(names, v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					names = append(names, s.Secret.Name)
				}
			}
		}
	}
	eachContainerEnv(pod, func(env []corev1.EnvVar, from []corev1.EnvFromSource) {
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				names = append(names, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, f := range from {
			if f.SecretRef != nil {
				names = append(names, f.SecretRef.Name)
			}
		}
	})
	slices.Sort(names)
	return slices.DeleteFunc(slices.Compact(names), func(n string) bool { return n == "" })
}

// eachContainerEnv calls fn with the environment of every container, init and ephemeral
// containers included: any of them can read a Secret.
func eachContainerEnv(pod *corev1.Pod, fn func([]corev1.EnvVar, []corev1.EnvFromSource)) {
	for _, c := range pod.Spec.InitContainers {
		fn(c.Env, c.EnvFrom)
	}
	for _, c := range pod.Spec.Containers {
		fn(c.Env, c.EnvFrom)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		fn(c.Env, c.EnvFrom)
	}
}

// stripPod is the cache's transform for Pods. The operator watches every Pod of the
// namespaces it manages, but binding needs only a Pod's identity and which Secrets it
// references; keeping unrelated pods' full specs would cost memory and would keep in the
// operator what it has no use for (env values may hold credentials of their own). What is
// kept: name, namespace, UID, resourceVersion, labels, owner references, the deletion mark,
// the ServiceAccount, the phase, and the Secret references (volumes, env, envFrom) without
// any other volume, env value or container field.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		// A tombstone of a deleted object: its object was transformed when it was cached.
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, Labels: pod.Labels, OwnerReferences: pod.OwnerReferences,
			DeletionTimestamp: pod.DeletionTimestamp},
		Spec:   corev1.PodSpec{ServiceAccountName: serviceAccountOf(pod)},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	for _, v := range pod.Spec.Volumes {
		if kept, ok := secretVolume(v); ok {
			out.Spec.Volumes = append(out.Spec.Volumes, kept)
		}
	}
	eachContainerEnv(pod, func(env []corev1.EnvVar, from []corev1.EnvFromSource) {
		c := corev1.Container{}
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				c.Env = append(c.Env, corev1.EnvVar{Name: e.Name,
					ValueFrom: &corev1.EnvVarSource{SecretKeyRef: e.ValueFrom.SecretKeyRef}})
			}
		}
		for _, f := range from {
			if f.SecretRef != nil {
				c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: f.SecretRef})
			}
		}
		if c.Env != nil || c.EnvFrom != nil {
			out.Spec.Containers = append(out.Spec.Containers, c)
		}
	})
	return out, nil
}

// secretVolume is v reduced to its Secret references, and whether it has any.
func secretVolume(v corev1.Volume) (corev1.Volume, bool) {
	if v.Secret != nil {
		return corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: v.Secret.SecretName}}}, true
	}
	if v.Projected == nil {
		return corev1.Volume{}, false
	}
	proj := &corev1.ProjectedVolumeSource{}
	for _, s := range v.Projected.Sources {
		if s.Secret != nil {
			proj.Sources = append(proj.Sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
				LocalObjectReference: s.Secret.LocalObjectReference}})
		}
	}
	return corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{Projected: proj}}, len(proj.Sources) > 0
}

// serviceAccountOf is the pod's ServiceAccount as the API server records it.
func serviceAccountOf(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	// Older clients set only the deprecated field.
	return pod.Spec.DeprecatedServiceAccount
}

func indexPodSecrets(obj client.Object) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	return podSecretNames(pod)
}

func indexOutputSecret(obj client.Object) []string {
	session, ok := obj.(*sessionsv1alpha1.TidalSession)
	if !ok || session.Spec.OutputSecret.Name == "" {
		return nil
	}
	return []string{session.Spec.OutputSecret.Name}
}

// sessionsForPod maps a Pod event to the bound sessions whose output Secret the pod
// references. Sessions without spec.binding do not care who consumes them.
func (r *TidalSessionReconciler) sessionsForPod(ctx context.Context, obj client.Object) []reconcile.Request {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	for _, name := range podSecretNames(pod) {
		sessions := &sessionsv1alpha1.TidalSessionList{}
		if err := r.List(ctx, sessions, client.InNamespace(pod.Namespace),
			client.MatchingFields{outputSecretIndex: name}); err != nil {
			// The cache lists from memory; a failure here means it is not synced yet, and the
			// initial list of sessions reconciles them all anyway.
			logf.FromContext(ctx).V(1).Info("Failed to map a Pod to sessions", "pod", klog.KObj(pod), "error", err.Error())
			continue
		}
		for _, s := range sessions.Items {
			if s.Spec.Binding != nil {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
			}
		}
	}
	return out
}

// podChanged passes the Pod events that can change a binding's verdict: creation, deletion,
// and updates of what the fingerprint or the allowed selector read. The kubelet's frequent
// status updates change none of it.
var podChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*corev1.Pod), e.ObjectNew.(*corev1.Pod)
		if o == nil || n == nil {
			return true
		}
		return !equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
			!equality.Semantic.DeepEqual(o.OwnerReferences, n.OwnerReferences) ||
			o.Status.Phase != n.Status.Phase || (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil)
	},
}

// consumer is a pod that references a session's output Secret, and whose device it is.
type consumer struct {
	pod    string
	labels map[string]string
	id     fingerprint.Identity
	fp     string
}

// listConsumers returns the pods of the session's namespace that reference its output
// Secret, sorted by name, each with its fingerprint. Finished pods no longer read anything and
// are left out, and so are pods whose ReplicaSet or Job is gone: they are about to go with it.
func (r *TidalSessionReconciler) listConsumers(ctx context.Context, session *sessionsv1alpha1.TidalSession) ([]consumer, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(session.Namespace),
		client.MatchingFields{podSecretsIndex: session.Spec.OutputSecret.Name}); err != nil {
		return nil, fmt.Errorf("failed to list the pods that reference output Secret %s: %w", session.Spec.OutputSecret.Name, err)
	}
	lookup := ownerLookup(ctx, r.APIReader, session.Namespace)
	var out []consumer
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		c, err := consumerOf(pod, lookup)
		if errors.Is(err, fingerprint.ErrOwnerGone) {
			logf.FromContext(ctx).V(1).Info("Skipping a consumer whose owner is gone", "pod", klog.KObj(pod))
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pod < out[j].pod })
	return out, nil
}

// consumerOf is pod as a consumer, fingerprinted with lookup. A terminating pod whose
// ReplicaSet or Job is gone gets an error for which errors.Is(err, fingerprint.ErrOwnerGone)
// holds.
func consumerOf(pod *corev1.Pod, lookup fingerprint.OwnerLookup) (consumer, error) {
	p := fingerprint.Pod{Namespace: pod.Namespace, Name: pod.Name, ServiceAccount: serviceAccountOf(pod),
		Owners: pod.OwnerReferences}
	id, err := fingerprint.Resolve(p, lookup)
	if errors.Is(err, fingerprint.ErrOwnerGone) && pod.DeletionTimestamp == nil {
		// Whoever creates a pod writes its owner references: a pod that names a ReplicaSet or
		// Job that does not exist, and is not going away, is judged as a workload of its own,
		// so that a made-up owner cannot hide it. The pods of a deleted owner are terminating
		// (the garbage collector marks them) and are skipped.
		p.Owners = nil
		id, err = fingerprint.Resolve(p, lookup)
	}
	if err != nil {
		return consumer{}, err
	}
	return consumer{pod: pod.Name, labels: pod.Labels, id: id, fp: id.Fingerprint()}, nil
}

// ownerLookup reads the owners a pod's controller reference names in namespace (ReplicaSets,
// Jobs, StatefulSets, DaemonSets) with reader, as metadata only, and checks their UID; reader
// is an uncached API reader (see the RBAC markers above). Answers are kept for as long as the
// lookup lives, one reconcile or one token request: the pods of one ReplicaSet share it.
func ownerLookup(ctx context.Context, reader client.Reader, namespace string) fingerprint.OwnerLookup {
	seen := map[string][]metav1.OwnerReference{}
	return func(group, kind, name string, uid types.UID) ([]metav1.OwnerReference, error) {
		key := group + "/" + kind + "/" + name + "/" + string(uid)
		if refs, ok := seen[key]; ok {
			return refs, nil
		}
		// Owner references are written by whoever creates the pod: a name no object can have
		// names no owner (and a lookup with it would fail on every reconcile).
		if len(validation.IsDNS1123Subdomain(name)) > 0 {
			return nil, fingerprint.ErrOwnerGone
		}
		gvk := appsv1.SchemeGroupVersion.WithKind(kind)
		if group == batchv1.GroupName {
			gvk = batchv1.SchemeGroupVersion.WithKind(kind)
		}
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, obj)
		if apierrors.IsNotFound(err) {
			return nil, fingerprint.ErrOwnerGone
		}
		if err != nil {
			return nil, fmt.Errorf("failed to get %s %s: %w", kind, name, err)
		}
		if obj.UID != uid {
			// Not the object the pod's controller reference names: a made-up reference that
			// borrows a name, or a stale one.
			return nil, fingerprint.ErrOwnerGone
		}
		seen[key] = obj.OwnerReferences
		return obj.OwnerReferences, nil
	}
}
