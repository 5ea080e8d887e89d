package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/yaml"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
)

var expiresAt = time.Date(2026, 12, 4, 19, 46, 40, 0, time.UTC)

// session returns an Active TidalSession of ns/name, Ready and refreshed.
func session(ns, name string) *sessionsv1alpha1.TidalSession {
	refreshed := metav1.NewTime(expiresAt.Add(-4 * time.Hour))
	expiry := metav1.NewTime(expiresAt)
	return &sessionsv1alpha1.TidalSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: sessionsv1alpha1.TidalSessionSpec{
			CredentialsSecretRef: sessionsv1alpha1.CredentialsSecretReference{Name: name + "-credentials"},
			OutputSecret:         sessionsv1alpha1.OutputSecretSpec{Name: name + "-tidal-token"},
		},
		Status: sessionsv1alpha1.TidalSessionStatus{
			Phase:                sessionsv1alpha1.PhaseActive,
			ObservedGeneration:   1,
			AccessTokenExpiresAt: &expiry,
			LastRefreshTime:      &refreshed,
			RefreshCount:         3,
			UserID:               "4711",
			CountryCode:          "NO",
			Conditions: []metav1.Condition{{
				Type: sessionsv1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 1,
				Reason: sessionsv1alpha1.ReasonRefreshed, Message: "refreshed", LastTransitionTime: refreshed,
			}},
		},
	}
}

// noSecretReads fails the test when a command reads a Secret: status and refresh read only
// TidalSessions.
func noSecretReads(t *testing.T) *interceptor.Funcs {
	return &interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				t.Errorf("Secret %s was read", key)
			}
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*corev1.SecretList); ok {
				t.Error("Secrets were listed")
			}
			return c.List(ctx, list, opts...)
		},
	}
}

func TestStatusOne(t *testing.T) {
	c := newFakeClient(noSecretReads(t), session(testNamespace, "alice"), session("other", "alice"))
	r := execute(t, c, "", "status", "alice", "-n", testNamespace)
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"TidalSession music/alice: phase Active, ready true (Refreshed)",
		"The access token expires at 2026-12-04T19:46:40Z", "What to do next:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, r.stdout)
		}
	}

	for _, format := range []string{"json", "yaml"} {
		r := execute(t, c, "", "status", "alice", "-n", testNamespace, "-o", format)
		var s sessionops.Summary
		if err := yaml.Unmarshal([]byte(r.stdout), &s); err != nil || r.err != nil {
			t.Fatalf("-o %s: %v %v\n%s", format, r.err, err, r.stdout)
		}
		if s.Namespace != testNamespace || s.Name != "alice" || s.Phase != "Active" || s.ExpiresAt != "2026-12-04T19:46:40Z" {
			t.Errorf("-o %s: summary %+v", format, s)
		}
	}
	if r := execute(t, c, "", "status", "alice", "-n", testNamespace, "-o", "json"); !json.Valid([]byte(r.stdout)) {
		t.Errorf("-o json is not JSON: %s", r.stdout)
	}
}

func TestStatusErrors(t *testing.T) {
	c := newFakeClient(nil, session(testNamespace, "alice"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "bob", "-n", testNamespace}, `no TidalSession "bob" in namespace "music"`},
		{[]string{"status", "Bob", "-n", testNamespace}, "session name"},
		{[]string{"status", "alice", "-n", testNamespace, "-o", "wide"}, `unknown output format "wide"`},
		{[]string{"status", "alice", "-A"}, "exclude each other"},
		{[]string{"status", "a", "b"}, "accepts at most 1 arg"},
	} {
		r := execute(t, c, "", tc.args...)
		if r.err == nil || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: err %v, stderr %q; want it to say %q", tc.args, r.err, r.stderr, tc.want)
		}
	}
}

func TestStatusList(t *testing.T) {
	failing := session(testNamespace, "bob")
	failing.Status.Phase = sessionsv1alpha1.PhaseReauthRequired
	c := newFakeClient(noSecretReads(t), session(testNamespace, "carol"), failing, session("other", "alice"))

	r := execute(t, c, "", "status", "-n", testNamespace)
	if r.err != nil {
		t.Fatal(r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME ") ||
		!strings.HasPrefix(lines[1], "bob ") || !strings.Contains(lines[1], "ReauthRequired") ||
		!strings.HasPrefix(lines[2], "carol ") || !strings.Contains(lines[2], "2026-12-04T19:46:40Z") {
		t.Errorf("table:\n%s", r.stdout)
	}

	r = execute(t, c, "", "status", "-A", "-o", "json")
	var all []sessionops.Summary
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil || r.err != nil {
		t.Fatalf("%v %v\n%s", r.err, err, r.stdout)
	}
	if len(all) != 3 || all[0].Namespace != testNamespace || all[0].Name != "bob" || all[2].Namespace != "other" {
		t.Errorf("summaries of all namespaces: %+v", all)
	}

	r = execute(t, c, "", "status", "-n", "empty")
	if r.err != nil || r.stdout != "" || !strings.Contains(r.stderr, "No TidalSessions found") {
		t.Errorf("empty namespace: err %v, stdout %q, stderr %q", r.err, r.stdout, r.stderr)
	}
}

// operatorOnPatch answers a refresh request the way the operator would, by applying change
// to the session right after the annotation patch.
func operatorOnPatch(t *testing.T, change func(s *sessionsv1alpha1.TidalSession, requested string)) *interceptor.Funcs {
	f := noSecretReads(t)
	f.Patch = func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		if err := c.Patch(ctx, obj, patch, opts...); err != nil {
			return err
		}
		s := &sessionsv1alpha1.TidalSession{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), s); err != nil {
			return err
		}
		requested := s.Annotations[sessionsv1alpha1.RefreshRequestAnnotation]
		if requested == "" {
			t.Error("the patch did not set the refresh request annotation")
		}
		change(s, requested)
		return c.Status().Update(ctx, s)
	}
	return f
}

