// Package controller holds the TidalSession reconciler.
package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// TIDAL is what the reconciler needs of TIDAL; *tidal.Client implements it.
type TIDAL interface {
	Refresh(ctx context.Context, creds tidal.Credentials) (*tidal.Token, error)
	Session(ctx context.Context, accessToken string) (*tidal.SessionInfo, error)
	UsersMe(ctx context.Context, accessToken string) (*tidal.SessionInfo, error)
	StartDeviceLogin(ctx context.Context, creds tidal.Credentials) (*tidal.DeviceAuthorization, error)
	PollDeviceLogin(ctx context.Context, creds tidal.Credentials, deviceCode string) (*tidal.Token, error)
}

// TidalSessionReconciler keeps each TidalSession's access token fresh in its output Secret.
type TidalSessionReconciler struct {
	client.Client
	// APIReader reads without the cache: the cache holds only managed Secrets.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	TIDAL     TIDAL
	// RecheckInterval is how long a session waits for a change the operator cannot watch,
	// such as a credentials Secret appearing.
	RecheckInterval time.Duration
	// rejected remembers the refresh tokens TIDAL rejected, per session.
	rejected rejectedTokens
	// gates pauses the sessions of a TIDAL client together after a 429 or invalid_client.
	gates clientGates
	// logins holds the device codes of running device logins, per session.
	logins deviceLogins
	// written remembers which cached versions the last status writes made outdated.
	written outdatedVersions
	// RetryBase is the first wait of the backoff after a failure at TIDAL; 0 means
	// schedule.RetryBase. Tests shorten it.
	RetryBase time.Duration
	// Name names the controller in logs and metrics; empty means "tidalsession". Names
	// must be unique within a process.
	Name string
	// MaxConcurrentReconciles is how many sessions are reconciled at once; 0 means 1. One
	// slow answer from TIDAL then delays only its own session.
	MaxConcurrentReconciles int
	// Anomaly holds the thresholds of the binding's anomaly rules; zero fields take defaults.
	Anomaly AnomalyRules
}

// EventReporter is the name the operator's Events give as their reporting controller, from
// the reconciler and the token endpoint alike.
const EventReporter = "tidal-session-operator"

