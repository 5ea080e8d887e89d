package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
	"github.com/tidal-mcp/tidal-session-operator/test/support/sink"
)

// Canary credentials in the credentials Secret beside the sessions: no tool result or log
// line may contain them.
const (
	canaryRefresh = "CANARY-RT-c0ffee11"
	canarySecret  = "CANARY-CS-5eed5eed"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func newSession(ns, name string, phase sessionsv1alpha1.Phase, reason string) *sessionsv1alpha1.TidalSession {
	s := &sessionsv1alpha1.TidalSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sessionsv1alpha1.TidalSessionSpec{
			CredentialsSecretRef: sessionsv1alpha1.CredentialsSecretReference{Name: name + "-creds"},
			OutputSecret:         sessionsv1alpha1.OutputSecretSpec{Name: name + "-token"},
		},
	}
	s.Status.Phase = phase
	s.Status.LastRefreshTime = &metav1.Time{Time: t0.Add(-10 * time.Minute)}
	s.Status.AccessTokenExpiresAt = &metav1.Time{Time: t0.Add(50 * time.Minute)}
	ready := metav1.ConditionTrue
	if phase != sessionsv1alpha1.PhaseActive {
		ready = metav1.ConditionFalse
	}
	s.Status.Conditions = []metav1.Condition{{Type: sessionsv1alpha1.ConditionReady, Status: ready, Reason: reason,
		Message: "status message for " + reason, LastTransitionTime: metav1.Time{Time: t0.Add(-time.Hour)}}}
	return s
}

// operatorFake answers a refresh request the way the operator does, in the status of a
// session named "alice": refreshed a second after the request, good for an hour.
func operatorFake(t *testing.T) interceptor.Funcs {
	return interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if err := c.Patch(ctx, obj, p, opts...); err != nil {
				return err
			}
			s := &sessionsv1alpha1.TidalSession{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), s); err != nil || s.Name != "alice" {
				return err
			}
			req, err := time.Parse(time.RFC3339, s.Annotations[sessionsv1alpha1.RefreshRequestAnnotation])
			if err != nil {
				t.Errorf("the request annotation is not RFC 3339: %v", err)
				return nil
			}
			s.Status.LastRefreshRequest = s.Annotations[sessionsv1alpha1.RefreshRequestAnnotation]
			s.Status.LastRefreshTime = &metav1.Time{Time: req.Add(time.Second)}
			s.Status.AccessTokenExpiresAt = &metav1.Time{Time: req.Add(time.Second + time.Hour)}
			s.Status.RefreshCount++
			return c.Status().Update(ctx, s)
		},
	}
}

type fixture struct {
	session *mcp.ClientSession
	logs    *sink.Buffer
	// patches counts the patches the API server accepted.
	patches *int
}

// start serves the tools over in-memory transports from a fake API server holding objs, and
// connects the SDK's client to them.
func start(t *testing.T, tl *tools, funcs interceptor.Funcs, objs ...client.Object) fixture {
	t.Helper()
	sessionops.PollInterval = 10 * time.Millisecond
	scheme := runtime.NewScheme()
	if err := sessionsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	patches := 0
	countPatches := funcs.Patch
	funcs.Patch = func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
		var err error
		if countPatches != nil {
			err = countPatches(ctx, c, obj, p, opts...)
		} else {
			err = c.Patch(ctx, obj, p, opts...)
		}
		if err == nil {
			patches++
		}
		return err
	}
	tl.client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&sessionsv1alpha1.TidalSession{}).WithInterceptorFuncs(funcs).Build()
	logs := &sink.Buffer{}
	tl.log = slog.New(slog.NewTextHandler(logs, nil))
	tl.now = func() time.Time { return t0 }

	ctx := context.Background()
	serverT, clientT := mcp.NewInMemoryTransports()
	ss, err := tl.newServer("test").Connect(ctx, serverT, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "v0"}, nil).Connect(ctx, clientT, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return fixture{session: cs, logs: logs, patches: &patches}
}

func credentials(ns, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data: map[string][]byte{"refresh_token": []byte(canaryRefresh), "client_secret": []byte(canarySecret),
			"client_id": []byte("client-1")}}
}

