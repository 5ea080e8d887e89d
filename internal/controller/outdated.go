package controller

import (
	"context"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// outdatedVersions remembers, per session, the resourceVersions that the reconciler's own
// status writes replaced. A reconcile that a write of its own triggers (the output Secret it
// just changed, say) can run before the cache has seen the status written with it; status
// that counts and reports things once (binding violations, quarantines, approvals) must not
// be decided twice from an older copy. A refresh writes status twice (markAwaitingAnswer),
// so the cache may lag by either write; resourceVersions never come back, so keeping the last
// few is enough.
type outdatedVersions struct {
	mu sync.Mutex
	m  map[types.NamespacedName][]string
}

// keptVersions bounds how many replaced versions are remembered per session.
const keptVersions = 4

func (o *outdatedVersions) remember(session types.NamespacedName, replaced string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[types.NamespacedName][]string{}
	}
	v := append(o.m[session], replaced)
	o.m[session] = v[max(0, len(v)-keptVersions):]
}

func (o *outdatedVersions) forget(session types.NamespacedName) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, session)
}

func (o *outdatedVersions) outdated(session types.NamespacedName, version string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Contains(o.m[session], version)
}

// getSession reads the session from the cache, or from the API server when the cache still
// holds the version that the last status write replaced.
func (r *TidalSessionReconciler) getSession(ctx context.Context, key types.NamespacedName, session *sessionsv1alpha1.TidalSession) error {
	if err := r.Get(ctx, key, session); err != nil {
		return err
	}
	if !r.written.outdated(key, session.ResourceVersion) {
		return nil
	}
	return r.APIReader.Get(ctx, key, session)
}
