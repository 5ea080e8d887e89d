package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// Canaries of a device login: the device code and the tokens the login brings.
const (
	canaryDeviceCode    = "CANARY-DEVICECODE-a71c"
	canaryDeviceRefresh = "CANARY-DEVICE-RT-3e90"
	canaryDeviceAccess  = "CANARY-DEVICE-AT-88d2"
)

const (
	loginInterval = 2 * time.Second
	loginLifetime = 300 * time.Second
)

var (
	errPending  = &tidal.Error{Op: "poll device login", Kind: tidal.Transient, Code: tidal.CodeAuthorizationPending, HTTPStatus: 400}
	errSlowDown = &tidal.Error{Op: "poll device login", Kind: tidal.Transient, Code: tidal.CodeSlowDown, HTTPStatus: 400}
	errExpired  = &tidal.Error{Op: "poll device login", Kind: tidal.Transient, Code: tidal.CodeExpiredToken, HTTPStatus: 400}
	errDenied   = &tidal.Error{Op: "poll device login", Kind: tidal.Transient, Code: tidal.CodeAccessDenied, HTTPStatus: 400}
	errOutage   = &tidal.Error{Op: "poll device login", Kind: tidal.Transient, HTTPStatus: 503, RetryAfter: 7 * time.Second}
	errUnknown  = &tidal.Error{Op: "poll device login", Kind: tidal.GrantInvalid, Code: tidal.CodeInvalidGrant, HTTPStatus: 400}
	errGrant    = &tidal.Error{Op: "refresh token", Kind: tidal.GrantInvalid, Code: tidal.CodeInvalidGrant, HTTPStatus: 400}
)

// fakeDevice is TIDAL's device flow as the fake answers it.
type fakeDevice struct {
	starts, polls int
	startErr      error
	// answers are the successive answers to polls (nil: approved); when used up, pending.
	answers []error
	// polledWith is the device code of the last poll.
	polledWith string
}

func (f *fakeTIDAL) StartDeviceLogin(_ context.Context, creds tidal.Credentials) (*tidal.DeviceAuthorization, error) {
	d := &f.device
	d.starts++
	if d.startErr != nil {
		return nil, d.startErr
	}
	now := f.clock.Now()
	code := fmt.Sprintf("CODE%d", d.starts)
	return &tidal.DeviceAuthorization{DeviceCode: fmt.Sprintf("%s-%d", canaryDeviceCode, d.starts), UserCode: code,
		VerificationURI: "https://link.tidal.com/" + code, ReceivedAt: now, ExpiresAt: now.Add(loginLifetime),
		Interval: loginInterval}, nil
}

func (f *fakeTIDAL) PollDeviceLogin(_ context.Context, _ tidal.Credentials, deviceCode string) (*tidal.Token, error) {
	d := &f.device
	d.polls++
	d.polledWith = deviceCode
	err := error(errPending)
	if len(d.answers) > 0 {
		err, d.answers = d.answers[0], d.answers[1:]
	}
	if err != nil {
		return nil, err
	}
	now := f.clock.Now()
	return &tidal.Token{AccessToken: canaryDeviceAccess, TokenType: "Bearer", RefreshToken: canaryDeviceRefresh,
		ReceivedAt: now, Lifetime: time.Hour, ExpiresAt: now.Add(time.Hour), UserID: "1001"}, nil
}

// reauthFixture is a session that allows device logins (unless denied) and whose refresh
// token TIDAL has just rejected: phase ReauthRequired, no login started yet.
func reauthFixture(t *testing.T, allow bool) *fixture {
	t.Helper()
	s := newSession()
	s.Spec.Reauth.DeviceLogin = allow
	f := newFixture(t, s, newCreds())
	f.tidal.err = errGrant
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got := f.session(t).Status.Phase; got != sessionsv1alpha1.PhaseReauthRequired {
		t.Fatalf("setup: phase %s", got)
	}
	f.tidal.err = nil
	f.drainEvents()
	return f
}

// step advances the fake clock and reconciles.
func (f *fixture) step(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	f.clock.Step(d)
	res, err := f.reconcile(t)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return res.RequeueAfter
}

