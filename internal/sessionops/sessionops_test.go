package sessionops

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

var (
	t0  = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	key = types.NamespacedName{Namespace: "music", Name: "alice"}
	gr  = schema.GroupResource{Group: sessionsv1alpha1.GroupVersion.Group, Resource: "tidalsessions"}
)

// session keeps fixtures short: a session "music/alice" with the changes applied.
func session(changes ...func(*sessionsv1alpha1.TidalSession)) *sessionsv1alpha1.TidalSession {
	s := &sessionsv1alpha1.TidalSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Generation: 1,
			Annotations: map[string]string{"team": "audio"}},
		Spec: sessionsv1alpha1.TidalSessionSpec{
			CredentialsSecretRef: sessionsv1alpha1.CredentialsSecretReference{Name: "alice-creds"},
			OutputSecret:         sessionsv1alpha1.OutputSecretSpec{Name: "alice-token"},
		},
	}
	for _, change := range changes {
		change(s)
	}
	return s
}

func tm(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

// active: refreshed at the given time, ready, token good for an hour.
func active(at time.Time) func(*sessionsv1alpha1.TidalSession) {
	return func(s *sessionsv1alpha1.TidalSession) {
		s.Status.Phase = sessionsv1alpha1.PhaseActive
		s.Status.ObservedGeneration = s.Generation
		s.Status.LastRefreshTime = tm(at)
		s.Status.AccessTokenExpiresAt = tm(at.Add(time.Hour))
		s.Status.NextRefreshTime = tm(at.Add(45 * time.Minute))
		s.Status.RefreshCount++
		s.Status.UserID, s.Status.CountryCode = "4711", "NO"
		s.Status.Conditions = []metav1.Condition{{Type: sessionsv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: sessionsv1alpha1.ReasonRefreshed, Message: "Refreshed", LastTransitionTime: metav1.Time{Time: at}}}
	}
}

func failing(phase sessionsv1alpha1.Phase, reason string, failures int32) func(*sessionsv1alpha1.TidalSession) {
	return func(s *sessionsv1alpha1.TidalSession) {
		s.Status.Phase = phase
		s.Status.ConsecutiveFailures = failures
		status := metav1.ConditionFalse
		if phase == sessionsv1alpha1.PhaseDegraded {
			status = metav1.ConditionTrue
		}
		s.Status.Conditions = []metav1.Condition{{Type: sessionsv1alpha1.ConditionReady, Status: status,
			Reason: reason, Message: "the operator's words for " + reason, LastTransitionTime: metav1.Time{Time: t0}}}
	}
}

func handled(value string) func(*sessionsv1alpha1.TidalSession) {
	return func(s *sessionsv1alpha1.TidalSession) { s.Status.LastRefreshRequest = value }
}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := sessionsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return scheme
}

func newClient(t *testing.T, funcs interceptor.Funcs, objs ...client.Object) client.WithWatch {
	t.Helper()
	return fake.NewClientBuilder().WithScheme(newScheme(t)).WithObjects(objs...).
		WithStatusSubresource(&sessionsv1alpha1.TidalSession{}).WithInterceptorFuncs(funcs).Build()
}

func TestValidateName(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		ns, name string
		wantErr  []string
	}{
		{ns: "music", name: "alice"},
		{ns: "music", name: "alice.v2"},
		{ns: "music", name: strings.Repeat("a", 63)},
		{ns: "", name: "alice", wantErr: []string{"namespace is empty"}},
		{ns: "music", name: "", wantErr: []string{"session name is empty"}},
		{ns: "Music", name: "alice", wantErr: []string{`namespace "Music"`, "lower case"}},
		{ns: "music.prod", name: "alice", wantErr: []string{`namespace "music.prod"`}},
		{ns: "music", name: "Alice", wantErr: []string{`session name "Alice"`, "lower case"}},
		{ns: "music", name: "../secrets", wantErr: []string{`session name "../secrets"`}},
		{ns: "music", name: "alice/token", wantErr: []string{`session name "alice/token"`}},
		{ns: "music", name: long, wantErr: []string{"no more than 63 characters"}},
		{ns: strings.Repeat("n", 500), name: "alice", wantErr: []string{`namespace "` + strings.Repeat("n", 80) + `"...`}},
		{ns: "a b", name: "c d", wantErr: []string{`namespace "a b"`, `session name "c d"`}},
	}
	for _, tt := range tests {
		err := ValidateName(tt.ns, tt.name)
		if len(tt.wantErr) == 0 {
			if err != nil {
				t.Errorf("ValidateName(%q, %q) = %v, want nil", tt.ns, tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q, %q) = %v, want ErrInvalidName", tt.ns, tt.name, err)
			continue
		}
		for _, want := range tt.wantErr {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ValidateName(%q, %q) = %q, want it to contain %q", tt.ns, tt.name, err, want)
			}
		}
	}
}