func call(t *testing.T, f fixture, tool string, args map[string]any) (*mcp.CallToolResult, string) {
	t.Helper()
	res, err := f.session.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v", tool, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	whole, _ := json.Marshal(res)
	for _, canary := range []string{canaryRefresh, canarySecret} {
		if strings.Contains(string(whole), canary) || strings.Contains(f.logs.String(), canary) {
			t.Fatalf("%s: a credential reached the tool result or the log", tool)
		}
	}
	return res, text.String()
}

func defaultTools() *tools {
	return &tools{namespace: "music", wait: 2 * time.Second, maxWait: 5 * time.Second}
}

func TestListsOnlyTheImplementedTools(t *testing.T) {
	f := start(t, defaultTools(), interceptor.Funcs{})
	res, err := f.session.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		schema, _ := json.Marshal(tool.InputSchema)
		if !strings.Contains(string(schema), `"required":["name"]`) {
			t.Errorf("%s: input schema %s does not require a name", tool.Name, schema)
		}
	}
	if strings.Join(names, ",") != "tidal_login,tidal_refresh_session,tidal_session_status" {
		t.Errorf("tools = %v", names)
	}
}

func TestStatus(t *testing.T) {
	f := start(t, defaultTools(), interceptor.Funcs{},
		newSession("music", "alice", sessionsv1alpha1.PhaseActive, sessionsv1alpha1.ReasonTokenValid),
		credentials("music", "alice-creds"))
	res, text := call(t, f, toolStatus, map[string]any{"name": "alice"})
	if res.IsError {
		t.Fatalf("status failed: %s", text)
	}
	for _, want := range []string{"TidalSession music/alice: phase Active, ready true (TokenValid)",
		"expires at 2026-12-04T10:50:00Z", "What to do next: Nothing"} {
		if !strings.Contains(text, want) {
			t.Errorf("text %q does not contain %q", text, want)
		}
	}
	var sum sessionops.Summary
	structured, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(structured, &sum); err != nil || sum.Phase != "Active" || sum.CredentialsSecret != "alice-creds" {
		t.Errorf("structured content %s (%v)", structured, err)
	}
	if *f.patches != 0 {
		t.Error("the status tool patched the session")
	}
	if !strings.Contains(f.logs.String(), "tool=tidal_session_status namespace=music name=alice outcome=answered") {
		t.Errorf("log = %q", f.logs.String())
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name    string
		tools   *tools
		funcs   func(*testing.T) interceptor.Funcs
		session *sessionsv1alpha1.TidalSession
		args    map[string]any
		isError bool
		outcome string
		text    []string
	}{
		{name: "refreshed", tools: defaultTools(), funcs: operatorFake,
			session: newSession("music", "alice", sessionsv1alpha1.PhaseActive, sessionsv1alpha1.ReasonTokenValid),
			args:    map[string]any{"name": "alice"}, outcome: outcomeRefreshed,
			text: []string{"Refreshed TidalSession music/alice", "expires at 2026-12-04T11:00:01Z"}},
		{name: "reauth required", tools: defaultTools(),
			session: newSession("music", "bob", sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired),
			args:    map[string]any{"name": "bob", "namespace": "music"}, isError: true, outcome: outcomeFailed,
			text: []string{"phase ReauthRequired (ReauthRequired)", "status message for ReauthRequired",
				"What to do next: Log in to TIDAL again", `"bob-creds"`}},
		{name: "operator does not answer in time", tools: &tools{namespace: "music", wait: 300 * time.Millisecond,
			maxWait: time.Second},
			session: newSession("music", "carol", sessionsv1alpha1.PhaseActive, sessionsv1alpha1.ReasonTokenValid),
			args:    map[string]any{"name": "carol"}, outcome: outcomePending,
			text: []string{"Asked for a refresh of TidalSession music/carol at 2026-12-04T10:00:00Z",
				"within 300ms", "30 seconds apart"}},
		{name: "waitSeconds is capped by the maximum", tools: &tools{namespace: "music", wait: 100 * time.Millisecond,
			maxWait: 300 * time.Millisecond},
			session: newSession("music", "carol", sessionsv1alpha1.PhaseActive, sessionsv1alpha1.ReasonTokenValid),
			args:    map[string]any{"name": "carol", "waitSeconds": 3600}, outcome: outcomePending,
			text: []string{"within 300ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			funcs := interceptor.Funcs{}
			if tt.funcs != nil {
				funcs = tt.funcs(t)
			}
			f := start(t, tt.tools, funcs, tt.session, credentials(tt.session.Namespace, tt.session.Name+"-creds"))
			res, text := call(t, f, toolRefresh, tt.args)
			if res.IsError != tt.isError {
				t.Errorf("IsError = %v, want %v: %s", res.IsError, tt.isError, text)
			}
			for _, want := range tt.text {
				if !strings.Contains(text, want) {
					t.Errorf("text %q does not contain %q", text, want)
				}
			}
			var out refreshResult
			structured, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(structured, &out); err != nil || out.Outcome != tt.outcome ||
				out.RequestedAt != "2026-12-04T10:00:00Z" || out.Session.Name != tt.session.Name {
				t.Errorf("structured content %s (%v), want outcome %s", structured, err, tt.outcome)
			}
			if *f.patches != 1 {
				t.Errorf("%d patches, want the one request", *f.patches)
			}
		})
	}
}

