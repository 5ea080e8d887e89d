package controller

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

const (
	// defaultHealthInterval is the time between checks when the spec names none.
	defaultHealthInterval = 15 * time.Minute
	// maxUnknownRecheck bounds the wait after a check that could not tell, so that a TIDAL
	// hiccup does not leave a session unchecked for a whole long interval.
	maxUnknownRecheck = 5 * time.Minute
)

// healthInterval is the spec's check interval, or the default.
func healthInterval(policy sessionsv1alpha1.HealthCheckPolicy) time.Duration {
	if policy.Interval != nil && policy.Interval.Duration > 0 {
		return policy.Interval.Duration
	}
	return defaultHealthInterval
}

// healthDue decides whether a check of the session is due at now, and when the next one
// falls. A refresh counts as a check, since it looks the new token up at TIDAL.
func healthDue(health *sessionsv1alpha1.SessionHealth, policy sessionsv1alpha1.HealthCheckPolicy, now time.Time) (bool, time.Time) {
	if health == nil || health.LastCheckTime == nil {
		return true, now
	}
	wait := healthInterval(policy)
	if health.Result == sessionsv1alpha1.HealthUnknown {
		wait = min(wait, maxUnknownRecheck)
	}
	next := health.LastCheckTime.Add(wait)
	return !now.Before(next), next
}

// healthStep checks the session against TIDAL when a check is due, with the access token of
// the output Secret, and returns when the next check falls. rejected says that TIDAL refused
// the token; an error, that TIDAL no longer knows the session.
func (r *TidalSessionReconciler) healthStep(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	existing *corev1.Secret, now time.Time) (next time.Time, rejected bool, err error) {
	due, next := healthDue(session.Status.Health, session.Spec.HealthCheck, now)
	if !due || existing == nil {
		return next, false, nil
	}
	info, checkErr := r.checkSession(ctx, session, string(existing.Data[sessionsv1alpha1.KeyAccessToken]))
	switch r.recordCheck(ctx, session, info, checkErr, r.Clock.Now()) {
	case verdictGone:
		return next, false, &sessionGoneError{err: checkErr}
	case verdictTokenRejected:
		return next, true, nil
	}
	if quarantined(session) {
		// The check found another identity behind the session (recordCheck).
		return next, false, r.enforceQuarantine(ctx, session, existing)
	}
	_, next = healthDue(session.Status.Health, session.Spec.HealthCheck, now)
	return next, false, nil
}

// verdict is what a check's answer means for the session.
type verdict int

const (
	// verdictHealthy: TIDAL knows the session and accepted its token.
	verdictHealthy verdict = iota
	// verdictUnknown: the check failed for a reason that may pass; nothing changes.
	verdictUnknown
	// verdictTokenRejected: TIDAL refused the access token (401) without saying the grant is
	// gone: the token expired early or was invalidated. A refresh now, whose own lookup is the
	// re-check, tells more.
	verdictTokenRejected
	// verdictGone: TIDAL no longer knows the session or revoked its grant; only a new login
	// helps.
	verdictGone
	// verdictWrongEndpoint: /v1/sessions refused the token with 403, as it does for developer
	// apps' tokens; the spec should choose the UsersMe endpoint.
	verdictWrongEndpoint
)

// classifyCheck maps a check's error to its verdict.
func classifyCheck(err error, endpoint sessionsv1alpha1.HealthCheckEndpoint) verdict {
	if err == nil {
		return verdictHealthy
	}
	te, ok := tidalError(err)
	switch {
	case !ok:
		return verdictUnknown
	case te.Kind == tidal.GrantInvalid:
		return verdictGone
	case te.Kind == tidal.ClientInvalid, te.HTTPStatus == http.StatusUnauthorized:
		// A revoked client is handled, for all its sessions at once, by the refresh.
		return verdictTokenRejected
	case te.HTTPStatus == http.StatusForbidden && endpoint != sessionsv1alpha1.HealthCheckUsersMe:
		return verdictWrongEndpoint
	}
	return verdictUnknown
}

// checkSession asks TIDAL, at the endpoint the spec chooses, which session and user are
// behind accessToken.
func (r *TidalSessionReconciler) checkSession(ctx context.Context, session *sessionsv1alpha1.TidalSession, accessToken string) (sessionInfo, error) {
	var s *tidal.SessionInfo
	var err error
	if session.Spec.HealthCheck.Endpoint == sessionsv1alpha1.HealthCheckUsersMe {
		s, err = r.TIDAL.UsersMe(ctx, accessToken)
	} else {
		s, err = r.TIDAL.Session(ctx, accessToken)
	}
	if err != nil {
		return sessionInfo{}, err
	}
	return sessionInfo{SessionID: s.SessionID, UserID: s.UserID, CountryCode: s.CountryCode,
		ClientID: s.ClientID, ClientName: s.ClientName}, nil
}

