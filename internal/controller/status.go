package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/schedule"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// outcome is what a failed reconcile means for the session: its phase, its Ready
// condition, and how the reconcile ends.
type outcome struct {
	phase   sessionsv1alpha1.Phase
	ready   metav1.ConditionStatus
	reason  string
	message string
	// requeueAfter > 0 looks again after that delay; retry returns the error so the
	// controller's rate limiter backs off; neither waits for a change to the session.
	requeueAfter time.Duration
	retry        bool
}

// tokenHealth is what the output Secret's token is worth when a reconcile fails.
type tokenHealth int

const (
	// noToken: the operator has not written a token for the session yet.
	noToken tokenHealth = iota
	// tokenValid: the output Secret holds a token that has not expired.
	tokenValid
	// tokenExpired: the output Secret's token has expired.
	tokenExpired
)

// outcomeOf maps a reconcile error to its outcome. token says what the output Secret
// still holds, which decides between Pending, Degraded and Expired for a failure that may
// pass.
func outcomeOf(err error, token tokenHealth, recheck time.Duration) outcome {
	if w, ok := asWait(err); ok {
		return outcome{phase: w.phase, ready: metav1.ConditionFalse, reason: w.reason, message: w.msg, requeueAfter: w.after}
	}
	if t, ok := asTerminal(err); ok {
		return outcome{phase: t.phase, ready: metav1.ConditionFalse, reason: t.reason, message: t.msg}
	}
	if gone, ok := asSessionGone(err); ok {
		return reauth(sessionsv1alpha1.ReasonSessionGone, recheck, "A health check found that TIDAL no longer "+
			"knows the session or revoked its grant (%v). "+logInAgain, gone.err)
	}
	if lost, ok := asLostAnswer(err); ok {
		return reauth(sessionsv1alpha1.ReasonRefreshTokenLost, recheck, "TIDAL rejected the stored refresh token "+
			"(%v) after the answer to a refresh asked at %s was lost, to an operator restart or a broken "+
			"connection: TIDAL most likely rotated the refresh token in that answer. "+logInAgain,
			lost.err, lost.since.UTC().Format(time.RFC3339))
	}
	if reused, ok := asReusedToken(err); ok {
		return reauth(sessionsv1alpha1.ReasonRefreshTokenReused, recheck, "Possible theft: TIDAL rejected the "+
			"refresh token it had issued to the operator (%v), and nobody changed the credentials Secret since. "+
			"Someone else most likely used a copy first, or the grant was revoked. Find who can read the "+
			"credentials and output Secrets, then: "+logInAgain, reused.err)
	}
	switch tidal.KindOf(err) {
	case tidal.GrantInvalid:
		return reauth(sessionsv1alpha1.ReasonReauthRequired, recheck, "TIDAL rejected the refresh token (%v). "+
			logInAgain, err)
	case tidal.ClientInvalid:
		return outcome{phase: sessionsv1alpha1.PhaseError, ready: metav1.ConditionFalse,
			reason: sessionsv1alpha1.ReasonClientRejected, requeueAfter: recheck,
			message: fmt.Sprintf("TIDAL rejected the client id or secret (%v). Check the client "+
				"credentials in the credentials Secret", err)}
	}

	// A failure that may pass: retried (recordOutcome turns a failure at TIDAL into a
	// backoff of its own; anything else is returned to the controller's rate limiter).
	o := outcome{ready: metav1.ConditionFalse, reason: sessionsv1alpha1.ReasonRefreshRetrying, retry: true}
	switch token {
	case noToken:
		o.phase = sessionsv1alpha1.PhasePending
		o.message = fmt.Sprintf("No access token yet; refreshing failed and is retried: %v", err)
	case tokenValid:
		o.phase, o.ready = sessionsv1alpha1.PhaseDegraded, metav1.ConditionTrue
		o.message = fmt.Sprintf("The current token is still valid; refreshing failed and is retried: %v", err)
	default:
		o.phase, o.reason = sessionsv1alpha1.PhaseExpired, sessionsv1alpha1.ReasonTokenExpired
		o.message = fmt.Sprintf("The access token has expired and refreshing fails; retrying: %v", err)
	}
	return o
}

