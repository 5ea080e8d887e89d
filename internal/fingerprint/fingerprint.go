// Package fingerprint names the device that consumes a TidalSession: the workload whose pods
// mount the session's output Secret. The fingerprint is a versioned hash of the workload's
// identity, so that it can be stored in status, compared and shown in Events without naming
// anything beyond what the identity already names.
//
// What goes in, and why:
//
//   - the namespace: the same workload name in another namespace is another owner;
//   - the ServiceAccount (an empty one counts as "default", which is what the API server
//     assigns): it is the identity the pod acts under, so a known workload that starts running
//     under another ServiceAccount is a different device;
//   - the owning workload, as API group, kind and name, resolved past the objects that
//     controllers create on their own: a ReplicaSet counts as the Deployment that controls it,
//     a Job as the CronJob that controls it; a StatefulSet, DaemonSet, a ReplicaSet or Job
//     without a controller, or any other controller stands for itself; a pod without a
//     controller is its own workload, by name.
//
// What stays out, and why: the pod's name and UID, its node, its IP, the pod-template-hash
// label (and with it the ReplicaSet's name) and the container images. All of these change on
// every restart, reschedule or rollout of the same workload, and a fingerprint that changed
// with them would report each legitimate rollout as a new device. Labels stay out for the same
// reason; the binding's label selector, not the fingerprint, is how labels are matched.
//
// The hash is "v1:" followed by the hex SHA-256 of the JSON array [version, namespace,
// serviceAccount, group, kind, name]. JSON makes the encoding unambiguous (no separator can
// be forged by a name), and the version prefix lets a later encoding coexist with stored
// fingerprints instead of silently failing to match them.
package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Version is the encoding's version, the prefix of every fingerprint.
const Version = "v1"

// DefaultServiceAccount is the ServiceAccount the API server assigns to a pod that names none.
const DefaultServiceAccount = "default"

// Workload is the object that stands for a set of pods across their restarts and rollouts.
type Workload struct {
	// Group is the workload's API group, empty for the core group (a bare Pod).
	Group string
	Kind  string
	Name  string
}

// String is "Kind/name" for people, with the group when it is not apps, batch or core.
func (w Workload) String() string {
	switch w.Group {
	case "", "apps", "batch":
		return w.Kind + "/" + w.Name
	}
	return w.Kind + "." + w.Group + "/" + w.Name
}

// Identity is everything a fingerprint is computed from.
type Identity struct {
	Namespace      string
	ServiceAccount string
	Workload       Workload
}

// Fingerprint is the identity's versioned hash.
func (id Identity) Fingerprint() string {
	sa := id.ServiceAccount
	if sa == "" {
		sa = DefaultServiceAccount
	}
	// Marshalling a slice of strings cannot fail.
	b, _ := json.Marshal([]string{Version, id.Namespace, sa, id.Workload.Group, id.Workload.Kind, id.Workload.Name})
	sum := sha256.Sum256(b)
	return Version + ":" + hex.EncodeToString(sum[:])
}

// Pod is what resolution needs of a pod.
type Pod struct {
	Namespace      string
	Name           string
	ServiceAccount string
	Owners         []metav1.OwnerReference
}

// OwnerLookup returns the owner references of the object of the given group, kind and name in
// the pod's namespace, which must have the given UID. It is called for ReplicaSets, Jobs,
// StatefulSets and DaemonSets. An object that does not exist, or exists under another UID, is
// reported with an error for which errors.Is(err, ErrOwnerGone) holds.
type OwnerLookup func(group, kind, name string, uid types.UID) ([]metav1.OwnerReference, error)

// ErrOwnerGone says that the owner a pod's controller reference names does not exist under
// the UID it names: deleted, as the ReplicaSet of a workload deleted with its pods, or never
// the pod's, as a reference made up by whoever created the pod. Such a pod cannot be
// fingerprinted by its owner.
var ErrOwnerGone = errors.New("owner no longer exists")

// Resolve returns the identity of the workload a pod belongs to. It checks with lookup that a
// ReplicaSet, Job, StatefulSet or DaemonSet the pod names exists, and resolves a ReplicaSet or
// Job to the Deployment or CronJob that controls it.
func Resolve(pod Pod, lookup OwnerLookup) (Identity, error) {
	id := Identity{Namespace: pod.Namespace, ServiceAccount: pod.ServiceAccount}
	owner := metav1.GetControllerOfNoCopy(&metav1.ObjectMeta{OwnerReferences: pod.Owners})
	if owner == nil || !controlsPods(workloadOf(owner)) {
		// No controller, or a built-in kind that never owns pods itself (a Deployment, a
		// CronJob, a Pod), which only a made-up reference names: the pod stands for itself.
		id.Workload = Workload{Kind: "Pod", Name: pod.Name}
		return id, nil
	}
	w := workloadOf(owner)
	if !intermediate(w) && !checked(w) {
		id.Workload = w
		return id, nil
	}
	owners, err := lookup(w.Group, w.Kind, w.Name, owner.UID)
	if err != nil {
		return Identity{}, fmt.Errorf("failed to look up the owner of %s: %w", w, err)
	}
	if intermediate(w) {
		if up := metav1.GetControllerOfNoCopy(&metav1.ObjectMeta{OwnerReferences: owners}); up != nil {
			w = workloadOf(up)
		}
	}
	id.Workload = w
	return id, nil
}

// controlsPods says whether w may be a pod's controller: among the built-in API groups only
// ReplicaSets, StatefulSets, DaemonSets, Jobs and ReplicationControllers create pods. Kinds of
// other groups (an Argo Rollout, say) are taken at their word.
func controlsPods(w Workload) bool {
	switch w.Group {
	case "":
		return w.Kind == "ReplicationController"
	case "apps":
		return w.Kind == "ReplicaSet" || w.Kind == "StatefulSet" || w.Kind == "DaemonSet"
	case "batch":
		return w.Kind == "Job"
	}
	return true
}

// checked says whether w is a workload whose existence, under the UID the pod's reference
// names, is looked up before it stands for the pod: a reference is written by whoever
// creates the pod. Other controllers (an Argo Rollout, say) stand for their pods unchecked.
func checked(w Workload) bool {
	return w.Group == "apps" && (w.Kind == "StatefulSet" || w.Kind == "DaemonSet")
}

// intermediate says whether w is an object a controller creates for its workload, so that
// the workload, not w, stands for the pods.
func intermediate(w Workload) bool {
	return (w.Group == "apps" && w.Kind == "ReplicaSet") || (w.Group == "batch" && w.Kind == "Job")
}

func workloadOf(ref *metav1.OwnerReference) Workload {
	// An unparsable apiVersion leaves the group empty; the kind and name still tell owners apart.
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return Workload{Group: gv.Group, Kind: ref.Kind, Name: ref.Name}
}