func TestRequestRefreshPatchesOnlyTheAnnotation(t *testing.T) {
	var patches []string
	c := newClient(t, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			data, err := p.Data(obj)
			if err != nil {
				return err
			}
			if p.Type() != types.MergePatchType {
				t.Errorf("patch type %s, want a merge patch", p.Type())
			}
			patches = append(patches, string(data))
			return c.Patch(ctx, obj, p, opts...)
		},
	}, session(active(t0)))

	// Not in UTC and not on a second: the value is both.
	now := time.Date(2026, 12, 4, 11, 30, 5, 900_000_000, time.FixedZone("CET", 3600))
	got, err := RequestRefresh(context.Background(), c, key, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := "2026-12-04T10:30:05Z"; got != want {
		t.Errorf("RequestRefresh = %q, want %q", got, want)
	}
	want := `{"metadata":{"annotations":{"sessions.tidal-mcp.dev/refresh-requested-at":"2026-12-04T10:30:05Z"}}}`
	if len(patches) != 1 || patches[0] != want {
		t.Errorf("patches = %q, want exactly %q", patches, want)
	}

	s := &sessionsv1alpha1.TidalSession{}
	if err := c.Get(context.Background(), key, s); err != nil {
		t.Fatal(err)
	}
	if s.Annotations[sessionsv1alpha1.RefreshRequestAnnotation] != got || s.Annotations["team"] != "audio" {
		t.Errorf("annotations = %v, want the request added to the others", s.Annotations)
	}
	if s.Spec.OutputSecret.Name != "alice-token" || s.Status.RefreshCount != 1 {
		t.Errorf("spec or status changed: %+v", s)
	}
}

func TestRequestRefreshErrors(t *testing.T) {
	forbidden := apierrors.NewForbidden(gr, "alice", errors.New(`User "system:serviceaccount:music:mcp" cannot patch resource`))
	tests := []struct {
		name     string
		key      types.NamespacedName
		patchErr error
		wantKind error
		want     []string
		noCall   bool
	}{
		{name: "unknown session", key: types.NamespacedName{Namespace: "music", Name: "bob"},
			wantKind: ErrNotFound, want: []string{`no TidalSession "bob" in namespace "music"`}},
		{name: "forbidden", key: key, patchErr: forbidden, wantKind: ErrForbidden,
			want: []string{"not allowed to patch", "system:serviceaccount:music:mcp", "cannot patch"}},
		{name: "malformed name", key: types.NamespacedName{Namespace: "music", Name: "Bob!"},
			wantKind: ErrInvalidName, want: []string{`session name "Bob!"`}, noCall: true},
		{name: "other failure", key: key, patchErr: apierrors.NewServiceUnavailable("etcd down"),
			want: []string{"failed to patch", "etcd down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			c := newClient(t, interceptor.Funcs{
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
					calls++
					if tt.patchErr != nil {
						return tt.patchErr
					}
					return c.Patch(ctx, obj, p, opts...)
				},
			}, session(active(t0)))
			got, err := RequestRefresh(context.Background(), c, tt.key, t0)
			if err == nil || got != "" {
				t.Fatalf("RequestRefresh = %q, %v; want an error", got, err)
			}
			if tt.wantKind != nil && !errors.Is(err, tt.wantKind) {
				t.Errorf("error %v is not %v", err, tt.wantKind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.noCall && calls != 0 {
				t.Errorf("a malformed name reached the API server")
			}
		})
	}
}

