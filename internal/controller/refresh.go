package controller

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/schedule"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// refreshDue decides whether the token described by st must be refreshed at now, and when
// the next refresh of the session with the given UID falls. No usable token means a
// refresh now.
func refreshDue(now time.Time, st tokenState, policy sessionsv1alpha1.RefreshPolicy, uid string) (bool, time.Time) {
	if !st.present {
		return true, now
	}
	next := schedule.NextRefresh(st.refreshedAt, st.expiresAt.Sub(st.refreshedAt), policy, uid)
	return !now.Before(next), next
}

// request is what a refresh request annotation asks of the operator now.
type request int

const (
	// requestNone: no annotation, or one already handled.
	requestNone request = iota
	// requestSatisfied: a refresh after the requested time has happened; nothing to do.
	requestSatisfied
	// requestDue: refresh now.
	requestDue
	// requestTooSoon: refresh, but not before MinInterval has passed since the last one.
	requestTooSoon
	// requestInvalid: the value is no RFC 3339 time.
	requestInvalid
)

// maxRequestValue bounds what is recorded of an annotation value in status.
const maxRequestValue = 64

// requestKey is what status records of an annotation value: at most maxRequestValue bytes,
// cut at a character boundary so that the API server stores exactly what was recorded.
func requestKey(value string) string { return cutUTF8(value, maxRequestValue) }

// cutUTF8 is s cut to at most n bytes at a character boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// backoffRemaining says whether the session is backing off after failures at TIDAL, and
// for how long still: until status.nextRefreshTime, which recordOutcome set from the
// backoff. A person's refresh request does not cut it short: that would let annotating in a
// loop hammer a failing TIDAL.
func backoffRemaining(status sessionsv1alpha1.TidalSessionStatus, now time.Time) (time.Duration, bool) {
	if status.ConsecutiveFailures == 0 || status.NextRefreshTime == nil || !now.Before(status.NextRefreshTime.Time) {
		return 0, false
	}
	return status.NextRefreshTime.Sub(now), true
}

// decideRequest decides what the refresh request annotation value asks, given the value
// last handled and when the current token arrived. A refresh in a later second than the
// requested time satisfies the request, which coalesces requests made while a refresh was
// in flight; a refresh is never sooner than MinInterval after the last, so annotating in a
// loop cannot make the operator hammer TIDAL. For requestTooSoon it also returns how long
// to wait.
func decideRequest(value, handled string, lastRefresh, now time.Time) (request, time.Duration) {
	if value == "" || requestKey(value) == handled {
		return requestNone, 0
	}
	requestedAt, err := time.Parse(time.RFC3339, value)
	switch {
	case err != nil:
		return requestInvalid, 0
	case lastRefresh.After(requestedAt):
		// Both are in whole seconds: a refresh in the same second as the request may have
		// come before it, so only a later one satisfies it.
		return requestSatisfied, 0
	case now.Sub(lastRefresh) < schedule.MinInterval:
		return requestTooSoon, schedule.MinInterval - now.Sub(lastRefresh)
	}
	return requestDue, 0
}

// sessionInfo is what the output Secret and status say about the TIDAL session.
type sessionInfo struct {
	SessionID   string
	UserID      string
	CountryCode string
	ClientID    string
	ClientName  string
}