// logInAgain is what a person does for a session in ReauthRequired.
const logInAgain = "Log in again and put the new refresh token in the credentials Secret; the operator tries " +
	"again when it changes"

// reauth is the outcome of a session that only a new login can help. It is looked at again
// after recheck, but TIDAL is asked only once the credentials Secret has changed
// (awaitNewCredentials).
func reauth(reason string, recheck time.Duration, format string, args ...any) outcome {
	return outcome{phase: sessionsv1alpha1.PhaseReauthRequired, ready: metav1.ConditionFalse, reason: reason,
		requeueAfter: recheck, message: fmt.Sprintf(format, args...)}
}

// recordOutcome records a failed reconcile in the session's status, emits an Event when
// the session's state changed, and turns the error into the reconcile's result.
func (r *TidalSessionReconciler) recordOutcome(ctx context.Context, session, before *sessionsv1alpha1.TidalSession,
	result ctrl.Result, err error) (ctrl.Result, error) {
	if err == nil {
		r.eventOnPhaseChange(session, before)
		return result, nil
	}
	now := r.Clock.Now()
	token, untilExpiry := noToken, time.Duration(0)
	if exp := session.Status.AccessTokenExpiresAt; exp != nil {
		token, untilExpiry = tokenExpired, exp.Sub(now)
		if untilExpiry > 0 {
			token = tokenValid
		}
	}
	o := outcomeOf(err, token, r.RecheckInterval)
	if te, isTIDAL := tidalError(err); isTIDAL {
		o = r.planRetry(session, o, te, err, untilExpiry, now)
	}
	session.Status.Phase = o.phase
	setReady(session, o.ready, o.reason, o.message, now)

	// A change of state is news for people (level 0 and an Event); the same state again, as
	// a session waits or retries, is a trace (level 1).
	log := logf.FromContext(ctx)
	if changed := readyReason(before) != o.reason || before.Status.Phase != o.phase; changed {
		r.event(session, corev1.EventTypeWarning, o.reason, "Reconcile", o.message)
	} else {
		log = log.V(1)
	}
	log.Info("Session not refreshed", "session", klog.KObj(session), "reason", o.reason, "error", err.Error())
	switch {
	case o.retry:
		return ctrl.Result{}, err
	case o.requeueAfter > 0:
		return ctrl.Result{RequeueAfter: o.requeueAfter}, nil
	default:
		// Terminal: nothing changes until the session does, which triggers a reconcile.
		return ctrl.Result{}, nil
	}
}

// planRetry completes the outcome o of a failure at TIDAL (te, within err): it counts the
// failure in status, unless the session did not ask TIDAL at all, and for a failure that may
// pass it schedules the next attempt, in status and in the Ready message. The backoff counts
// failures in status, so it survives a restart of the operator.
func (r *TidalSessionReconciler) planRetry(session *sessionsv1alpha1.TidalSession, o outcome, te *tidal.Error, err error,
	untilExpiry time.Duration, now time.Time) outcome {
	paused, isPaused := asClientPaused(err)
	if !isPaused || paused.asked {
		session.Status.ConsecutiveFailures++
	}
	if !o.retry && !isPaused {
		return o
	}
	if o.retry {
		o.retry = false
		o.requeueAfter = retryDelay(te, session.Status.ConsecutiveFailures, untilExpiry, r.RetryBase)
	}
	if isPaused {
		// Asking before the client's pause ends would only be held back.
		o.requeueAfter = max(o.requeueAfter, paused.until.Sub(now))
	}
	next := now.Add(o.requeueAfter).UTC().Truncate(time.Second)
	session.Status.NextRefreshTime = timePtr(next)
	o.message += fmt.Sprintf(" (failures %d; next attempt at %s)", session.Status.ConsecutiveFailures,
		next.Format(time.RFC3339))
	return o
}