// assertNoDeviceCanary fails when the device code or a token of the login reached status,
// Events or the log-facing error.
func assertNoDeviceCanary(t *testing.T, f *fixture, evs []string) {
	t.Helper()
	assertNoCanary(t, f, nil, evs)
	b, _ := json.Marshal(f.session(t))
	haystack := string(b) + strings.Join(evs, "\n")
	for _, c := range []string{canaryDeviceCode, canaryDeviceRefresh, canaryDeviceAccess} {
		if strings.Contains(haystack, c) {
			t.Errorf("canary %s leaked into status or Events", c)
		}
	}
}

func TestDeviceLoginStartsAndPolls(t *testing.T) {
	f := reauthFixture(t, true)
	requeue := f.step(t, time.Second)

	s := f.session(t)
	dl := s.Status.DeviceLogin
	if f.tidal.device.starts != 1 || dl == nil || dl.State != sessionsv1alpha1.DeviceLoginPending ||
		dl.VerificationURI != "https://link.tidal.com/CODE1" || dl.UserCode != "CODE1" ||
		!dl.StartedAt.Time.Equal(t0.Add(time.Second)) || !dl.ExpiresAt.Time.Equal(t0.Add(time.Second+loginLifetime)) {
		t.Fatalf("starts %d, login %+v", f.tidal.device.starts, dl)
	}
	if s.Status.Phase != sessionsv1alpha1.PhaseReauthRequired || requeue != loginInterval {
		t.Fatalf("phase %s, requeue %v", s.Status.Phase, requeue)
	}
	evs := f.drainEvents()
	if len(evs) != 1 || !strings.Contains(evs[0], sessionsv1alpha1.ReasonDeviceLoginStarted) ||
		!strings.Contains(evs[0], "open https://link.tidal.com/CODE1 and enter the code CODE1") {
		t.Fatalf("events %q", evs)
	}
	assertNoDeviceCanary(t, f, evs)

	// A reconcile before the interval (a watch event) asks TIDAL nothing.
	if requeue := f.step(t, time.Second); f.tidal.device.polls != 0 || requeue != time.Second {
		t.Fatalf("early reconcile polled %d times, requeue %v", f.tidal.device.polls, requeue)
	}
	// Due: one poll, pending, again after the interval.
	requeue = f.step(t, time.Second)
	if f.tidal.device.polls != 1 || f.tidal.device.polledWith != canaryDeviceCode+"-1" || requeue != loginInterval {
		t.Fatalf("polls %d with %q, requeue %v", f.tidal.device.polls, f.tidal.device.polledWith, requeue)
	}
	if f.tidal.device.starts != 1 || f.tidal.calls != 1 || f.session(t).Status.DeviceLogin.State != sessionsv1alpha1.DeviceLoginPending {
		t.Fatalf("starts %d, refreshes %d", f.tidal.device.starts, f.tidal.calls)
	}
	assertNoDeviceCanary(t, f, f.drainEvents())
}

func TestDeviceLoginSlowDownAddsFiveSecondsForGood(t *testing.T) {
	f := reauthFixture(t, true)
	f.step(t, 0)
	f.tidal.device.answers = []error{errSlowDown, errPending}
	if requeue := f.step(t, loginInterval); requeue != loginInterval+5*time.Second {
		t.Fatalf("after slow_down requeue %v", requeue)
	}
	// The old interval is too soon now.
	f.step(t, loginInterval)
	if f.tidal.device.polls != 1 {
		t.Fatalf("polled %d times before the longer interval passed", f.tidal.device.polls)
	}
	if requeue := f.step(t, 5*time.Second); f.tidal.device.polls != 2 || requeue != loginInterval+5*time.Second {
		t.Fatalf("polls %d, requeue %v: the longer interval must stay", f.tidal.device.polls, requeue)
	}
}