// refresh asks TIDAL for a new access token and writes it to the output Secret.
// Side effects, in order: status marked as awaiting TIDAL's answer (see markAwaitingAnswer);
// a token request to TIDAL, unless the session's client is paused (see clientGates); on
// failure, an expired token marked so in the output Secret; a rotated refresh token stored in
// the credentials Secret; a session lookup at TIDAL; the output Secret created or updated;
// status and Events for the success. A failure at TIDAL is returned as a tidal.Error.
func (r *TidalSessionReconciler) refresh(ctx context.Context, session, stored *sessionsv1alpha1.TidalSession,
	creds tidal.Credentials, existing *corev1.Secret) (ctrl.Result, error) {
	if err := r.gates.admit(gateKey(creds), r.Clock.Now()); err != nil {
		r.markOutputExpired(ctx, existing)
		return ctrl.Result{}, err
	}
	lost, err := r.markAwaitingAnswer(ctx, session, stored)
	if err != nil {
		return ctrl.Result{}, err
	}
	start := time.Now()
	tok, err := r.TIDAL.Refresh(ctx, creds)
	metrics.RefreshDuration.Observe(time.Since(start).Seconds())
	metrics.RefreshAttempts.WithLabelValues(refreshResult(err)).Inc()
	// A rotated refresh token is stored before anything else, even from an answer that is
	// otherwise unusable: TIDAL may already have retired the old one.
	if tok != nil && tok.RefreshToken != "" {
		if err := r.storeRefreshToken(ctx, session, tok.RefreshToken); err != nil {
			return ctrl.Result{}, err
		}
		r.event(session, corev1.EventTypeNormal, sessionsv1alpha1.ReasonTokenRotated, "Refresh",
			"TIDAL rotated the refresh token; the new one is stored in the credentials Secret")
	}
	if answered(err) {
		session.Status.RefreshStartedAt = nil
	}
	err = r.gates.observe(gateKey(creds), err, r.Clock.Now(), r.RetryBase)
	if tidal.KindOf(err) == tidal.GrantInvalid {
		r.rejected.remember(client.ObjectKeyFromObject(session), creds.RefreshToken)
		switch {
		case lost != nil:
			err = &lostAnswerError{err: err, since: lost.Time}
		case issuedTokenRejected(session.Status):
			err = &reusedTokenError{err: err}
			metrics.SecurityEvents.WithLabelValues(metrics.SecurityRefreshTokenReused).Inc()
			r.raiseAnomaly(session, sessionsv1alpha1.ReasonRefreshTokenReused,
				"TIDAL rejected the refresh token it had issued to the operator; someone else may have used it first", false)
		}
	} else if err == nil {
		r.rejected.forget(client.ObjectKeyFromObject(session))
	}
	if err != nil {
		r.markOutputExpired(ctx, existing)
		return ctrl.Result{}, err
	}
	return r.useToken(ctx, session, tok, existing)
}

// useToken puts a new access token from TIDAL to use, whether a refresh or a device login
// brought it. Side effects, in order: a session lookup at TIDAL; the output Secret created or
// updated; status and Events for the success.
func (r *TidalSessionReconciler) useToken(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	tok *tidal.Token, existing *corev1.Secret) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	// The new token's session is looked up at TIDAL, which is a check like the periodic
	// ones. It is best effort: the token is good whatever it answers.
	info, checkErr := r.checkSession(ctx, session, tok.AccessToken)
	r.recordCheck(ctx, session, info, checkErr, r.Clock.Now())
	if quarantined(session) {
		// The lookup found another identity behind the session: the new token is not written.
		return ctrl.Result{}, r.enforceQuarantine(ctx, session, existing)
	}
	if session.Status.UserID == "" {
		session.Status.UserID = tok.UserID
	}
	data, err := outputSecretData(tok, knownInfo(session))
	if err != nil {
		return ctrl.Result{}, err
	}
	created, err := r.writeOutputSecret(ctx, session, existing, data, tok.ReceivedAt)
	if err != nil {
		return ctrl.Result{}, err
	}
	if created && existing == nil && session.Status.RefreshCount > 0 {
		r.event(session, corev1.EventTypeNormal, sessionsv1alpha1.ReasonOutputSecretCreated, "Refresh",
			"Output Secret was missing and has been created again")
	}

	r.recordClockSkew(ctx, session, tok)
	st := tokenState{present: true, refreshedAt: truncate(tok.ReceivedAt), expiresAt: truncate(tok.ExpiresAt)}
	_, next := refreshDue(tok.ReceivedAt, st, session.Spec.Refresh, string(session.UID))
	// Routine refreshes are no Events: hourly ones would leave a day's worth of identical
	// Events per session (the recorder folds repeats only within minutes), which would drown
	// the Events that matter in kubectl describe. Status and metrics count them.
	if session.Status.RefreshCount == 0 {
		metrics.TimeToFirstReady.Observe(r.Clock.Since(session.CreationTimestamp.Time).Seconds())
		r.event(session, corev1.EventTypeNormal, sessionsv1alpha1.ReasonRefreshed, "Refresh",
			"Wrote the first access token to the output Secret")
	}
	now := r.Clock.Now()
	markRefreshed(session, st, next, now)
	log.Info("Refreshed access token", "session", klog.KObj(session),
		"expiresAt", st.expiresAt, "nextRefresh", next)
	// The output Secret just written comes back as a watch event, whose reconcile schedules
	// the next health check too.
	return ctrl.Result{RequeueAfter: requeueAfter(now, next)}, nil
}