func TestBadArguments(t *testing.T) {
	only := defaultTools()
	only.onlyNamespace = true
	tests := []struct {
		name  string
		tools *tools
		tool  string
		args  map[string]any
		want  string
	}{
		{name: "unknown session", tools: defaultTools(), tool: toolStatus, args: map[string]any{"name": "nobody"},
			want: `no TidalSession "nobody" in namespace "music"`},
		{name: "unknown session, refresh", tools: defaultTools(), tool: toolRefresh, args: map[string]any{"name": "nobody"},
			want: `no TidalSession "nobody" in namespace "music"`},
		{name: "unknown namespace", tools: defaultTools(), tool: toolStatus,
			args: map[string]any{"name": "alice", "namespace": "radio"}, want: `no TidalSession "alice" in namespace "radio"`},
		{name: "another namespace when restricted", tools: only, tool: toolRefresh,
			args: map[string]any{"name": "alice", "namespace": "video"}, want: `serves only TidalSessions in namespace "music"`},
		{name: "another namespace when restricted, status", tools: only, tool: toolStatus,
			args: map[string]any{"name": "alice", "namespace": "video"}, want: `not "video"`},
		{name: "malformed name", tools: defaultTools(), tool: toolRefresh,
			args: map[string]any{"name": "Alice/../x"}, want: `session name "Alice/../x"`},
		{name: "malformed namespace", tools: defaultTools(), tool: toolStatus,
			args: map[string]any{"name": "alice", "namespace": "Music!"}, want: `namespace "Music!"`},
		{name: "name too long", tools: defaultTools(), tool: toolStatus,
			args: map[string]any{"name": strings.Repeat("x", 300)}, want: "no more than 63 characters"},
		{name: "no name", tools: defaultTools(), tool: toolRefresh, args: map[string]any{}, want: "name"},
		{name: "name of the wrong type", tools: defaultTools(), tool: toolStatus, args: map[string]any{"name": 7},
			want: "name"},
		{name: "negative wait", tools: defaultTools(), tool: toolRefresh,
			args: map[string]any{"name": "alice", "waitSeconds": -1}, want: "waitSeconds must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, tt.tools, interceptor.Funcs{},
				newSession("music", "alice", sessionsv1alpha1.PhaseActive, sessionsv1alpha1.ReasonTokenValid),
				newSession("video", "alice", sessionsv1alpha1.PhaseActive, sessionsv1alpha1.ReasonTokenValid),
				credentials("music", "alice-creds"))
			res, text := call(t, f, tt.tool, tt.args)
			if !res.IsError || !strings.Contains(text, tt.want) {
				t.Errorf("IsError %v, text %q; want a tool error containing %q", res.IsError, text, tt.want)
			}
			if *f.patches != 0 {
				t.Errorf("a rejected call patched a session")
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "127.3.4.5": true,
		"": false, "0.0.0.0": false, "10.0.0.1": false, "example.test": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