func TestDeviceLoginApprovalResumesRefreshing(t *testing.T) {
	f := reauthFixture(t, true)
	f.step(t, 0)
	f.drainEvents()
	f.tidal.device.answers = []error{errPending, nil}
	f.step(t, loginInterval)
	requeue := f.step(t, loginInterval)

	if got := string(f.secret(t, "alice-creds").Data["refresh_token"]); got != canaryDeviceRefresh {
		t.Fatalf("credentials Secret holds %q, not the login's refresh token", got)
	}
	out := f.secret(t, "alice-token")
	if string(out.Data[sessionsv1alpha1.KeyAccessToken]) != canaryDeviceAccess ||
		string(out.Data[sessionsv1alpha1.KeyTokenStatus]) != sessionsv1alpha1.TokenStatusValid {
		t.Fatalf("output Secret does not hold the login's access token")
	}
	s := f.session(t)
	if s.Status.Phase != sessionsv1alpha1.PhaseActive || s.Status.DeviceLogin != nil || readyReason(s) != sessionsv1alpha1.ReasonTokenValid {
		t.Fatalf("phase %s, login %+v, ready %s", s.Status.Phase, s.Status.DeviceLogin, readyReason(s))
	}
	if requeue < 30*time.Minute {
		t.Fatalf("requeue %v; want the next refresh of a one-hour token", requeue)
	}
	evs := f.drainEvents()
	if !strings.Contains(strings.Join(evs, "\n"), sessionsv1alpha1.ReasonDeviceLoginApproved) {
		t.Fatalf("events %q", evs)
	}
	assertNoDeviceCanary(t, f, evs)

	// Refreshing resumes with the new refresh token, and no login starts again.
	f.step(t, 50*time.Minute)
	if f.tidal.got.RefreshToken != canaryDeviceRefresh || f.tidal.device.starts != 1 || f.tidal.device.polls != 2 {
		t.Fatalf("refresh sent another token; starts %d, polls %d", f.tidal.device.starts, f.tidal.device.polls)
	}
	if f.session(t).Status.Phase != sessionsv1alpha1.PhaseActive {
		t.Fatalf("phase %s after the refresh", f.session(t).Status.Phase)
	}
}

func TestDeviceLoginEnds(t *testing.T) {
	tests := []struct {
		name       string
		answer     error
		wait       time.Duration
		wantState  sessionsv1alpha1.DeviceLoginState
		wantReason string
		wantPolls  int
	}{
		{"expired_token", errExpired, loginInterval, sessionsv1alpha1.DeviceLoginExpired, sessionsv1alpha1.ReasonDeviceLoginExpired, 1},
		{"access_denied", errDenied, loginInterval, sessionsv1alpha1.DeviceLoginDenied, sessionsv1alpha1.ReasonDeviceLoginDenied, 1},
		{"unknown code", errUnknown, loginInterval, sessionsv1alpha1.DeviceLoginFailed, sessionsv1alpha1.ReasonDeviceLoginFailed, 1},
		// The operator's own clock ends a login whose code expired, without asking TIDAL.
		{"expired by the clock", nil, loginLifetime, sessionsv1alpha1.DeviceLoginExpired, sessionsv1alpha1.ReasonDeviceLoginExpired, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := reauthFixture(t, true)
			f.step(t, 0)
			f.drainEvents()
			if tt.answer != nil {
				f.tidal.device.answers = []error{tt.answer}
			}
			requeue := f.step(t, tt.wait)

			s := f.session(t)
			dl := s.Status.DeviceLogin
			if dl == nil || dl.State != tt.wantState || dl.UserCode != "" || dl.VerificationURI != "" ||
				!strings.Contains(dl.Message, sessionsv1alpha1.LoginRequestAnnotation) {
				t.Fatalf("login %+v", dl)
			}
			if s.Status.Phase != sessionsv1alpha1.PhaseReauthRequired || requeue != f.r.RecheckInterval ||
				f.tidal.device.polls != tt.wantPolls {
				t.Fatalf("phase %s, requeue %v, polls %d", s.Status.Phase, requeue, f.tidal.device.polls)
			}
			evs := f.drainEvents()
			if len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning "+tt.wantReason) {
				t.Fatalf("events %q", evs)
			}
			assertNoDeviceCanary(t, f, evs)

			// Stopped: later reconciles neither poll nor start a new login.
			f.step(t, time.Hour)
			if f.tidal.device.starts != 1 || f.tidal.device.polls != tt.wantPolls {
				t.Fatalf("after the end: starts %d, polls %d", f.tidal.device.starts, f.tidal.device.polls)
			}
		})
	}
}