// markAwaitingAnswer records in status, before TIDAL is asked, that an answer is awaited,
// and returns when an earlier request's answer started to be awaited if it never arrived.
// The record has to be stored before the request: TIDAL may rotate the refresh token in its
// answer, and if the operator stops before it has stored the new one, only this record tells
// the next attempt why TIDAL then rejects the old one. stored is kept in step with what was
// written, so that the reconcile's final status write can clear the record.
func (r *TidalSessionReconciler) markAwaitingAnswer(ctx context.Context, session, stored *sessionsv1alpha1.TidalSession) (*metav1.Time, error) {
	if lost := session.Status.RefreshStartedAt; lost != nil {
		return lost, nil
	}
	// The patch goes from a copy of the stored object: it writes the record alone, and the
	// answer it reads back must not overwrite what this reconcile has recorded so far.
	started := timePtr(truncate(r.Clock.Now()))
	obj := stored.DeepCopy()
	obj.Status.RefreshStartedAt = started
	if err := r.Status().Patch(ctx, obj, client.MergeFrom(stored)); err != nil {
		return nil, fmt.Errorf("failed to record the start of a refresh in status: %w", err)
	}
	// The final status write of this reconcile replaces the version just written.
	r.written.remember(client.ObjectKeyFromObject(session), obj.ResourceVersion)
	session.Status.RefreshStartedAt = started
	stored.Status.RefreshStartedAt = started
	return nil, nil
}

// issuedTokenRejected says whether the refresh token just rejected is one TIDAL issued to the
// operator: the credentials Secret still has the version the operator gave it when it stored
// that token. A token a person put there, or one changed since, is routine expiry.
func issuedTokenRejected(st sessionsv1alpha1.TidalSessionStatus) bool {
	return st.IssuedTokenVersion != "" && st.CredentialsVersion == st.IssuedTokenVersion
}

// answered says whether TIDAL's answer to a request arrived, whatever it said. A failure
// without an HTTP status may have reached TIDAL and lost only the answer.
func answered(err error) bool {
	te, ok := tidalError(err)
	return err == nil || (ok && te.HTTPStatus != 0)
}

// maxClockSkew is the difference between TIDAL's clock and the operator's that is reported.
// The Date header has a resolution of a second and the answer takes time to arrive, so
// smaller differences say nothing.
const maxClockSkew = time.Minute

// clockSkew returns how far serverDate is ahead of receivedAt in whole seconds, when that
// is maxClockSkew or more either way, and 0 otherwise or without a Date header.
func clockSkew(serverDate, receivedAt time.Time) int64 {
	if serverDate.IsZero() {
		return 0
	}
	skew := serverDate.Sub(receivedAt)
	if skew.Abs() < maxClockSkew {
		return 0
	}
	return int64(skew / time.Second)
}

// recordClockSkew records in status how far TIDAL's clock is off ours, and tells people
// once when it starts to be. Expiry does not depend on it: it is computed by our clock from
// the moment the answer arrived.
func (r *TidalSessionReconciler) recordClockSkew(ctx context.Context, session *sessionsv1alpha1.TidalSession, tok *tidal.Token) {
	skew := clockSkew(tok.ServerDate, tok.ReceivedAt)
	if skew != 0 && session.Status.ClockSkewSeconds == 0 {
		msg := fmt.Sprintf("TIDAL's clock is %ds off the operator's; check the operator node's time "+
			"synchronisation (token expiry is computed by the operator's clock)", skew)
		r.event(session, corev1.EventTypeWarning, sessionsv1alpha1.ReasonClockSkew, "Refresh", msg)
		logf.FromContext(ctx).Info("Clock skew against TIDAL", "session", klog.KObj(session), "skewSeconds", skew)
	}
	session.Status.ClockSkewSeconds = skew
}

// knownInfo is what the status knows about the TIDAL session, for the output Secret.
func knownInfo(session *sessionsv1alpha1.TidalSession) sessionInfo {
	info := sessionInfo{UserID: session.Status.UserID, CountryCode: session.Status.CountryCode,
		ClientID: session.Status.ClientID}
	if h := session.Status.Health; h != nil {
		info.SessionID, info.ClientName = h.SessionID, h.ClientName
	}
	return info
}

func refreshResult(err error) string {
	if err == nil {
		return metrics.ResultSuccess
	}
	switch tidal.KindOf(err) {
	case tidal.GrantInvalid:
		return metrics.ResultGrantInvalid
	case tidal.ClientInvalid:
		return metrics.ResultClientInvalid
	default:
		return metrics.ResultTransient
	}
}

func truncate(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