func TestRefresh(t *testing.T) {
	newExpiry := time.Now().Add(4 * time.Hour).UTC().Truncate(time.Second)
	c := newFakeClient(operatorOnPatch(t, func(s *sessionsv1alpha1.TidalSession, requested string) {
		now := metav1.NewTime(time.Now().Add(2 * time.Second))
		expiry := metav1.NewTime(newExpiry)
		s.Status.LastRefreshTime, s.Status.AccessTokenExpiresAt = &now, &expiry
		s.Status.LastRefreshRequest = requested
		s.Status.RefreshCount++
	}), session(testNamespace, "alice"))

	r := execute(t, c, "", "refresh", "alice", "-n", testNamespace)
	if r.err != nil {
		t.Fatal(r.err, r.stderr)
	}
	want := "tidalsession.sessions.tidal-mcp.dev/alice refreshed: the token expires at " + newExpiry.Format(time.RFC3339) + "\n"
	if r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}

	r = execute(t, c, "", "refresh", "alice", "-n", testNamespace, "-o", "json")
	var s sessionops.Summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.err != nil || s.RefreshCount != 5 {
		t.Errorf("-o json: %v %v, refreshCount %d\n%s", r.err, err, s.RefreshCount, r.stdout)
	}
}

func TestRefreshFails(t *testing.T) {
	c := newFakeClient(operatorOnPatch(t, func(s *sessionsv1alpha1.TidalSession, _ string) {
		s.Status.Phase = sessionsv1alpha1.PhaseReauthRequired
		s.Status.Conditions[0].Status = metav1.ConditionFalse
		s.Status.Conditions[0].Reason = sessionsv1alpha1.ReasonReauthRequired
		s.Status.Conditions[0].Message = "TIDAL rejected the refresh token"
	}), session(testNamespace, "alice"))

	r := execute(t, c, "", "refresh", "alice", "-n", testNamespace)
	if r.err == nil {
		t.Fatal("refresh succeeded")
	}
	if !strings.Contains(r.stdout, "phase ReauthRequired") || !strings.Contains(r.stdout, "What to do next:") {
		t.Errorf("stdout does not describe the session:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "was not refreshed: phase ReauthRequired (ReauthRequired)") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestRefreshTimesOut(t *testing.T) {
	c := newFakeClient(nil, session(testNamespace, "alice"))
	start := time.Now()
	r := execute(t, c, "", "refresh", "alice", "-n", testNamespace, "--timeout", "1s")
	if r.err == nil || !strings.Contains(r.stderr, "shows no refresh after") {
		t.Errorf("err %v, stderr %q", r.err, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s with --timeout 1s", d)
	}
}

func TestRefreshWithoutWaiting(t *testing.T) {
	c := newFakeClient(nil, session(testNamespace, "alice"))
	before := time.Now().UTC().Truncate(time.Second)
	r := execute(t, c, "", "refresh", "alice", "-n", testNamespace, "--wait=false")
	if r.err != nil {
		t.Fatal(r.err)
	}
	s := &sessionsv1alpha1.TidalSession{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: "alice"}, s); err != nil {
		t.Fatal(err)
	}
	requested, err := time.Parse(time.RFC3339, s.Annotations[sessionsv1alpha1.RefreshRequestAnnotation])
	if err != nil || requested.Before(before) || requested.After(time.Now()) {
		t.Errorf("annotation %q, want the time of the request", s.Annotations[sessionsv1alpha1.RefreshRequestAnnotation])
	}
	if !strings.Contains(r.stdout, "refresh requested at "+requested.Format(time.RFC3339)) {
		t.Errorf("stdout: %q", r.stdout)
	}
}

func TestRefreshErrors(t *testing.T) {
	c := newFakeClient(nil, session(testNamespace, "alice"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"refresh", "bob", "-n", testNamespace}, `no TidalSession "bob" in namespace "music"`},
		{[]string{"refresh", "alice", "-n", "Not_A_Namespace"}, "namespace"},
		{[]string{"refresh", "alice", "-n", testNamespace, "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"refresh"}, "accepts 1 arg"},
	} {
		r := execute(t, c, "", tc.args...)
		if r.err == nil || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: err %v, stderr %q; want it to say %q", tc.args, r.err, r.stderr, tc.want)
		}
	}
}
