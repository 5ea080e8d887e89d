package fingerprint

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func ctrlRef(apiVersion, kind, name string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptr.To(true)}
}

// owners is a cluster in miniature: the owner references of each ReplicaSet and Job.
var owners = map[string][]metav1.OwnerReference{
	"ReplicaSet/mcp-5d4f8b":     {ctrlRef("apps/v1", "Deployment", "mcp")},
	"ReplicaSet/mcp-77c9aa":     {ctrlRef("apps/v1", "Deployment", "mcp")},
	"ReplicaSet/other-1a2b3c":   {ctrlRef("apps/v1", "Deployment", "other")},
	"ReplicaSet/orphan":         nil,
	"Job/sync-29000000":         {ctrlRef("batch/v1", "CronJob", "sync")},
	"Job/sync-29000060":         {ctrlRef("batch/v1", "CronJob", "sync")},
	"Job/oneoff":                nil,
	"ReplicaSet/rollout-abcdef": {ctrlRef("argoproj.io/v1alpha1", "Rollout", "mcp")},
	"StatefulSet/db":            nil,
	"StatefulSet/mcp":           nil,
	"DaemonSet/agent":           nil,
}

func lookup(_, kind, name string, _ types.UID) ([]metav1.OwnerReference, error) {
	o, ok := owners[kind+"/"+name]
	if !ok {
		return nil, ErrOwnerGone
	}
	return o, nil
}

func pod(name, sa string, refs ...metav1.OwnerReference) Pod {
	return Pod{Namespace: "music", Name: name, ServiceAccount: sa, Owners: refs}
}

func fp(t *testing.T, p Pod) string {
	t.Helper()
	id, err := Resolve(p, lookup)
	if err != nil {
		t.Fatalf("resolve %s: %v", p.Name, err)
	}
	return id.Fingerprint()
}

func TestSameWorkloadSameFingerprint(t *testing.T) {
	rs1 := ctrlRef("apps/v1", "ReplicaSet", "mcp-5d4f8b")
	rs2 := ctrlRef("apps/v1", "ReplicaSet", "mcp-77c9aa")
	for _, tc := range []struct {
		name string
		a, b Pod
	}{
		{"pod restarted under the same ReplicaSet", pod("mcp-5d4f8b-x1", "mcp", rs1), pod("mcp-5d4f8b-y2", "mcp", rs1)},
		{"rollout: new ReplicaSet of the same Deployment", pod("mcp-5d4f8b-x1", "mcp", rs1), pod("mcp-77c9aa-z3", "mcp", rs2)},
		{"CronJob runs a new Job", pod("sync-29000000-a", "sync", ctrlRef("batch/v1", "Job", "sync-29000000")),
			pod("sync-29000060-b", "sync", ctrlRef("batch/v1", "Job", "sync-29000060"))},
		{"StatefulSet pod recreated", pod("db-0", "db", ctrlRef("apps/v1", "StatefulSet", "db")),
			pod("db-0", "db", ctrlRef("apps/v1", "StatefulSet", "db"))},
		{"DaemonSet pods on two nodes", pod("agent-abc", "agent", ctrlRef("apps/v1", "DaemonSet", "agent")),
			pod("agent-def", "agent", ctrlRef("apps/v1", "DaemonSet", "agent"))},
		{"bare pod recreated under its name", pod("debug", "mcp"), pod("debug", "mcp")},
		{"no ServiceAccount is the default one", pod("debug", ""), pod("debug", "default")},
		{"non-controller owners are ignored", pod("debug", "mcp"),
			pod("debug", "mcp", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "x"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a, b := fp(t, tc.a), fp(t, tc.b); a != b {
				t.Errorf("fingerprints differ: %s vs %s", a, b)
			}
		})
	}
}