func TestDeviceLoginNewAttemptOnRequest(t *testing.T) {
	f := reauthFixture(t, true)
	f.step(t, 0)
	f.tidal.device.answers = []error{errDenied}
	f.step(t, loginInterval)

	s := f.session(t)
	s.Annotations = map[string]string{sessionsv1alpha1.LoginRequestAnnotation: "2026-12-04T10:05:00Z"}
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.drainEvents()
	f.step(t, time.Second)
	s = f.session(t)
	if f.tidal.device.starts != 2 || s.Status.DeviceLogin.State != sessionsv1alpha1.DeviceLoginPending ||
		s.Status.DeviceLogin.UserCode != "CODE2" || s.Status.LastLoginRequest != "2026-12-04T10:05:00Z" {
		t.Fatalf("starts %d, status %+v, last request %q", f.tidal.device.starts, s.Status.DeviceLogin, s.Status.LastLoginRequest)
	}

	// The same request again is no new request: after this login expires, nothing starts.
	f.tidal.device.answers = []error{errExpired}
	f.step(t, loginInterval)
	f.step(t, time.Minute)
	if f.tidal.device.starts != 2 || f.session(t).Status.DeviceLogin.State != sessionsv1alpha1.DeviceLoginExpired {
		t.Fatalf("starts %d, login %+v", f.tidal.device.starts, f.session(t).Status.DeviceLogin)
	}
}

func TestDeviceLoginRequestWhilePendingIsAnsweredByIt(t *testing.T) {
	f := reauthFixture(t, true)
	f.step(t, 0)
	s := f.session(t)
	s.Annotations = map[string]string{sessionsv1alpha1.LoginRequestAnnotation: "2026-12-04T10:00:01Z"}
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.step(t, time.Second)
	if s := f.session(t); f.tidal.device.starts != 1 || s.Status.LastLoginRequest != "2026-12-04T10:00:01Z" ||
		s.Status.DeviceLogin.UserCode != "CODE1" {
		t.Fatalf("starts %d, last request %q", f.tidal.device.starts, s.Status.LastLoginRequest)
	}
}

func TestDeviceLoginNotAllowedStartsNothing(t *testing.T) {
	f := reauthFixture(t, false)
	for range 3 {
		if requeue := f.step(t, time.Minute); requeue != f.r.RecheckInterval {
			t.Fatalf("requeue %v", requeue)
		}
	}
	if s := f.session(t); f.tidal.device.starts != 0 || s.Status.DeviceLogin != nil ||
		s.Status.Phase != sessionsv1alpha1.PhaseReauthRequired {
		t.Fatalf("starts %d, login %+v, phase %s", f.tidal.device.starts, s.Status.DeviceLogin, s.Status.Phase)
	}

	// Turning it off mid-login drops the login.
	f = reauthFixture(t, true)
	f.step(t, 0)
	s := f.session(t)
	s.Spec.Reauth.DeviceLogin = false
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.step(t, loginInterval)
	if s := f.session(t); s.Status.DeviceLogin != nil || f.tidal.device.polls != 0 {
		t.Fatalf("login %+v, polls %d", s.Status.DeviceLogin, f.tidal.device.polls)
	}
}

