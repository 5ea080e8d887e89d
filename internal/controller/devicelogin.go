package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// slowDownStep is what TIDAL's slow_down adds to a login's poll interval, for good
// (RFC 8628, 3.5).
const slowDownStep = 5 * time.Second

// minLoginRequeue keeps a login's requeue positive: a zero RequeueAfter would mean none.
const minLoginRequeue = 100 * time.Millisecond

// deviceLogin is a running device login as the operator holds it. The device code lives here
// and nowhere else: whoever holds it receives the new refresh token once a person approves,
// so it is kept out of status (readable by all who may read the session) and out of Secrets
// (a second secret at rest for a few minutes' use). A restarted operator has lost it and
// starts a new login, whose new code the status and an Event show.
type deviceLogin struct {
	deviceCode string
	// startedAt ties the login to status.deviceLogin.startedAt, so a record from an attempt
	// the status no longer shows is not polled.
	startedAt time.Time
	expiresAt time.Time
	interval  time.Duration
	nextPoll  time.Time
}

// deviceLogins holds the running device logins by session. It is safe for concurrent use.
type deviceLogins struct{ m sync.Map }

func (l *deviceLogins) get(key types.NamespacedName) (deviceLogin, bool) {
	v, ok := l.m.Load(key)
	if !ok {
		return deviceLogin{}, false
	}
	return v.(deviceLogin), true
}

func (l *deviceLogins) put(key types.NamespacedName, d deviceLogin) { l.m.Store(key, d) }

func (l *deviceLogins) forget(key types.NamespacedName) { l.m.Delete(key) }

// loginAction is what a session waiting for a new login does in this reconcile.
type loginAction int

const (
	// loginIdle: the last login ended (expired, denied, failed); wait for a person's request.
	loginIdle loginAction = iota
	// loginStart: ask TIDAL for a new device authorization.
	loginStart
	// loginWait: a login runs; its next poll is not due yet.
	loginWait
	// loginPoll: ask TIDAL whether the login was approved.
	loginPoll
	// loginExpire: the code expired by the operator's clock; stop without asking TIDAL.
	loginExpire
)

// decideLogin decides what a session waiting for a new login does at now, given the login
// its status shows, the record held in memory (held says whether there is one), and whether
// a person's request (LoginRequestAnnotation) is new. For loginWait it also returns how long
// to wait.
func decideLogin(st *sessionsv1alpha1.DeviceLoginStatus, rec deviceLogin, held, newRequest bool,
	now time.Time) (loginAction, time.Duration) {
	switch {
	case st == nil:
		return loginStart, 0
	case st.State != sessionsv1alpha1.DeviceLoginPending:
		if newRequest {
			return loginStart, 0
		}
		return loginIdle, 0
	case !held || st.StartedAt == nil || !rec.startedAt.Equal(st.StartedAt.Time):
		// The status shows a pending login whose device code this operator does not hold: it
		// restarted, or took over from another replica. Nobody can finish that login now.
		return loginStart, 0
	case !now.Before(rec.expiresAt):
		return loginExpire, 0
	case now.Before(rec.nextPoll):
		return loginWait, min(rec.nextPoll.Sub(now), rec.expiresAt.Sub(now))
	}
	return loginPoll, 0
}

// loginApproved is afterPoll's verdict for an approved login; it is never shown in status,
// which drops the login once it succeeded.
const loginApproved sessionsv1alpha1.DeviceLoginState = "approved"

// afterPoll decides what TIDAL's answer to a poll (err, nil when approved), arrived at
// answeredAt, means for the login rec: the login to keep polling, with its next poll, and
// the state it is in. A failure that may pass (outage, timeout) keeps polling: the code
// lives only minutes, and the person may be entering it right now.
func afterPoll(rec deviceLogin, err error, answeredAt time.Time) (deviceLogin, sessionsv1alpha1.DeviceLoginState) {
	if err == nil {
		return rec, loginApproved
	}
	te, _ := tidalError(err)
	code := ""
	if te != nil {
		code = te.Code
	}
	wait := rec.interval
	switch {
	case code == tidal.CodeExpiredToken:
		return rec, sessionsv1alpha1.DeviceLoginExpired
	case code == tidal.CodeAccessDenied:
		return rec, sessionsv1alpha1.DeviceLoginDenied
	case tidal.KindOf(err) != tidal.Transient:
		// invalid_grant (TIDAL no longer knows the code) or a rejected client.
		return rec, sessionsv1alpha1.DeviceLoginFailed
	case code == tidal.CodeSlowDown:
		rec.interval += slowDownStep
		wait = rec.interval
	case te != nil:
		wait = max(wait, te.RetryAfter)
	}
	rec.nextPoll = answeredAt.Add(wait)
	return rec, sessionsv1alpha1.DeviceLoginPending
}