// recordCheck records a check's outcome in status: status.health, the Healthy condition,
// and, for a healthy answer, the user, country and client behind the session. A change of
// any of those against what the status knew is a Warning Event, for people and for the
// binding and anomaly rules that build on it. It returns the verdict.
func (r *TidalSessionReconciler) recordCheck(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	info sessionInfo, err error, now time.Time) verdict {
	endpoint := session.Spec.HealthCheck.Endpoint
	v := classifyCheck(err, endpoint)
	metrics.HealthChecks.WithLabelValues(verdictLabel(v)).Inc()
	h := session.Status.Health
	if h == nil {
		h = &sessionsv1alpha1.SessionHealth{}
		session.Status.Health = h
	}
	at := timePtr(truncate(now))
	h.LastCheckTime = at
	status, reason, msg := metav1.ConditionUnknown, sessionsv1alpha1.ReasonHealthCheckFailed, ""
	switch v {
	case verdictHealthy:
		h.Result, h.LastHealthyTime = sessionsv1alpha1.HealthHealthy, at
		if changes := identityChanges(session.Status, info); len(changes) > 0 {
			h.LastIdentityChangeTime = at
			msg := "TIDAL reports another identity behind the session than before: " + strings.Join(changes, ", ")
			metrics.SecurityEvents.WithLabelValues(metrics.SecurityIdentityChanged).Inc()
			r.event(session, corev1.EventTypeWarning, sessionsv1alpha1.ReasonIdentityChanged, "HealthCheck", msg)
			// The token may now serve someone else's account: in Enforce mode nobody gets it
			// until a person has looked.
			r.raiseAnomaly(session, sessionsv1alpha1.ReasonIdentityChanged, msg, true)
			logf.FromContext(ctx).Info("Session identity changed", "session", klog.KObj(session), "changes", changes)
		}
		adoptIdentity(session, info)
		status, reason, msg = metav1.ConditionTrue, sessionsv1alpha1.ReasonHealthCheckPassed,
			"TIDAL knows the session and accepted its access token"
	case verdictGone:
		h.Result = sessionsv1alpha1.HealthUnhealthy
		status, reason = metav1.ConditionFalse, sessionsv1alpha1.ReasonSessionGone
		msg = fmt.Sprintf("TIDAL no longer knows the session or revoked its grant (%v)", err)
	case verdictWrongEndpoint:
		h.Result = sessionsv1alpha1.HealthUnknown
		msg = fmt.Sprintf("TIDAL refused the check (%v), as /v1/sessions does for developer apps' tokens; "+
			"set spec.healthCheck.endpoint to UsersMe for such sessions", err)
	default:
		h.Result = sessionsv1alpha1.HealthUnknown
		msg = fmt.Sprintf("The check could not tell (%v); it is repeated", err)
	}
	meta.SetStatusCondition(&session.Status.Conditions, metav1.Condition{
		Type: sessionsv1alpha1.ConditionHealthy, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: session.Generation, LastTransitionTime: metav1.NewTime(truncate(now)),
	})
	return v
}

// identityChanges lists what differs between the identity the status knew and the one a
// check found. Unknown values on either side are no change: /v2/users/me names no client.
// Each change is an anomaly (raiseAnomaly); in binding mode Enforce it quarantines the session.
func identityChanges(known sessionsv1alpha1.TidalSessionStatus, found sessionInfo) []string {
	var out []string
	for _, f := range []struct{ name, before, after string }{
		{"user", known.UserID, found.UserID},
		{"country", known.CountryCode, found.CountryCode},
		{"client", known.ClientID, found.ClientID},
	} {
		if f.before != "" && f.after != "" && f.before != f.after {
			out = append(out, fmt.Sprintf("%s %s → %s", f.name, f.before, f.after))
		}
	}
	return out
}

// adoptIdentity records in status what a healthy check found; values it did not report stay.
func adoptIdentity(session *sessionsv1alpha1.TidalSession, info sessionInfo) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&session.Status.UserID, info.UserID)
	set(&session.Status.CountryCode, info.CountryCode)
	set(&session.Status.ClientID, info.ClientID)
	set(&session.Status.Health.SessionID, info.SessionID)
	set(&session.Status.Health.ClientName, info.ClientName)
}

func verdictLabel(v verdict) string {
	switch v {
	case verdictHealthy:
		return metrics.CheckHealthy
	case verdictGone:
		return metrics.CheckGone
	case verdictTokenRejected:
		return metrics.CheckTokenRejected
	default:
		return metrics.CheckUnknown
	}
}

// sessionGoneError is a check's finding that TIDAL no longer knows the session: the
// session goes to ReauthRequired (see outcomeOf). It is a tidal.Error of kind GrantInvalid
// underneath.
type sessionGoneError struct{ err error }

func (e *sessionGoneError) Error() string { return e.err.Error() }
func (e *sessionGoneError) Unwrap() error { return e.err }