// +kubebuilder:rbac:groups=sessions.tidal-mcp.dev,resources=tidalsessions,verbs=get;list;watch
// +kubebuilder:rbac:groups=sessions.tidal-mcp.dev,resources=tidalsessions/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one TidalSession's output Secret and status up to date. Status is
// written once, at the end, from whatever the steps recorded.
func (r *TidalSessionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	session := &sessionsv1alpha1.TidalSession{}
	if err := r.getSession(ctx, req.NamespacedName, session); err != nil {
		// Gone: the output Secret's owner reference lets the garbage collector remove it.
		if apierrors.IsNotFound(err) {
			r.rejected.forget(req.NamespacedName)
			r.logins.forget(req.NamespacedName)
			r.written.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// before is the status as stored; the one write at the end is computed against it.
	before := session.DeepCopy()

	result, err := r.reconcileSession(ctx, session, before)
	result, err = r.recordOutcome(ctx, session, before, result, err)
	countPhaseChange(before, session)

	if perr := r.patchStatus(ctx, before, session); perr != nil {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	return result, err
}

// reconcileSession runs the steps of one reconcile. It records success in the status
// itself; failures are returned for recordOutcome to record. stored is the status as stored,
// kept in step by a step that must write before the end (see markAwaitingAnswer).
func (r *TidalSessionReconciler) reconcileSession(ctx context.Context, session, stored *sessionsv1alpha1.TidalSession) (ctrl.Result, error) {
	session.Status.ObservedGeneration = session.Generation
	if session.Spec.Suspend {
		return ctrl.Result{}, r.suspendedStep(ctx, session)
	}
	if err := validateSpec(session); err != nil {
		return ctrl.Result{}, err
	}

	existing, err := r.getOutputSecret(ctx, session)
	if err != nil {
		return ctrl.Result{}, err
	}
	if existing, err = r.moveOutputSecret(ctx, session, existing); err != nil {
		return ctrl.Result{}, err
	}
	// Consumers are judged before anything else can stop the reconcile: the Secret may still
	// hold a valid token while the session waits for credentials or a new login.
	if err := r.bindingStep(ctx, session, existing); err != nil {
		return ctrl.Result{}, err
	}

	creds, version, err := r.loadCredentials(ctx, session)
	if err != nil {
		return ctrl.Result{}, err
	}
	sameToken := r.rejected.rejected(client.ObjectKeyFromObject(session), creds.RefreshToken)
	if err := awaitNewCredentials(session, version, sameToken, r.RecheckInterval); err != nil {
		return r.reauthStep(ctx, session, creds, err)
	}
	// The credentials are worth a try: a device login, if one ran, is no longer needed.
	r.endLogin(session)
	session.Status.CredentialsVersion = version

	now := r.Clock.Now()
	st := tokenStateOf(existing)
	due, next := refreshDue(now, st, session.Spec.Refresh, string(session.UID))
	decision, wait := decideRequest(session.Annotations[sessionsv1alpha1.RefreshRequestAnnotation],
		session.Status.LastRefreshRequest, st.refreshedAt, now)
	if due || decision == requestDue {
		result, asked, err := r.refreshUnlessFailing(ctx, session, stored, creds, existing, now)
		if asked && err == nil {
			r.handleRequest(session, decision, true)
		}
		return result, err
	}
	nextCheck, rejected, err := r.healthStep(ctx, session, existing, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if rejected {
		// TIDAL refused a token we think valid: refresh now; its lookup is the re-check.
		result, _, err := r.refreshUnlessFailing(ctx, session, stored, creds, existing, now)
		return result, err
	}
	r.handleRequest(session, decision, false)
	if decision == requestTooSoon {
		next = now.Add(min(next.Sub(now), wait))
	}
	markTokenValid(session, st, next, now)
	return ctrl.Result{RequeueAfter: requeueAfter(now, next, nextCheck)}, nil
}

// suspendedStep keeps judging the consumers of a suspended session, whose output Secret may
// still hold a valid token: side effects are bindingStep's, when the spec is valid and the
// output Secret is the operator's. It returns a quarantine, or the terminal Suspended state,
// which only a change of the spec ends.
func (r *TidalSessionReconciler) suspendedStep(ctx context.Context, session *sessionsv1alpha1.TidalSession) error {
	if validateSpec(session) == nil {
		if existing, err := r.getOutputSecret(ctx, session); err == nil {
			if err := r.bindingStep(ctx, session, existing); err != nil {
				return err
			}
		}
	}
	return terminalf(sessionsv1alpha1.PhaseSuspended, sessionsv1alpha1.ReasonSuspended,
		"spec.suspend is true: the token is not refreshed; set it to false to resume")
}

// refreshUnlessFailing refreshes now, unless the session is backing off after failures at
// TIDAL: then neither a watch event, a person's request nor a rejected check may ask TIDAL
// before the backoff says so, and status already says when. asked says whether it refreshed.
func (r *TidalSessionReconciler) refreshUnlessFailing(ctx context.Context, session, stored *sessionsv1alpha1.TidalSession,
	creds tidal.Credentials, existing *corev1.Secret, now time.Time) (result ctrl.Result, asked bool, err error) {
	if backoff, failing := backoffRemaining(session.Status, now); failing {
		return ctrl.Result{RequeueAfter: backoff}, false, nil
	}
	result, err = r.refresh(ctx, session, stored, creds, existing)
	return result, true, err
}

// requeueAfter is how long to wait from now until the earliest of times, at least a second:
// a zero RequeueAfter would mean no requeue at all.
func requeueAfter(now time.Time, times ...time.Time) time.Duration {
	wait := times[0].Sub(now)
	for _, t := range times[1:] {
		wait = min(wait, t.Sub(now))
	}
	return max(wait, time.Second)
}

// handleRequest records the outcome of the refresh request annotation in status and Events.
// refreshed says whether this reconcile refreshed the token, which satisfies any request.
func (r *TidalSessionReconciler) handleRequest(session *sessionsv1alpha1.TidalSession, decision request, refreshed bool) {
	value := session.Annotations[sessionsv1alpha1.RefreshRequestAnnotation]
	switch {
	case decision == requestInvalid:
		session.Status.LastRefreshRequest = requestKey(value)
		r.event(session, corev1.EventTypeWarning, sessionsv1alpha1.ReasonRefreshRequestInvalid, "Refresh",
			"The "+sessionsv1alpha1.RefreshRequestAnnotation+" annotation must be an RFC 3339 time such as "+
				"2026-12-04T10:00:00Z; the request is ignored")
	case decision == requestSatisfied:
		session.Status.LastRefreshRequest = requestKey(value)
	case refreshed && (decision == requestDue || decision == requestTooSoon):
		session.Status.LastRefreshRequest = requestKey(value)
		r.event(session, corev1.EventTypeNormal, sessionsv1alpha1.ReasonRefreshRequested, "Refresh",
			"Refreshed on request ("+sessionsv1alpha1.RefreshRequestAnnotation+")")
	}
}

// SetupWithManager registers the reconciler. It watches TidalSessions, the initial list
// ordered by catchUpPriority, the Secrets they own, and the Pods that reference an output
// Secret, for binding; the manager's cache is limited to managed Secrets and stripped Pods
// (see CacheOptions). It indexes Pods by the Secrets they reference and sessions by their
// output Secret, so that a Pod event finds its sessions and a session its consumers.
func (r *TidalSessionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &corev1.Pod{}, podSecretsIndex, indexPodSecrets); err != nil {
		return fmt.Errorf("failed to index Pods by Secret: %w", err)
	}
	if err := indexer.IndexField(ctx, &sessionsv1alpha1.TidalSession{}, outputSecretIndex, indexOutputSecret); err != nil {
		return fmt.Errorf("failed to index TidalSessions by output Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Watches(&sessionsv1alpha1.TidalSession{}, r.sessionEvents(), builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(),
			&sessionsv1alpha1.TidalSession{}, handler.OnlyControllerOwner())).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.sessionsForPod), builder.WithPredicates(podChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Named(cmp.Or(r.Name, "tidalsession")).
		Complete(r)
}

// patchStatus writes the status through the status subresource when it changed, and only
// then: a reconcile that changed nothing makes no write.
func (r *TidalSessionReconciler) patchStatus(ctx context.Context, before, session *sessionsv1alpha1.TidalSession) error {
	if equality.Semantic.DeepEqual(before.Status, session.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, session, client.MergeFrom(before)); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.written.remember(client.ObjectKeyFromObject(session), before.ResourceVersion)
	logf.FromContext(ctx).V(2).Info("Status updated", "session", klog.KObj(session), "phase", session.Status.Phase)
	return nil
}
