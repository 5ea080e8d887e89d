package controller

import (
	"errors"
	"fmt"
	"time"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// The reconciler tells three kinds of error apart:
//   - a plain error is retryable: it is returned to controller-runtime, whose rate limiter
//     backs off;
//   - a waitError is a state only time or an unwatched change can end (a missing
//     credentials Secret): the session says so and is looked at again after a delay;
//   - a terminalError needs a person to change the spec or the Secrets: the session says
//     so and is not requeued, because retrying would change nothing.
//
// Their messages are for people and name the problem; they never carry a token.

type waitError struct {
	phase  sessionsv1alpha1.Phase
	reason string
	msg    string
	after  time.Duration
}

func (e *waitError) Error() string { return e.msg }

type terminalError struct {
	phase  sessionsv1alpha1.Phase
	reason string
	msg    string
}

func (e *terminalError) Error() string { return e.msg }

func waitf(after time.Duration, phase sessionsv1alpha1.Phase, reason, format string, args ...any) error {
	return &waitError{phase: phase, reason: reason, msg: fmt.Sprintf(format, args...), after: after}
}

func terminalf(phase sessionsv1alpha1.Phase, reason, format string, args ...any) error {
	return &terminalError{phase: phase, reason: reason, msg: fmt.Sprintf(format, args...)}
}

func asWait(err error) (*waitError, bool) {
	var w *waitError
	return w, errors.As(err, &w)
}

func asTerminal(err error) (*terminalError, bool) {
	var t *terminalError
	return t, errors.As(err, &t)
}

// lostAnswerError is TIDAL rejecting the stored refresh token after the answer to an earlier
// request, awaited since since, was lost: TIDAL most likely rotated the token in that answer.
// It is a tidal.Error of kind GrantInvalid underneath.
type lostAnswerError struct {
	err   error
	since time.Time
}

func (e *lostAnswerError) Error() string { return e.err.Error() }
func (e *lostAnswerError) Unwrap() error { return e.err }

func asLostAnswer(err error) (*lostAnswerError, bool) {
	var l *lostAnswerError
	return l, errors.As(err, &l)
}

// reusedTokenError is TIDAL rejecting a refresh token that it had issued to the operator and
// that nobody changed in the credentials Secret since (status.issuedTokenVersion): only the
// operator should have held it, so someone else most likely used a copy first and TIDAL
// rotated it away, or the grant was revoked. It is a tidal.Error of kind GrantInvalid
// underneath.
type reusedTokenError struct{ err error }

func (e *reusedTokenError) Error() string { return e.err.Error() }
func (e *reusedTokenError) Unwrap() error { return e.err }

func asReusedToken(err error) (*reusedTokenError, bool) {
	var u *reusedTokenError
	return u, errors.As(err, &u)
}

func asSessionGone(err error) (*sessionGoneError, bool) {
	var g *sessionGoneError
	return g, errors.As(err, &g)
}
