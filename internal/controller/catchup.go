package controller

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// maxCatchUpPriority bounds catchUpPriority: a refresh overdue by more than a year is not
// more urgent than one overdue by a year.
const maxCatchUpPriority = 365 * 24 * 60 * 60

// catchUpPriority is the work-queue priority of a session the operator finds when it starts
// or takes over as leader. The longer its refresh is overdue, the higher: overdue sessions
// are caught up earliest deadline first. Sessions without a schedule (new ones) come next,
// and sessions that are not due come last, since reconciling them asks TIDAL nothing.
func catchUpPriority(session *sessionsv1alpha1.TidalSession, now time.Time) int {
	next := session.Status.NextRefreshTime
	if next == nil {
		return 0
	}
	overdue := now.Sub(next.Time)
	if overdue < 0 {
		return handler.LowPriority
	}
	return 1 + int(min(overdue/time.Second, maxCatchUpPriority))
}

// sessionEvents is controller-runtime's EnqueueRequestForObject, except that the sessions
// of the initial list enter the queue with their catch-up priority.
func (r *TidalSessionReconciler) sessionEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	base := &handler.EnqueueRequestForObject{}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object],
			q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			session, ok := e.Object.(*sessionsv1alpha1.TidalSession)
			pq, isPriorityQueue := q.(priorityqueue.PriorityQueue[reconcile.Request])
			if !ok || !isPriorityQueue || !e.IsInInitialList {
				base.Create(ctx, e, q)
				return
			}
			priority := catchUpPriority(session, r.Clock.Now())
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: &priority},
				reconcile.Request{NamespacedName: client.ObjectKeyFromObject(session)})
		},
		UpdateFunc:  base.Update,
		DeleteFunc:  base.Delete,
		GenericFunc: base.Generic,
	}
}
