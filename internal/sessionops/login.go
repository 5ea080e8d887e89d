package sessionops

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// ErrLoginNotAllowed: the session's spec does not let the operator run a device login.
var ErrLoginNotAllowed = errors.New("device login not allowed")

// Login is what a person needs of a session's device login. It holds the link and the code
// a person enters there, which are useless without the device code that only the operator
// holds.
type Login struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Phase is the session's phase; Active means the session needs no login (any more).
	Phase string `json:"phase"`
	// State is the login's: Pending, Expired, Denied or Failed; empty when none runs.
	State string `json:"state,omitempty"`
	// VerificationURI and UserCode are what the person opens and enters, while Pending.
	VerificationURI string `json:"verificationURI,omitempty"`
	UserCode        string `json:"userCode,omitempty"`
	// ExpiresAt is when the code stops working, RFC 3339.
	ExpiresAt string `json:"expiresAt,omitempty"`
	// Message says what happened, in the operator's words.
	Message string `json:"message,omitempty"`
	// Requested is the login request this call wrote, empty when it wrote none; Answered
	// says whether the operator has handled it.
	Requested string `json:"requested,omitempty"`
	Answered  bool   `json:"answered"`
}

// Done says whether the session is active, so no login is needed.
func (l Login) Done() bool { return l.Phase == string(sessionsv1alpha1.PhaseActive) }

// Pending says whether a person can act on the login now: it shows a link and a code that
// belong to the request, if any.
func (l Login) Pending() bool {
	return l.State == string(sessionsv1alpha1.DeviceLoginPending) && l.UserCode != "" &&
		(l.Requested == "" || l.Answered)
}

// Ended says whether the login for the request stopped without success.
func (l Login) Ended() bool {
	return l.State != "" && l.State != string(sessionsv1alpha1.DeviceLoginPending) &&
		(l.Requested == "" || l.Answered)
}

// Text is the login in plain words for a person.
func (l Login) Text() string {
	ref := fmt.Sprintf("TidalSession %s/%s", l.Namespace, l.Name)
	switch {
	case l.Done():
		return ref + " is active: it needs no login."
	case l.Pending():
		return fmt.Sprintf("To log %s in to TIDAL, open %s and enter the code %s before %s.", ref,
			l.VerificationURI, l.UserCode, l.ExpiresAt)
	case l.Ended():
		return fmt.Sprintf("The device login of %s ended: %s. %s", ref, l.State, l.Message)
	}
	return fmt.Sprintf("%s (phase %s) shows no device login yet; the operator starts one when the "+
		"session needs a new login.", ref, l.Phase)
}

// loginOf reads the login of s; requested is the request written by the caller, if any.
func loginOf(s *sessionsv1alpha1.TidalSession, requested string) Login {
	l := Login{Namespace: s.Namespace, Name: s.Name, Phase: string(s.Status.Phase), Requested: requested,
		Answered: requested != "" && s.Status.LastLoginRequest == requested}
	if l.Phase == "" {
		l.Phase = "Unknown"
	}
	if dl := s.Status.DeviceLogin; dl != nil {
		l.State, l.VerificationURI, l.UserCode, l.Message = string(dl.State), dl.VerificationURI, dl.UserCode, dl.Message
		l.ExpiresAt = rfc3339(dl.ExpiresAt)
	}
	return l
}

func rfc3339(t *metav1.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// StartLogin starts, or finds running, the device login of the session key. It writes a
// login request (LoginRequestAnnotation set to now) only when the session needs a login and
// none is pending, so that asking twice does not void the code a person may be entering.
//
// It returns the login as the status shows it, with Requested set when it wrote a request,
// and an error matching ErrLoginNotAllowed when spec.reauth.deviceLogin is false.
func StartLogin(ctx context.Context, c client.Client, key types.NamespacedName, now time.Time) (Login, error) {
	if err := ValidateName(key.Namespace, key.Name); err != nil {
		return Login{}, err
	}
	s := &sessionsv1alpha1.TidalSession{}
	if err := c.Get(ctx, key, s); err != nil {
		return Login{}, apiError(err, key, "read")
	}
	l := loginOf(s, "")
	switch {
	case l.Done():
		return l, nil
	case !s.Spec.Reauth.DeviceLogin:
		return l, &opError{kind: ErrLoginNotAllowed, msg: fmt.Sprintf("%s does not allow device logins: set "+
			"spec.reauth.deviceLogin to true to let the operator start one when the session needs a new login",
			sessionRef(key))}
	case l.Pending() || s.Status.Phase != sessionsv1alpha1.PhaseReauthRequired:
		return l, nil
	}
	requested, err := annotateNow(ctx, c, key, sessionsv1alpha1.LoginRequestAnnotation, now)
	if err != nil {
		return l, err
	}
	l.Requested, l.Answered = requested, false
	return l, nil
}

// WaitForLogin reads the session key every PollInterval until until(login) holds or timeout
// passes; requested is the request StartLogin wrote, if any. It returns the login as last
// read and an error matching ErrTimedOut when the time ran out, ErrNotFound or ErrForbidden
// when the session cannot be read; other read errors are retried until the timeout.
func WaitForLogin(ctx context.Context, c client.Client, key types.NamespacedName, requested string,
	timeout time.Duration, until func(Login) bool) (Login, error) {
	var (
		last    Login
		readErr error
	)
	err := wait.PollUntilContextTimeout(ctx, PollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		s, err := readWhileWaiting(ctx, c, key, &readErr)
		if s == nil {
			return false, err
		}
		last = loginOf(s, requested)
		return until(last), nil
	})
	switch {
	case err == nil:
		return last, nil
	case ctx.Err() != nil:
		return last, fmt.Errorf("stopped waiting for the login of %s: %w", sessionRef(key), ctx.Err())
	case !wait.Interrupted(err):
		return last, err
	}
	msg := fmt.Sprintf("%s shows no outcome of its device login within %s", sessionRef(key), timeout)
	if readErr != nil {
		msg += fmt.Sprintf("; the last read failed: %v", readErr)
	}
	return last, &opError{kind: ErrTimedOut, msg: msg, cause: errors.Join(err, readErr)}
}
