package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// Fixed instants, truncated to seconds as the API server stores them.
var (
	expiresAt   = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	nextRefresh = time.Date(2026, 5, 1, 11, 30, 0, 0, time.UTC)
	lastHealthy = time.Date(2026, 5, 1, 11, 15, 0, 0, time.UTC)
	created     = time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
)

// All per-session metric names plus the up gauge, for comparisons that must see every series.
var allNames = []string{
	"tidal_session_access_token_expiry_timestamp_seconds",
	"tidal_session_next_refresh_timestamp_seconds",
	"tidal_session_consecutive_failures",
	"tidal_session_phase",
	"tidal_session_ready",
	"tidal_session_created_timestamp_seconds",
	"tidal_session_last_healthy_timestamp_seconds",
	"tidal_session_status_up",
}

func newScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := sessionsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return scheme
}

// session builds a TidalSession; each option fills part of its status.
func session(ns, name string,
	opts ...func(*sessionsv1alpha1.TidalSessionStatus)) *sessionsv1alpha1.TidalSession {
	s := &sessionsv1alpha1.TidalSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, o := range opts {
		o(&s.Status)
	}
	return s
}

func withPhase(p sessionsv1alpha1.Phase) func(*sessionsv1alpha1.TidalSessionStatus) {
	return func(st *sessionsv1alpha1.TidalSessionStatus) { st.Phase = p }
}

func withTimes(st *sessionsv1alpha1.TidalSessionStatus) {
	st.AccessTokenExpiresAt = &metav1.Time{Time: expiresAt}
	st.NextRefreshTime = &metav1.Time{Time: nextRefresh}
	st.Health = &sessionsv1alpha1.SessionHealth{LastHealthyTime: &metav1.Time{Time: lastHealthy}}
}

func withCreation(s *sessionsv1alpha1.TidalSession) *sessionsv1alpha1.TidalSession {
	s.CreationTimestamp = metav1.NewTime(created)
	return s
}

func withFailures(n int32) func(*sessionsv1alpha1.TidalSessionStatus) {
	return func(st *sessionsv1alpha1.TidalSessionStatus) { st.ConsecutiveFailures = n }
}

func withReady(status metav1.ConditionStatus) func(*sessionsv1alpha1.TidalSessionStatus) {
	return func(st *sessionsv1alpha1.TidalSessionStatus) {
		st.Conditions = append(st.Conditions, metav1.Condition{
			Type: sessionsv1alpha1.ConditionReady, Status: status, Reason: "Test",
		})
	}
}

// withIdentity sets the TIDAL-reported identifiers that must never become label values.
func withIdentity(st *sessionsv1alpha1.TidalSessionStatus) {
	st.UserID = "987654321"
	st.ClientID = "clientIdFromTidal"
	st.CountryCode = "NO"
}

func newCollector(t testing.TB, objs ...client.Object) (*SessionCollector, client.Client) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(newScheme(t)).WithObjects(objs...).Build()
	return NewSessionCollector(c), c
}