// TestDeviceLoginOperatorRestart: the device code lives in the operator's memory only, so a
// restarted operator cannot finish the login it finds pending; it starts a new one at once,
// which status and an Event show, and never polls with a code it does not hold.
func TestDeviceLoginOperatorRestart(t *testing.T) {
	f := reauthFixture(t, true)
	f.step(t, 0)
	f.step(t, loginInterval)
	f.drainEvents()

	f.r = &TidalSessionReconciler{Client: f.c, APIReader: f.c, Scheme: f.r.Scheme, Recorder: f.r.Recorder,
		Clock: f.clock, TIDAL: f.tidal, RecheckInterval: f.r.RecheckInterval}
	requeue := f.step(t, time.Second)
	s := f.session(t)
	if f.tidal.device.starts != 2 || f.tidal.device.polls != 1 || s.Status.DeviceLogin.UserCode != "CODE2" ||
		requeue != loginInterval {
		t.Fatalf("starts %d, polls %d, login %+v, requeue %v", f.tidal.device.starts, f.tidal.device.polls,
			s.Status.DeviceLogin, requeue)
	}
	evs := f.drainEvents()
	if len(evs) != 1 || !strings.Contains(evs[0], "the operator restarted") || !strings.Contains(evs[0], "CODE2") {
		t.Fatalf("events %q", evs)
	}
	f.tidal.device.answers = []error{nil}
	f.step(t, loginInterval)
	if f.tidal.device.polledWith != canaryDeviceCode+"-2" || f.session(t).Status.Phase != sessionsv1alpha1.PhaseActive {
		t.Fatalf("polled with %q, phase %s", f.tidal.device.polledWith, f.session(t).Status.Phase)
	}
}

func TestDeviceLoginDroppedWhenCredentialsChange(t *testing.T) {
	f := reauthFixture(t, true)
	f.step(t, 0)
	creds := f.secret(t, "alice-creds")
	creds.Data["refresh_token"] = []byte(canaryRotated)
	if err := f.c.Update(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
	f.step(t, time.Second)
	s := f.session(t)
	if s.Status.DeviceLogin != nil || s.Status.Phase != sessionsv1alpha1.PhaseActive || f.tidal.got.RefreshToken != canaryRotated {
		t.Fatalf("login %+v, phase %s", s.Status.DeviceLogin, s.Status.Phase)
	}
	if _, held := f.r.logins.get(client.ObjectKeyFromObject(s)); held {
		t.Fatal("the device code is still held")
	}
}

func TestDeviceLoginStartFailures(t *testing.T) {
	// An outage is tried again after the recheck interval; nothing shows in status.
	f := reauthFixture(t, true)
	f.tidal.device.startErr = &tidal.Error{Op: "start device login", Kind: tidal.Transient, HTTPStatus: 503}
	if requeue := f.step(t, 0); requeue != f.r.RecheckInterval || f.session(t).Status.DeviceLogin != nil {
		t.Fatalf("requeue %v, login %+v", requeue, f.session(t).Status.DeviceLogin)
	}
	f.tidal.device.startErr = nil
	f.step(t, f.r.RecheckInterval)
	if f.tidal.device.starts != 2 || f.session(t).Status.DeviceLogin.State != sessionsv1alpha1.DeviceLoginPending {
		t.Fatalf("starts %d", f.tidal.device.starts)
	}

	// A request during an outage stays unanswered until a login starts.
	f = reauthFixture(t, true)
	f.tidal.device.startErr = &tidal.Error{Op: "start device login", Kind: tidal.Transient, HTTPStatus: 503}
	s := f.session(t)
	s.Annotations = map[string]string{sessionsv1alpha1.LoginRequestAnnotation: "2026-12-04T10:00:00Z"}
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.step(t, 0)
	if got := f.session(t).Status.LastLoginRequest; got != "" {
		t.Fatalf("request recorded as answered (%q) though no login started", got)
	}
	f.tidal.device.startErr = nil
	f.step(t, f.r.RecheckInterval)
	if got := f.session(t).Status.LastLoginRequest; got != "2026-12-04T10:00:00Z" {
		t.Fatalf("request not answered by the login that started: %q", got)
	}

	// A rejected client ends the login until a person asks again.
	f = reauthFixture(t, true)
	f.tidal.device.startErr = &tidal.Error{Op: "start device login", Kind: tidal.ClientInvalid, Code: tidal.CodeInvalidClient, HTTPStatus: 401}
	f.step(t, 0)
	f.step(t, time.Hour)
	dl := f.session(t).Status.DeviceLogin
	if f.tidal.device.starts != 1 || dl == nil || dl.State != sessionsv1alpha1.DeviceLoginFailed || !strings.Contains(dl.Message, "invalid_client") {
		t.Fatalf("starts %d, login %+v", f.tidal.device.starts, dl)
	}
}

func TestDecideLogin(t *testing.T) {
	started := metav1.NewTime(t0)
	pending := &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginPending, StartedAt: &started}
	ended := &sessionsv1alpha1.DeviceLoginStatus{State: sessionsv1alpha1.DeviceLoginDenied, StartedAt: &started}
	rec := deviceLogin{startedAt: t0, expiresAt: t0.Add(loginLifetime), interval: loginInterval, nextPoll: t0.Add(loginInterval)}
	other := rec
	other.startedAt = t0.Add(-time.Hour)

	tests := []struct {
		name       string
		st         *sessionsv1alpha1.DeviceLoginStatus
		rec        deviceLogin
		held       bool
		newRequest bool
		now        time.Time
		want       loginAction
		wantWait   time.Duration
	}{
		{"no login yet", nil, deviceLogin{}, false, false, t0, loginStart, 0},
		{"ended, no request", ended, deviceLogin{}, false, false, t0, loginIdle, 0},
		{"ended, new request", ended, deviceLogin{}, false, true, t0, loginStart, 0},
		{"pending, code not held", pending, deviceLogin{}, false, false, t0, loginStart, 0},
		{"pending, record of another attempt", pending, other, true, false, t0.Add(time.Hour), loginStart, 0},
		{"pending, before the next poll", pending, rec, true, false, t0.Add(time.Second), loginWait, time.Second},
		{"pending, request changes nothing", pending, rec, true, true, t0.Add(time.Second), loginWait, time.Second},
		{"pending, poll due", pending, rec, true, false, t0.Add(loginInterval), loginPoll, 0},
		{"pending, expired", pending, rec, true, false, t0.Add(loginLifetime), loginExpire, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, wait := decideLogin(tt.st, tt.rec, tt.held, tt.newRequest, tt.now)
			if got != tt.want || wait != tt.wantWait {
				t.Fatalf("got %v, %v; want %v, %v", got, wait, tt.want, tt.wantWait)
			}
		})
	}

	// The wait never runs past the code's expiry.
	late := rec
	late.nextPoll = rec.expiresAt.Add(time.Minute)
	if _, wait := decideLogin(pending, late, true, false, t0); wait != loginLifetime {
		t.Fatalf("wait %v past the expiry", wait)
	}
}