func TestProgressOf(t *testing.T) {
	requested := "2026-12-04T10:00:00Z"
	before, same, after := t0.Add(-40*time.Second), t0, t0.Add(time.Second)
	tests := []struct {
		name    string
		session *sessionsv1alpha1.TidalSession
		base    baseline
		want    progress
	}{
		{name: "no refresh since the request", session: session(active(before)),
			base: baseline{reason: sessionsv1alpha1.ReasonRefreshed}, want: waiting},
		{name: "refresh in a later second", session: session(active(after)), want: refreshed},
		{name: "refresh in the same second, request not handled yet", session: session(active(same)), want: waiting},
		{name: "refresh in the same second, request handled", session: session(active(same), handled(requested)),
			want: refreshed},
		{name: "request handled but no refresh since (another writer's equal value)",
			session: session(active(before), handled(requested)), want: waiting},
		{name: "never refreshed", session: session(), want: waiting},
		{name: "reauth required", session: session(active(before), failing(sessionsv1alpha1.PhaseReauthRequired,
			sessionsv1alpha1.ReasonReauthRequired, 1)), base: baseline{failures: 1, reason: sessionsv1alpha1.ReasonReauthRequired},
			want: failed},
		{name: "error", session: session(failing(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsMissing, 0)),
			base: baseline{reason: sessionsv1alpha1.ReasonCredentialsMissing}, want: failed},
		{name: "expired", session: session(active(before.Add(-time.Hour)), failing(sessionsv1alpha1.PhaseExpired,
			sessionsv1alpha1.ReasonTokenExpired, 9)), base: baseline{failures: 9, reason: sessionsv1alpha1.ReasonTokenExpired},
			want: failed},
		{name: "suspended", session: session(failing(sessionsv1alpha1.PhaseSuspended, sessionsv1alpha1.ReasonSuspended, 0)),
			base: baseline{reason: sessionsv1alpha1.ReasonSuspended}, want: failed},
		{name: "degraded before the request, no new attempt yet", session: session(active(before),
			failing(sessionsv1alpha1.PhaseDegraded, sessionsv1alpha1.ReasonRefreshRetrying, 2)),
			base: baseline{failures: 2, reason: sessionsv1alpha1.ReasonRefreshRetrying}, want: waiting},
		{name: "an attempt after the request failed", session: session(active(before),
			failing(sessionsv1alpha1.PhaseDegraded, sessionsv1alpha1.ReasonRefreshRetrying, 3)),
			base: baseline{failures: 2, reason: sessionsv1alpha1.ReasonRefreshRetrying}, want: failed},
		{name: "Ready turned to a failure reason", session: session(active(before),
			failing(sessionsv1alpha1.PhaseDegraded, sessionsv1alpha1.ReasonRefreshRetrying, 0)),
			base: baseline{reason: sessionsv1alpha1.ReasonRefreshed}, want: failed},
		{name: "Ready False with a reason this package does not know", session: session(active(before),
			failing(sessionsv1alpha1.PhasePending, "SomethingNew", 0)),
			base: baseline{reason: sessionsv1alpha1.ReasonRefreshed}, want: failed},
		{name: "a refresh wins over an old failure count", session: session(active(after),
			func(s *sessionsv1alpha1.TidalSession) { s.Status.ConsecutiveFailures = 5 }), want: refreshed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := progressOf(tt.session, requested, t0, tt.base); got != tt.want {
				t.Errorf("progressOf = %d, want %d", got, tt.want)
			}
		})
	}
}

// operatorAfter returns interceptor funcs that apply change to the stored session once n
// reads have happened, as the operator would after handling a request.
func operatorAfter(t *testing.T, n int32, change func(*sessionsv1alpha1.TidalSession)) (interceptor.Funcs, *atomic.Int32) {
	var reads atomic.Int32
	return interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if reads.Add(1) == n {
				s := &sessionsv1alpha1.TidalSession{}
				if err := c.Get(ctx, k, s); err != nil {
					return err
				}
				change(s)
				if err := c.Status().Update(ctx, s); err != nil {
					t.Errorf("updating status: %v", err)
				}
			}
			return c.Get(ctx, k, obj, opts...)
		},
	}, &reads
}

