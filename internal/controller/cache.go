package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// CacheOptions limits what the operator's manager caches. Clusters hold tens of thousands
// of Secrets; the operator caches only those it manages, found by label, and reads a
// session's credentials Secret directly when it needs it. It watches every Pod of the
// namespaces it manages, to see who consumes an output Secret (binding), but keeps of each
// only what binding reads (stripPod): unrelated pods' full specs are never held. An empty
// namespaces list means all namespaces.
func CacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{
				sessionsv1alpha1.ManagedByLabel: sessionsv1alpha1.ManagedByValue,
			})},
			&corev1.Pod{}: {Transform: stripPod},
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, n := range namespaces {
			opts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	return opts
}
