package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

func TestClientGates(t *testing.T) {
	var g clientGates
	limited := &tidal.Error{Op: "refresh token", Kind: tidal.Transient, HTTPStatus: 429, RetryAfter: time.Minute}

	if err := g.admit("c1", t0); err != nil {
		t.Fatalf("a client never paused is admitted, got %v", err)
	}
	if err := g.observe("c1", &tidal.Error{Kind: tidal.Transient, HTTPStatus: 503}, t0, 0); err == nil {
		t.Fatal("observe dropped the error")
	} else if _, paused := asClientPaused(err); paused {
		t.Error("an outage of TIDAL paused the client: only 429 and invalid_client do")
	}

	err := g.observe("c1", limited, t0, 0)
	if p, ok := asClientPaused(err); !ok || !p.asked || !p.until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("429 with Retry-After 60s: %v; want the client paused until %v", err, t0.Add(time.Minute))
	}
	if tidal.KindOf(err) != tidal.Transient {
		t.Error("the pause hides the answer's kind")
	}
	if p, ok := asClientPaused(g.admit("c1", t0.Add(59*time.Second))); !ok || p.asked {
		t.Errorf("another session of the paused client is admitted before the pause ends")
	}
	if err := g.admit("c2", t0.Add(time.Second)); err != nil {
		t.Errorf("another client is paused too: %v", err)
	}

	if err := g.admit("c1", t0.Add(time.Minute)); err != nil {
		t.Fatalf("no probe admitted when the pause ended: %v", err)
	}
	if _, ok := asClientPaused(g.admit("c1", t0.Add(time.Minute+time.Second))); !ok {
		t.Error("a second session was admitted while the first probes")
	}
	if err := g.admit("c1", t0.Add(time.Minute+probeTimeout)); err != nil {
		t.Errorf("a lost probe keeps the client paused: %v", err)
	}

	if err := g.observe("c1", nil, t0.Add(2*time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if err := g.admit("c1", t0.Add(2*time.Minute)); err != nil {
		t.Errorf("a success did not reopen the client: %v", err)
	}
}

// invalid_client for 20 sessions of one client: TIDAL sees one request per pause, not one
// per session per retry, and every session says why it waits.
func TestRejectedClientPausesAllItsSessions(t *testing.T) {
	var objs []client.Object
	for i := range 20 {
		s := newSession()
		s.Name, s.UID = fmt.Sprintf("s%02d", i), types.UID(fmt.Sprintf("uid-s%02d", i))
		s.Spec.OutputSecret.Name = s.Name + "-token"
		// Each session has credentials of its own: one Secret serves one session.
		creds := newCreds()
		creds.Name = s.Name + "-creds"
		s.Spec.CredentialsSecretRef.Name = creds.Name
		objs = append(objs, s, creds)
	}
	f := newFixture(t, objs...)
	f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.ClientInvalid, Code: "invalid_client", HTTPStatus: 401}
	reconcileAll := func() time.Duration {
		t.Helper()
		longest := time.Duration(0)
		for i := range 20 {
			res, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{
				Namespace: testNamespace, Name: fmt.Sprintf("s%02d", i)}})
			if err != nil {
				t.Fatal(err)
			}
			longest = max(longest, res.RequeueAfter)
		}
		return longest
	}

	wait := reconcileAll()
	if f.tidal.calls != 1 {
		t.Fatalf("TIDAL saw %d requests from 20 sessions of a rejected client, want 1", f.tidal.calls)
	}
	for i := range 20 {
		s := &sessionsv1alpha1.TidalSession{}
		if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: fmt.Sprintf("s%02d", i)}, s); err != nil {
			t.Fatal(err)
		}
		ready := meta.FindStatusCondition(s.Status.Conditions, sessionsv1alpha1.ConditionReady)
		if ready == nil || ready.Reason != sessionsv1alpha1.ReasonClientRejected {
			t.Fatalf("session %s: Ready %v, want reason ClientRejected", s.Name, ready)
		}
	}

	// Ten rounds of every session retrying when told: one request per round at most.
	for range 10 {
		f.clock.Step(wait)
		wait = reconcileAll()
	}
	t.Logf("TIDAL saw %d requests from 20 sessions in 11 rounds", f.tidal.calls)
	if f.tidal.calls > 11 {
		t.Errorf("TIDAL saw %d requests in 11 rounds of 20 sessions, want at most 11", f.tidal.calls)
	}
	for _, e := range f.drainEvents() {
		if strings.Contains(e, canarySecret) || strings.Contains(e, canaryRefresh) {
			t.Errorf("Event leaks a credential: %s", e)
		}
	}
}

// A session with the right client id and a wrong secret gets invalid_client; it must not
// pause the sessions that hold the real credentials: client ids are not secret.
func TestWrongSecretPausesOnlyItsOwnSessions(t *testing.T) {
	intruder := newSession()
	intruder.Name, intruder.UID = "mallory", "uid-mallory"
	intruder.Spec.CredentialsSecretRef.Name = "mallory-creds"
	intruder.Spec.OutputSecret.Name = "mallory-token"
	wrong := newCreds()
	wrong.Name = "mallory-creds"
	wrong.Data["client_secret"] = []byte("not-the-secret")
	f := newFixture(t, newSession(), newCreds(), intruder, wrong)
	f.tidal.onRefresh = func() {
		f.tidal.err = nil
		if f.tidal.got.ClientSecret != canarySecret {
			f.tidal.err = &tidal.Error{Op: "refresh token", Kind: tidal.ClientInvalid, Code: "invalid_client", HTTPStatus: 401}
		}
	}
	if _, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{
		Namespace: testNamespace, Name: "mallory"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if s := f.session(t); s.Status.Phase != sessionsv1alpha1.PhaseActive || f.tidal.calls != 2 {
		t.Errorf("alice: phase %s after %d requests; a wrong secret elsewhere must not pause her", s.Status.Phase, f.tidal.calls)
	}
	if gateKey(tidal.Credentials{ClientID: "c", ClientSecret: canarySecret}) == gateKey(tidal.Credentials{ClientID: "c"}) ||
		strings.Contains(gateKey(tidal.Credentials{ClientID: "c", ClientSecret: canarySecret}), canarySecret) {
		t.Error("gate keys do not tell secrets apart, or carry the secret")
	}
}