func TestWaitForRefresh(t *testing.T) {
	PollInterval = 10 * time.Millisecond
	requested := t0.Format(time.RFC3339)
	old := t0.Add(-10 * time.Minute)

	t.Run("refreshed", func(t *testing.T) {
		funcs, reads := operatorAfter(t, 3, func(s *sessionsv1alpha1.TidalSession) {
			active(t0.Add(2 * time.Second))(s)
			s.Status.LastRefreshRequest = requested
		})
		c := newClient(t, funcs, session(active(old)))
		sum, err := WaitForRefresh(context.Background(), c, key, requested, 5*time.Second)
		if err != nil {
			t.Fatalf("WaitForRefresh: %v", err)
		}
		if reads.Load() < 3 {
			t.Errorf("returned after %d reads, before the refresh showed", reads.Load())
		}
		if sum.ExpiresAt != "2026-12-04T11:00:02Z" || sum.LastRefreshTime != "2026-12-04T10:00:02Z" || sum.Phase != "Active" {
			t.Errorf("summary = %+v, want the new expiry", sum)
		}
	})

	t.Run("reauth required", func(t *testing.T) {
		funcs, _ := operatorAfter(t, 2, failing(sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired, 1))
		c := newClient(t, funcs, session(active(old)))
		sum, err := WaitForRefresh(context.Background(), c, key, requested, 5*time.Second)
		var failed *RefreshFailedError
		if !errors.As(err, &failed) {
			t.Fatalf("WaitForRefresh = %v, want a RefreshFailedError", err)
		}
		if sum.Phase != "ReauthRequired" || !strings.Contains(sum.NextStep, `Log in to TIDAL again`) ||
			!strings.Contains(sum.NextStep, `"alice-creds"`) {
			t.Errorf("summary = %+v", sum)
		}
		if !strings.Contains(err.Error(), "phase ReauthRequired (ReauthRequired)") {
			t.Errorf("error = %q", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		c := newClient(t, interceptor.Funcs{}, session(active(old)))
		start := time.Now()
		sum, err := WaitForRefresh(context.Background(), c, key, requested, 200*time.Millisecond)
		if !errors.Is(err, ErrTimedOut) {
			t.Fatalf("WaitForRefresh = %v, want ErrTimedOut", err)
		}
		if took := time.Since(start); took < 150*time.Millisecond || took > 2*time.Second {
			t.Errorf("took %v for a 200ms timeout", took)
		}
		if sum.Phase != "Active" || !strings.Contains(err.Error(), "no refresh after 2026-12-04T10:00:00Z within 200ms") {
			t.Errorf("summary %+v, error %q", sum, err)
		}
	})

	t.Run("caller cancels", func(t *testing.T) {
		c := newClient(t, interceptor.Funcs{}, session(active(old)))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := WaitForRefresh(ctx, c, key, requested, time.Minute)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimedOut) {
			t.Errorf("WaitForRefresh = %v, want the caller's deadline", err)
		}
	})

	t.Run("deleted", func(t *testing.T) {
		c := newClient(t, interceptor.Funcs{})
		_, err := WaitForRefresh(context.Background(), c, key, requested, time.Second)
		if !errors.Is(err, ErrNotFound) || !apierrors.IsNotFound(err) {
			t.Errorf("WaitForRefresh = %v, want ErrNotFound", err)
		}
	})

	t.Run("transient read errors are retried", func(t *testing.T) {
		var reads atomic.Int32
		c := newClient(t, interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if reads.Add(1) <= 2 {
					return apierrors.NewServiceUnavailable("apiserver restarting")
				}
				return c.Get(ctx, k, obj, opts...)
			},
		}, session(active(t0.Add(time.Second))))
		if _, err := WaitForRefresh(context.Background(), c, key, requested, 5*time.Second); err != nil {
			t.Errorf("WaitForRefresh = %v, want the refresh after the API server recovered", err)
		}
	})

	t.Run("malformed request value", func(t *testing.T) {
		c := newClient(t, interceptor.Funcs{}, session(active(old)))
		if _, err := WaitForRefresh(context.Background(), c, key, "yesterday", time.Second); err == nil {
			t.Error("WaitForRefresh accepted a value that is not RFC 3339")
		}
	})
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name     string
		session  *sessionsv1alpha1.TidalSession
		phase    string
		ready    string
		nextStep []string
		text     []string
	}{
		{name: "not looked at yet", session: session(), phase: "Unknown", ready: "Unknown",
			nextStep: []string{"has not looked at this session", "namespace music"}},
		{name: "active", session: session(active(t0)), phase: "Active", ready: "True",
			nextStep: []string{"Nothing"},
			text: []string{"phase Active, ready true (Refreshed)", "expires at 2026-12-04T11:00:00Z",
				"Last refreshed at 2026-12-04T10:00:00Z (refreshes so far: 1)", "Next refresh at 2026-12-04T10:45:00Z",
				"TIDAL user 4711, country NO", `Secret "alice-token"`, "TIDAL issued a new access token"}},
		{name: "pending", session: session(failing(sessionsv1alpha1.PhasePending, sessionsv1alpha1.ReasonRefreshRetrying, 1)),
			phase: "Pending", ready: "False", nextStep: []string{"Wait"}},
		{name: "degraded", session: session(active(t0), failing(sessionsv1alpha1.PhaseDegraded, sessionsv1alpha1.ReasonRefreshRetrying, 2)),
			phase: "Degraded", ready: "True", nextStep: []string{"retries at 2026-12-04T10:45:00Z"},
			text: []string{"2 refresh attempts failed"}},
		{name: "expired", session: session(failing(sessionsv1alpha1.PhaseExpired, sessionsv1alpha1.ReasonTokenExpired, 7)),
			phase: "Expired", ready: "False", nextStep: []string{"TIDAL's reachability"}},
		{name: "reauth", session: session(failing(sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired, 1)),
			phase: "ReauthRequired", ready: "False", nextStep: []string{"Log in to TIDAL again", `"alice-creds"`},
			text: []string{"only a new login helps", "the operator's words for ReauthRequired"}},
		{name: "suspended", session: session(func(s *sessionsv1alpha1.TidalSession) { s.Spec.Suspend = true },
			failing(sessionsv1alpha1.PhaseSuspended, sessionsv1alpha1.ReasonSuspended, 0)),
			phase: "Suspended", ready: "False", nextStep: []string{"spec.suspend to false"}},
		{name: "quarantined", session: session(failing(sessionsv1alpha1.PhaseQuarantined, sessionsv1alpha1.ReasonQuarantined, 0)),
			phase: "Quarantined", ready: "False", nextStep: []string{sessionsv1alpha1.BindingApprovalAnnotation, "Events"}},
		{name: "client rejected", session: session(failing(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonClientRejected, 1)),
			phase: "Error", ready: "False", nextStep: []string{"client id and client secret", `"alice-creds"`}},
		{name: "credentials missing", session: session(failing(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsMissing, 0)),
			phase: "Error", ready: "False", nextStep: []string{"Create the credentials Secret \"alice-creds\""}},
		{name: "output conflict", session: session(failing(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonOutputSecretConflict, 0)),
			phase: "Error", ready: "False", nextStep: []string{`Delete the Secret "alice-token"`}},
		{name: "invalid spec", session: session(failing(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec, 0)),
			phase: "Error", ready: "False", nextStep: []string{"Fix the session's spec"}},
		{name: "status behind the spec", session: session(active(t0), func(s *sessionsv1alpha1.TidalSession) { s.Generation = 2 }),
			phase: "Active", ready: "True", text: []string{"earlier version of the spec"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := Summarize(tt.session)
			if sum.Namespace != "music" || sum.Name != "alice" || sum.Phase != tt.phase || sum.Ready != tt.ready {
				t.Errorf("summary = %+v, want phase %s ready %s", sum, tt.phase, tt.ready)
			}
			for _, w := range tt.nextStep {
				if !strings.Contains(sum.NextStep, w) {
					t.Errorf("next step %q does not contain %q", sum.NextStep, w)
				}
			}
			text := sum.Text()
			for _, w := range append(tt.text, "What to do next: "+sum.NextStep) {
				if !strings.Contains(text, w) {
					t.Errorf("text %q does not contain %q", text, w)
				}
			}
		})
	}
}