// retryDelay is how long to wait before trying TIDAL again after failures consecutive
// failures that may pass: TIDAL's Retry-After when it sent one, since asking earlier would
// only be refused again, and capped exponential backoff with jitter otherwise. A valid
// token's expiry cuts the wait short, so the session shows Expired on time.
func retryDelay(te *tidal.Error, failures int32, untilExpiry, base time.Duration) time.Duration {
	d := schedule.RetryDelay(failures, base)
	if te.RetryAfter > 0 {
		d = te.RetryAfter
	}
	if untilExpiry > 0 {
		d = min(d, untilExpiry+time.Second)
	}
	return d
}

func tidalError(err error) (*tidal.Error, bool) {
	var te *tidal.Error
	ok := errors.As(err, &te)
	return te, ok
}

// markTokenValid records that the output Secret holds a token that is not yet due.
func markTokenValid(session *sessionsv1alpha1.TidalSession, st tokenState, next time.Time, now time.Time) {
	session.Status.Phase = sessionsv1alpha1.PhaseActive
	session.Status.AccessTokenExpiresAt = timePtr(st.expiresAt)
	session.Status.LastRefreshTime = timePtr(st.refreshedAt)
	session.Status.NextRefreshTime = timePtr(next)
	session.Status.OutputSecretName = session.Spec.OutputSecret.Name
	setReady(session, metav1.ConditionTrue, sessionsv1alpha1.ReasonTokenValid,
		"The output Secret holds a valid access token", now)
}

// markRefreshed records a successful refresh.
func markRefreshed(session *sessionsv1alpha1.TidalSession, st tokenState, next time.Time, now time.Time) {
	markTokenValid(session, st, next, now)
	session.Status.RefreshCount++
	session.Status.ConsecutiveFailures = 0
}

func setReady(session *sessionsv1alpha1.TidalSession, status metav1.ConditionStatus, reason, message string, now time.Time) {
	setCondition(session, sessionsv1alpha1.ConditionReady, metav1.Condition{Status: status, Reason: reason, Message: message}, now)
}

// setCondition sets the condition of type condType from c's status, reason and message; the
// transition time moves only when the status flips (meta.SetStatusCondition).
func setCondition(session *sessionsv1alpha1.TidalSession, condType string, c metav1.Condition, now time.Time) {
	meta.SetStatusCondition(&session.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             c.Status,
		Reason:             c.Reason,
		Message:            c.Message,
		ObservedGeneration: session.Generation,
		LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
	})
}

func readyReason(session *sessionsv1alpha1.TidalSession) string {
	if c := meta.FindStatusCondition(session.Status.Conditions, sessionsv1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// eventOnPhaseChange tells people when a session recovers into Active.
func (r *TidalSessionReconciler) eventOnPhaseChange(session, before *sessionsv1alpha1.TidalSession) {
	if before.Status.Phase != session.Status.Phase && session.Status.Phase == sessionsv1alpha1.PhaseActive &&
		before.Status.Phase != "" && before.Status.Phase != sessionsv1alpha1.PhasePending {
		r.event(session, corev1.EventTypeNormal, sessionsv1alpha1.ReasonTokenValid, "Reconcile",
			"Session is active again")
	}
}

// event emits an Event about the session. note is a fixed or formatted text of ours; it
// never holds a token.
func (r *TidalSessionReconciler) event(session *sessionsv1alpha1.TidalSession, eventType, reason, action, note string) {
	r.Recorder.Eventf(session, nil, eventType, reason, action, "%s", note)
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

// countPhaseChange counts a change of phase in the metrics.
func countPhaseChange(before, after *sessionsv1alpha1.TidalSession) {
	if before.Status.Phase == after.Status.Phase {
		return
	}
	from := string(before.Status.Phase)
	if from == "" {
		from = "None"
	}
	metrics.PhaseTransitions.WithLabelValues(from, string(after.Status.Phase)).Inc()
}