func TestDifferentDeviceDifferentFingerprint(t *testing.T) {
	rs1 := ctrlRef("apps/v1", "ReplicaSet", "mcp-5d4f8b")
	base := pod("mcp-5d4f8b-x1", "mcp", rs1)
	for _, tc := range []struct {
		name  string
		other Pod
	}{
		{"another ServiceAccount", pod("mcp-5d4f8b-x1", "intruder", rs1)},
		{"another Deployment", pod("other-1a2b3c-q", "mcp", ctrlRef("apps/v1", "ReplicaSet", "other-1a2b3c"))},
		{"a bare pod of the Deployment's name", pod("mcp", "mcp")},
		{"a StatefulSet of the Deployment's name", pod("mcp-0", "mcp", ctrlRef("apps/v1", "StatefulSet", "mcp"))},
		{"another group's kind of the same name", pod("mcp-x", "mcp", ctrlRef("apps/v1", "ReplicaSet", "rollout-abcdef"))},
		{"another namespace", Pod{Namespace: "other", Name: "mcp-5d4f8b-x1", ServiceAccount: "mcp", Owners: []metav1.OwnerReference{rs1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a, b := fp(t, base), fp(t, tc.other); a == b {
				t.Errorf("fingerprints equal: %s", a)
			}
		})
	}
}

func TestResolveWorkload(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  Pod
		want string
	}{
		{"Deployment", pod("p", "sa", ctrlRef("apps/v1", "ReplicaSet", "mcp-5d4f8b")), "Deployment/mcp"},
		{"ReplicaSet without a Deployment", pod("p", "sa", ctrlRef("apps/v1", "ReplicaSet", "orphan")), "ReplicaSet/orphan"},
		{"CronJob", pod("p", "sa", ctrlRef("batch/v1", "Job", "sync-29000000")), "CronJob/sync"},
		{"Job without a CronJob", pod("p", "sa", ctrlRef("batch/v1", "Job", "oneoff")), "Job/oneoff"},
		{"another controller above a ReplicaSet", pod("p", "sa", ctrlRef("apps/v1", "ReplicaSet", "rollout-abcdef")),
			"Rollout.argoproj.io/mcp"},
		{"bare pod", pod("debug", "sa"), "Pod/debug"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := Resolve(tc.pod, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if got := id.Workload.String(); got != tc.want {
				t.Errorf("workload %s, want %s", got, tc.want)
			}
		})
	}
}

func TestResolveOwnerGone(t *testing.T) {
	for _, kind := range []string{"ReplicaSet", "StatefulSet", "DaemonSet"} {
		_, err := Resolve(pod("p", "sa", ctrlRef("apps/v1", kind, "deleted")), lookup)
		if !errors.Is(err, ErrOwnerGone) {
			t.Errorf("%s: err = %v, want ErrOwnerGone", kind, err)
		}
	}
	// Built-in kinds that never own pods are no owners: the pod stands for itself.
	for _, ref := range []metav1.OwnerReference{ctrlRef("apps/v1", "Deployment", "mcp"),
		ctrlRef("apps/v1beta2", "Deployment", "mcp"), ctrlRef("batch/v1", "CronJob", "sync"), ctrlRef("v1", "Pod", "mcp-0")} {
		id, err := Resolve(pod("forged", "mcp", ref), lookup)
		if err != nil || id.Workload != (Workload{Kind: "Pod", Name: "forged"}) {
			t.Errorf("pod owned by %s %s: %+v, %v; want Pod/forged", ref.APIVersion, ref.Kind, id.Workload, err)
		}
	}
	// Controllers the operator does not know stand for their pods unchecked.
	id, err := Resolve(pod("p", "sa", ctrlRef("argoproj.io/v1alpha1", "Rollout", "never-looked-up")), lookup)
	if err != nil || id.Workload.Name != "never-looked-up" {
		t.Errorf("Rollout: %+v, %v", id, err)
	}
}

func TestFingerprintFormat(t *testing.T) {
	got := Identity{Namespace: "music", ServiceAccount: "mcp", Workload: Workload{Group: "apps", Kind: "Deployment", Name: "mcp"}}.Fingerprint()
	if !strings.HasPrefix(got, "v1:") || len(got) != len("v1:")+64 {
		t.Errorf("fingerprint %q is not v1: and 64 hex digits", got)
	}
	// The encoding is part of the stored state: changing it must come with a new version, or
	// every stored fingerprint stops matching. The digest below was computed independently
	// (sha256sum of the JSON array) and is pinned.
	if want := "v1:" + pinned; got != want {
		t.Errorf("fingerprint %s, want %s", got, want)
	}
	// Fields cannot bleed into each other: "a"+"bc" and "ab"+"c" differ.
	x := Identity{Namespace: "a", ServiceAccount: "bc", Workload: Workload{Kind: "Pod", Name: "p"}}.Fingerprint()
	y := Identity{Namespace: "ab", ServiceAccount: "c", Workload: Workload{Kind: "Pod", Name: "p"}}.Fingerprint()
	if x == y {
		t.Errorf("ambiguous encoding: %s", x)
	}
}

// pinned is the SHA-256 of ["v1","music","mcp","apps","Deployment","mcp"].
const pinned = "daf9c1a703165f80ab1d522827f2cd4d723340e56876eb085e1c6765c1981952"