// reauthStep runs the device login of a session that waits for new credentials (waiting,
// awaitNewCredentials' error), when its spec allows one; otherwise it returns waiting as is.
// Each reconcile asks TIDAL at most once and then requeues for the next poll, so a login
// never holds a worker. Side effects: a device authorization or a poll at TIDAL;
// status.deviceLogin and status.lastLoginRequest; Events when a login starts and ends; on
// approval, those of a refresh (see useToken) after the new refresh token is stored in the
// credentials Secret.
func (r *TidalSessionReconciler) reauthStep(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	creds tidal.Credentials, waiting error) (ctrl.Result, error) {
	if !session.Spec.Reauth.DeviceLogin {
		r.endLogin(session)
		return ctrl.Result{}, waiting
	}
	key := client.ObjectKeyFromObject(session)
	rec, held := r.logins.get(key)
	request := requestKey(session.Annotations[sessionsv1alpha1.LoginRequestAnnotation])
	newRequest := request != "" && request != session.Status.LastLoginRequest
	action, wait := decideLogin(session.Status.DeviceLogin, rec, held, newRequest, r.Clock.Now())
	if action == loginWait || action == loginPoll || action == loginExpire {
		// A request is answered by the login that runs; startLogin records one it answers.
		r.answerLoginRequest(session)
	}

	switch action {
	case loginIdle:
		return ctrl.Result{}, waiting
	case loginWait:
		return ctrl.Result{}, waitAfter(waiting, wait)
	case loginExpire:
		r.stopLogin(ctx, session, sessionsv1alpha1.DeviceLoginExpired, nil)
		return ctrl.Result{}, waiting
	case loginStart:
		return r.startLogin(ctx, session, creds, waiting)
	}
	return r.pollLogin(ctx, session, creds, rec, waiting)
}

// startLogin asks TIDAL for a device authorization and shows its link and code in status and
// an Event. A failure that may pass is tried again after waiting's delay; any other ends the
// login as Failed until a person asks again.
func (r *TidalSessionReconciler) startLogin(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	creds tidal.Credentials, waiting error) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	restarted := session.Status.DeviceLogin != nil && session.Status.DeviceLogin.State == sessionsv1alpha1.DeviceLoginPending
	da, err := r.TIDAL.StartDeviceLogin(ctx, creds)
	if err != nil {
		if tidal.KindOf(err) != tidal.Transient {
			r.answerLoginRequest(session)
			r.stopLogin(ctx, session, sessionsv1alpha1.DeviceLoginFailed, err)
			return ctrl.Result{}, waiting
		}
		// The request, if any, stays unanswered, so the next attempt answers it.
		log.Info("Device login not started; retrying", "session", klog.KObj(session), "error", err.Error())
		return ctrl.Result{}, waiting
	}
	r.answerLoginRequest(session)

	started, expires := truncate(da.ReceivedAt), truncate(da.ExpiresAt)
	r.logins.put(client.ObjectKeyFromObject(session), deviceLogin{deviceCode: da.DeviceCode, startedAt: started,
		expiresAt: da.ExpiresAt, interval: da.Interval, nextPoll: da.ReceivedAt.Add(da.Interval)})
	msg := fmt.Sprintf("The session needs a new TIDAL login: open %s and enter the code %s before %s",
		da.VerificationURI, da.UserCode, expires.Format(time.RFC3339))
	session.Status.DeviceLogin = &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginPending,
		VerificationURI: da.VerificationURI, UserCode: da.UserCode, StartedAt: timePtr(started),
		ExpiresAt: timePtr(expires), Message: msg}
	if restarted {
		msg += " (the operator restarted during the previous login, whose code no longer works)"
	}
	r.event(session, corev1.EventTypeNormal, sessionsv1alpha1.ReasonDeviceLoginStarted, "DeviceLogin", msg)
	log.Info("Device login started", "session", klog.KObj(session), "expiresAt", expires)
	return ctrl.Result{}, waitAfter(waiting, da.Interval)
}

