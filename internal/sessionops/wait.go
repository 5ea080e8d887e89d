package sessionops

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// PollInterval is how often WaitForRefresh reads the session. A refresh takes one round
// trip to TIDAL, so a finer interval would only load the API server.
var PollInterval = 500 * time.Millisecond

// RefreshFailedError says that the session's status shows a failure instead of the
// requested refresh. Summary says what the status shows and what to do.
type RefreshFailedError struct {
	Summary Summary
}

func (e *RefreshFailedError) Error() string {
	s := e.Summary
	msg := fmt.Sprintf("TidalSession %s/%s was not refreshed: phase %s", s.Namespace, s.Name, s.Phase)
	if s.Reason != "" {
		msg += " (" + s.Reason + ")"
	}
	if s.Message != "" {
		msg += ": " + s.Message
	}
	return msg
}

// progress is what the status says about a refresh request.
type progress int

const (
	// waiting: neither the refresh nor a failure shows yet.
	waiting progress = iota
	// refreshed: a refresh that satisfies the request happened.
	refreshed
	// failed: the session is in a state a refresh request cannot get it out of, or an
	// attempt after the request failed.
	failed
)

// baseline is the session's failure state when the wait began, so that only what changed
// after it counts as the request's failure.
type baseline struct {
	failures int32
	reason   string
}

func baselineOf(s *sessionsv1alpha1.TidalSession) baseline {
	b := baseline{failures: s.Status.ConsecutiveFailures}
	if c := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady); c != nil {
		b.reason = c.Reason
	}
	return b
}

// stuckPhases are phases in which the operator does not refresh on request: it waits for
// a person to change the credentials, the spec or spec.suspend, or (Expired) for its backoff,
// which a request does not cut short.
var stuckPhases = map[sessionsv1alpha1.Phase]bool{
	sessionsv1alpha1.PhaseReauthRequired: true,
	sessionsv1alpha1.PhaseError:          true,
	sessionsv1alpha1.PhaseExpired:        true,
	sessionsv1alpha1.PhaseSuspended:      true,
}

// failureReasons are Ready reasons that report a failed refresh or an unusable session.
var failureReasons = map[string]bool{
	sessionsv1alpha1.ReasonRefreshRetrying:      true,
	sessionsv1alpha1.ReasonTokenExpired:         true,
	sessionsv1alpha1.ReasonReauthRequired:       true,
	sessionsv1alpha1.ReasonClientRejected:       true,
	sessionsv1alpha1.ReasonCredentialsMissing:   true,
	sessionsv1alpha1.ReasonCredentialsInvalid:   true,
	sessionsv1alpha1.ReasonOutputSecretConflict: true,
	sessionsv1alpha1.ReasonInvalidSpec:          true,
	sessionsv1alpha1.ReasonSuspended:            true,
}

// progressOf decides what s says about the request whose annotation value is requested
// (requestedAt parsed). It follows the operator's rule: a refresh in a later second than
// the request satisfies it. A refresh in the same second counts only when the operator
// recorded the request as handled, since only then is it known to have come after it.
func progressOf(s *sessionsv1alpha1.TidalSession, requested string, requestedAt time.Time, base baseline) progress {
	st := s.Status
	if last := st.LastRefreshTime; last != nil {
		if last.After(requestedAt) || (st.LastRefreshRequest == requested && !last.Time.Before(requestedAt)) {
			return refreshed
		}
	}
	if stuckPhases[st.Phase] {
		return failed
	}
	if st.ConsecutiveFailures > base.failures {
		return failed
	}
	ready := meta.FindStatusCondition(st.Conditions, sessionsv1alpha1.ConditionReady)
	// Ready False always reports a failure, so a new reason counts even when it is one this
	// package does not know yet.
	if ready != nil && ready.Reason != base.reason &&
		(failureReasons[ready.Reason] || ready.Status == metav1.ConditionFalse) {
		return failed
	}
	return waiting
}

// WaitForRefresh polls the session key until its status shows a refresh that satisfies the
// request requested (the value RequestRefresh returned), a failure, or until timeout. It
// returns the session's summary as last read and:
//
//   - nil when the session was refreshed; the summary shows the new expiry;
//   - a *RefreshFailedError when the session is ReauthRequired, Error, Expired or
//     Suspended, or an attempt after the request failed; the summary says what to do;
//   - an error matching ErrTimedOut when neither showed in time. Refreshes stay at least 30
//     seconds apart and a failing session waits for its backoff, so this is not a failure;
//   - an error matching ErrNotFound or ErrForbidden when the session cannot be read; other
//     read errors are retried until the timeout.
func WaitForRefresh(ctx context.Context, c client.Client, key types.NamespacedName, requested string,
	timeout time.Duration) (Summary, error) {
	requestedAt, err := time.Parse(time.RFC3339, requested)
	if err != nil {
		return Summary{}, fmt.Errorf("refresh request %q is not an RFC 3339 time: %w", requested, err)
	}

	var (
		last    *sessionsv1alpha1.TidalSession
		base    *baseline
		readErr error
		outcome progress
	)
	poll := func(ctx context.Context) (bool, error) {
		s, err := readWhileWaiting(ctx, c, key, &readErr)
		if s == nil {
			return false, err
		}
		last = s
		if base == nil {
			b := baselineOf(s)
			base = &b
		}
		outcome = progressOf(s, requested, requestedAt, *base)
		return outcome != waiting, nil
	}
	err = wait.PollUntilContextTimeout(ctx, PollInterval, timeout, true, poll)

	var sum Summary
	if last != nil {
		sum = Summarize(last)
	}
	switch {
	case err == nil && outcome == refreshed:
		return sum, nil
	case err == nil:
		return sum, &RefreshFailedError{Summary: sum}
	case ctx.Err() != nil:
		// The caller gave up (or its own deadline passed); that is not the wait's timeout.
		return sum, fmt.Errorf("stopped waiting for the refresh of %s: %w", sessionRef(key), ctx.Err())
	case !wait.Interrupted(err):
		return sum, err
	}

	msg := fmt.Sprintf("%s shows no refresh after %s within %s", sessionRef(key), requested, timeout)
	if last != nil {
		msg += fmt.Sprintf(" (phase %s)", sum.Phase)
	}
	if readErr != nil {
		msg += fmt.Sprintf("; the last read failed: %v", readErr)
	}
	msg += ". Refreshes stay at least 30 seconds apart and a failing session waits for its backoff, " +
		"so the request may still be honoured; check the status again later"
	return sum, &opError{kind: ErrTimedOut, msg: msg, cause: errors.Join(err, readErr)}
}

// readWhileWaiting reads the session key for a wait. A missing or forbidden session ends the
// wait with an error; any other failure is recorded in readErr and returns nil, nil, since
// the API server may be briefly unreachable and the wait's timeout bounds the retries.
func readWhileWaiting(ctx context.Context, c client.Client, key types.NamespacedName,
	readErr *error) (*sessionsv1alpha1.TidalSession, error) {
	s := &sessionsv1alpha1.TidalSession{}
	if err := c.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			return nil, apiError(err, key, "read")
		}
		*readErr = err
		return nil, nil
	}
	*readErr = nil
	return s, nil
}