func TestRefreshFailedErrorMessage(t *testing.T) {
	err := &RefreshFailedError{Summary: Summarize(session(
		failing(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonClientRejected, 1)))}
	want := "TidalSession music/alice was not refreshed: phase Error (ClientRejected): the operator's words for ClientRejected"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestSummarizeHealthAndBinding(t *testing.T) {
	checked, healthy := t0.Add(10*time.Minute), t0
	s := session(active(t0), func(s *sessionsv1alpha1.TidalSession) {
		s.Status.Health = &sessionsv1alpha1.SessionHealth{Result: sessionsv1alpha1.HealthUnknown,
			LastCheckTime: tm(checked), LastHealthyTime: tm(healthy)}
		s.Spec.Binding = &sessionsv1alpha1.BindingPolicy{Mode: sessionsv1alpha1.BindingEnforce}
		s.Status.Binding = &sessionsv1alpha1.BindingStatus{Violations: 3, Bound: []sessionsv1alpha1.BoundConsumer{
			{Fingerprint: "v1:a"}, {Fingerprint: "v1:b"}}}
	})
	sum := Summarize(s)
	if sum.Health != "Unknown" || sum.LastCheckTime != "2026-12-04T10:10:00Z" || sum.LastHealthyTime != "2026-12-04T10:00:00Z" ||
		sum.Binding != "Enforce" || sum.BoundConsumers != 2 || sum.Violations != 3 {
		t.Errorf("summary = %+v", sum)
	}
	for _, want := range []string{
		"Last checked against TIDAL at 2026-12-04T10:10:00Z: Unknown (last healthy at 2026-12-04T10:00:00Z).",
		"Bound to 2 workload(s) in Enforce mode; consumers that did not match so far: 3.",
	} {
		if !strings.Contains(sum.Text(), want) {
			t.Errorf("text lacks %q:\n%s", want, sum.Text())
		}
	}
	if plain := Summarize(session(active(t0))); plain.Binding != "" || plain.Health != "" ||
		strings.Contains(plain.Text(), "Bound to") || strings.Contains(plain.Text(), "Last checked") {
		t.Errorf("a session without checks or binding reports them: %+v", plain)
	}
}