// pollLogin asks TIDAL whether the login rec was approved. On approval the new refresh token
// is stored in the credentials Secret before anything else, and the answer is used as a
// refresh's would be.
func (r *TidalSessionReconciler) pollLogin(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	creds tidal.Credentials, rec deviceLogin, waiting error) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(session)
	tok, err := r.TIDAL.PollDeviceLogin(ctx, creds, rec.deviceCode)
	if tok != nil && tok.RefreshToken != "" {
		// The device code is spent once TIDAL answered with tokens: this refresh token is the
		// login, whatever else is wrong with the answer.
		r.logins.forget(key)
		if err := r.storeRefreshToken(ctx, session, tok.RefreshToken); err != nil {
			return ctrl.Result{}, err
		}
	}
	rec, state := afterPoll(rec, err, r.Clock.Now())
	switch state {
	case sessionsv1alpha1.DeviceLoginPending:
		if tok == nil {
			r.logins.put(key, rec)
		}
		return ctrl.Result{}, waitAfter(waiting, rec.nextPoll.Sub(r.Clock.Now()))
	case loginApproved:
	default:
		r.stopLogin(ctx, session, state, err)
		return ctrl.Result{}, waiting
	}

	r.logins.forget(key)
	r.rejected.forget(key)
	session.Status.DeviceLogin = nil
	r.event(session, corev1.EventTypeNormal, sessionsv1alpha1.ReasonDeviceLoginApproved, "DeviceLogin",
		"The device login was approved; the new refresh token is stored in credentials Secret "+
			session.Spec.CredentialsSecretRef.Name)
	logf.FromContext(ctx).Info("Device login approved", "session", klog.KObj(session))
	existing, err := r.getOutputSecret(ctx, session)
	if err != nil {
		return ctrl.Result{}, err
	}
	return r.useToken(ctx, session, tok, existing)
}

// stopLogin ends the session's login in state (Expired, Denied or Failed), cause being
// TIDAL's answer when there is one: the code is forgotten and dropped from status, and a
// Warning Event says how to try again.
func (r *TidalSessionReconciler) stopLogin(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	state sessionsv1alpha1.DeviceLoginState, cause error) {
	r.logins.forget(client.ObjectKeyFromObject(session))
	dl := &sessionsv1alpha1.DeviceLoginStatus{State: state}
	if old := session.Status.DeviceLogin; old != nil {
		dl.StartedAt, dl.ExpiresAt = old.StartedAt, old.ExpiresAt
	}
	again := fmt.Sprintf("To try again, set the annotation %s (kubectl tidal login %s)",
		sessionsv1alpha1.LoginRequestAnnotation, session.Name)
	reason := sessionsv1alpha1.ReasonDeviceLoginFailed
	switch state {
	case sessionsv1alpha1.DeviceLoginExpired:
		reason, dl.Message = sessionsv1alpha1.ReasonDeviceLoginExpired, "Nobody approved the device login in time. "+again
	case sessionsv1alpha1.DeviceLoginDenied:
		reason, dl.Message = sessionsv1alpha1.ReasonDeviceLoginDenied, "The device login was denied. "+again
	default:
		dl.Message = fmt.Sprintf("TIDAL refused the device login (%v). %s", cause, again)
	}
	session.Status.DeviceLogin = dl
	r.event(session, corev1.EventTypeWarning, reason, "DeviceLogin", dl.Message)
	logf.FromContext(ctx).Info("Device login ended", "session", klog.KObj(session), "state", state)
}

// answerLoginRequest records the session's login request, if any, as handled.
func (r *TidalSessionReconciler) answerLoginRequest(session *sessionsv1alpha1.TidalSession) {
	if v := session.Annotations[sessionsv1alpha1.LoginRequestAnnotation]; v != "" {
		session.Status.LastLoginRequest = requestKey(v)
	}
}

// endLogin drops a session's device login once the session no longer waits for one: its
// credentials changed, or its spec no longer allows device logins. A code still pending at
// TIDAL simply expires there.
func (r *TidalSessionReconciler) endLogin(session *sessionsv1alpha1.TidalSession) {
	r.logins.forget(client.ObjectKeyFromObject(session))
	session.Status.DeviceLogin = nil
}

// waitAfter returns the waitError err with its delay set to after, so that the session is
// looked at again when its login's next step is due.
func waitAfter(err error, after time.Duration) error {
	w, ok := asWait(err)
	if !ok {
		return err
	}
	out := *w
	out.after = max(after, minLoginRequeue)
	return &out
}