func TestSessionCollectorReportsStatus(t *testing.T) {
	tests := []struct {
		name     string
		sessions []client.Object
		want     string
	}{
		{
			name: "no sessions",
			want: `
# HELP tidal_session_status_up 1 when the last scrape could list TidalSessions from the cache, 0 when it could not and the per-session series are missing.
# TYPE tidal_session_status_up gauge
tidal_session_status_up 1
`,
		},
		{
			name: "sessions with and without status in several namespaces",
			sessions: []client.Object{
				withCreation(session("music", "alice", withPhase(sessionsv1alpha1.PhaseActive), withTimes,
					withReady(metav1.ConditionTrue), withIdentity)),
				session("music", "bob", withPhase(sessionsv1alpha1.PhaseDegraded), withTimes,
					withFailures(3), withReady(metav1.ConditionFalse)),
				session("radio", "carol"),
				session("radio", "dave", withPhase(sessionsv1alpha1.PhasePending),
					withReady(metav1.ConditionUnknown)),
			},
			want: fmt.Sprintf(`
# HELP tidal_session_access_token_expiry_timestamp_seconds When the access token in the session's output Secret expires, in Unix seconds.
# TYPE tidal_session_access_token_expiry_timestamp_seconds gauge
tidal_session_access_token_expiry_timestamp_seconds{name="alice",namespace="music"} %[1]d
tidal_session_access_token_expiry_timestamp_seconds{name="bob",namespace="music"} %[1]d
# HELP tidal_session_next_refresh_timestamp_seconds When the operator will next refresh the session, in Unix seconds.
# TYPE tidal_session_next_refresh_timestamp_seconds gauge
tidal_session_next_refresh_timestamp_seconds{name="alice",namespace="music"} %[2]d
tidal_session_next_refresh_timestamp_seconds{name="bob",namespace="music"} %[2]d
# HELP tidal_session_consecutive_failures Failed refresh attempts since the session's last successful refresh.
# TYPE tidal_session_consecutive_failures gauge
tidal_session_consecutive_failures{name="alice",namespace="music"} 0
tidal_session_consecutive_failures{name="bob",namespace="music"} 3
tidal_session_consecutive_failures{name="carol",namespace="radio"} 0
tidal_session_consecutive_failures{name="dave",namespace="radio"} 0
# HELP tidal_session_phase The session's current phase: 1 on the series of that phase, no series for others.
# TYPE tidal_session_phase gauge
tidal_session_phase{name="alice",namespace="music",phase="Active"} 1
tidal_session_phase{name="bob",namespace="music",phase="Degraded"} 1
tidal_session_phase{name="dave",namespace="radio",phase="Pending"} 1
# HELP tidal_session_ready 1 when the session's Ready condition is True, 0 otherwise.
# TYPE tidal_session_ready gauge
tidal_session_ready{name="alice",namespace="music"} 1
tidal_session_ready{name="bob",namespace="music"} 0
tidal_session_ready{name="carol",namespace="radio"} 0
tidal_session_ready{name="dave",namespace="radio"} 0
# HELP tidal_session_created_timestamp_seconds When the TidalSession was created, in Unix seconds; time() minus it is the session's age.
# TYPE tidal_session_created_timestamp_seconds gauge
tidal_session_created_timestamp_seconds{name="alice",namespace="music"} %[4]d
# HELP tidal_session_last_healthy_timestamp_seconds When a check against TIDAL last found the session healthy, in Unix seconds.
# TYPE tidal_session_last_healthy_timestamp_seconds gauge
tidal_session_last_healthy_timestamp_seconds{name="alice",namespace="music"} %[3]d
tidal_session_last_healthy_timestamp_seconds{name="bob",namespace="music"} %[3]d
# HELP tidal_session_status_up 1 when the last scrape could list TidalSessions from the cache, 0 when it could not and the per-session series are missing.
# TYPE tidal_session_status_up gauge
tidal_session_status_up 1
`, expiresAt.Unix(), nextRefresh.Unix(), lastHealthy.Unix(), created.Unix()),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newCollector(t, tt.sessions...)
			if err := testutil.CollectAndCompare(c, strings.NewReader(tt.want), allNames...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSessionCollectorDeletedSessionVanishes(t *testing.T) {
	c, cl := newCollector(t,
		session("music", "alice", withPhase(sessionsv1alpha1.PhaseActive), withTimes,
			withReady(metav1.ConditionTrue)),
		session("radio", "bob", withPhase(sessionsv1alpha1.PhaseActive), withTimes,
			withReady(metav1.ConditionTrue)),
	)
	// Six series per session (expiry, next refresh, last healthy, failures, phase, ready) and
	// the up gauge.
	if got := testutil.CollectAndCount(c); got != 13 {
		t.Fatalf("series before delete = %d, want 13", got)
	}

	if err := cl.Delete(context.Background(), session("music", "alice")); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP tidal_session_ready 1 when the session's Ready condition is True, 0 otherwise.
# TYPE tidal_session_ready gauge
tidal_session_ready{name="bob",namespace="radio"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "tidal_session_ready"); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(c); got != 7 {
		t.Errorf("series after delete = %d, want 7", got)
	}
}

func TestSessionCollectorListError(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	cl := fake.NewClientBuilder().WithScheme(newScheme(t)).
		WithObjects(session("music", "alice", withPhase(sessionsv1alpha1.PhaseActive))).
		WithInterceptorFuncs(interceptor.Funcs{
			List: func(ctx context.Context, c client.WithWatch, list client.ObjectList,
				opts ...client.ListOption) error {
				if failing.Load() {
					return errors.New("cache not synced")
				}
				return c.List(ctx, list, opts...)
			},
		}).Build()
	c := NewSessionCollector(cl)

	down := `
# HELP tidal_session_status_up 1 when the last scrape could list TidalSessions from the cache, 0 when it could not and the per-session series are missing.
# TYPE tidal_session_status_up gauge
tidal_session_status_up 0
`
	// Twice: the second failure must behave like the first although it is not logged.
	for range 2 {
		if err := testutil.CollectAndCompare(c, strings.NewReader(down), allNames...); err != nil {
			t.Error(err)
		}
	}

	failing.Store(false)
	up := strings.Replace(down, "tidal_session_status_up 0", "tidal_session_status_up 1", 1)
	if err := testutil.CollectAndCompare(c, strings.NewReader(up), "tidal_session_status_up"); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(c, "tidal_session_phase"); got != 1 {
		t.Errorf("phase series after recovery = %d, want 1", got)
	}
}

// TestSessionCollectorLabels checks every series carries exactly the namespace and name
// labels (and phase on the phase metric), and that no value TIDAL reported reaches a label.
func TestSessionCollectorLabels(t *testing.T) {
	c, _ := newCollector(t,
		withCreation(session("music", "alice", withPhase(sessionsv1alpha1.PhaseActive), withTimes,
			withFailures(1), withReady(metav1.ConditionTrue), withIdentity)),
	)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}

	wantLabels := map[string]string{
		"tidal_session_access_token_expiry_timestamp_seconds": "name,namespace",
		"tidal_session_next_refresh_timestamp_seconds":        "name,namespace",
		"tidal_session_consecutive_failures":                  "name,namespace",
		"tidal_session_phase":                                 "name,namespace,phase",
		"tidal_session_ready":                                 "name,namespace",
		"tidal_session_created_timestamp_seconds":             "name,namespace",
		"tidal_session_last_healthy_timestamp_seconds":        "name,namespace",
		"tidal_session_status_up":                             "",
	}
	seen := map[string]bool{}
	for _, f := range families {
		want, ok := wantLabels[f.GetName()]
		if !ok {
			t.Errorf("unexpected metric %q", f.GetName())
			continue
		}
		seen[f.GetName()] = true
		for _, m := range f.GetMetric() {
			var names []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
				for _, secret := range []string{"987654321", "clientIdFromTidal", "NO"} {
					if l.GetValue() == secret {
						t.Errorf("%s label %s carries TIDAL-reported value %q",
							f.GetName(), l.GetName(), secret)
					}
				}
			}
			if got := strings.Join(names, ","); got != want {
				t.Errorf("%s labels = %q, want %q", f.GetName(), got, want)
			}
		}
	}
	for name := range wantLabels {
		if !seen[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

func TestRegisterSessionCollector(t *testing.T) {
	cl := fake.NewClientBuilder().WithScheme(newScheme(t)).Build()
	if err := RegisterSessionCollector(cl); err != nil {
		t.Fatalf("first registration: %v", err)
	}
	t.Cleanup(func() { ctrlmetrics.Registry.Unregister(NewSessionCollector(cl)) })

	// A second collector would report every session twice; the registry refuses it.
	if err := RegisterSessionCollector(cl); err == nil {
		t.Error("second registration succeeded, want an error")
	}
	if got, err := testutil.GatherAndCount(ctrlmetrics.Registry, "tidal_session_status_up"); err != nil || got != 1 {
		t.Errorf("tidal_session_status_up series on the registry = %d (%v), want 1", got, err)
	}
}

// listedReader answers List with a list built beforehand, standing in for the manager's
// cache, which hands out its own objects when asked not to copy them.
type listedReader struct {
	client.Reader
	list sessionsv1alpha1.TidalSessionList
}

func (r *listedReader) List(
	_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	*list.(*sessionsv1alpha1.TidalSessionList) = r.list
	return nil
}

// BenchmarkSessionCollector measures one scrape of 10,000 sessions: through the fake client,
// which copies every item on List, and through a reader that copies nothing, as the manager's
// cache does with UnsafeDisableDeepCopy. The second is closer to a real scrape's cost.
func BenchmarkSessionCollector(b *testing.B) {
	const n = 10000
	objs := make([]client.Object, 0, n)
	listed := &listedReader{}
	for i := range n {
		s := session(fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("session-%d", i),
			withPhase(sessionsv1alpha1.PhaseActive), withTimes, withFailures(int32(i%3)),
			withReady(metav1.ConditionTrue))
		objs = append(objs, s)
		listed.list.Items = append(listed.list.Items, *s)
	}
	fakeCollector, _ := newCollector(b, objs...)

	for _, bc := range []struct {
		name string
		c    *SessionCollector
	}{
		{"fakeClient", fakeCollector},
		{"noCopyReader", NewSessionCollector(listed)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ch := make(chan prometheus.Metric, 1024)
			done := make(chan int)
			go func() {
				count := 0
				for range ch {
					count++
				}
				done <- count
			}()

			b.ReportAllocs()
			scrapes := 0
			for b.Loop() {
				bc.c.Collect(ch)
				scrapes++
			}
			close(ch)
			if got, want := <-done, scrapes*(5*n+1); got != want {
				b.Fatalf("collected %d series, want %d", got, want)
			}
		})
	}
}