func TestAfterPoll(t *testing.T) {
	rec := deviceLogin{interval: loginInterval}
	at := t0.Add(time.Minute)
	tests := []struct {
		name         string
		err          error
		wantState    sessionsv1alpha1.DeviceLoginState
		wantInterval time.Duration
		wantNext     time.Time
	}{
		{"approved", nil, loginApproved, loginInterval, time.Time{}},
		{"pending", errPending, sessionsv1alpha1.DeviceLoginPending, loginInterval, at.Add(loginInterval)},
		{"slow_down", errSlowDown, sessionsv1alpha1.DeviceLoginPending, loginInterval + 5*time.Second, at.Add(loginInterval + 5*time.Second)},
		{"outage honours Retry-After", errOutage, sessionsv1alpha1.DeviceLoginPending, loginInterval, at.Add(7 * time.Second)},
		{"not a TIDAL error", context.DeadlineExceeded, sessionsv1alpha1.DeviceLoginPending, loginInterval, at.Add(loginInterval)},
		{"expired_token", errExpired, sessionsv1alpha1.DeviceLoginExpired, loginInterval, time.Time{}},
		{"access_denied", errDenied, sessionsv1alpha1.DeviceLoginDenied, loginInterval, time.Time{}},
		{"invalid_grant", errUnknown, sessionsv1alpha1.DeviceLoginFailed, loginInterval, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, state := afterPoll(rec, tt.err, at)
			if state != tt.wantState || got.interval != tt.wantInterval || !got.nextPoll.Equal(tt.wantNext) {
				t.Fatalf("got %s, interval %v, next %v", state, got.interval, got.nextPoll)
			}
		})
	}
}
