package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
)

// Tool names, as MCP clients call them.
const (
	toolRefresh = "tidal_refresh_session"
	toolStatus  = "tidal_session_status"
	toolLogin   = "tidal_login"
)

// sessionArgs name a TidalSession.
type sessionArgs struct {
	Namespace string `json:"namespace,omitempty" jsonschema:"Namespace of the TidalSession; the server's own namespace when omitted."`
	Name      string `json:"name" jsonschema:"Name of the TidalSession, e.g. alice."`
}

// refreshArgs name a TidalSession and, optionally, how long to wait for its refresh.
type refreshArgs struct {
	Namespace   string `json:"namespace,omitempty" jsonschema:"Namespace of the TidalSession; the server's own namespace when omitted."`
	Name        string `json:"name" jsonschema:"Name of the TidalSession, e.g. alice."`
	WaitSeconds int    `json:"waitSeconds,omitempty" jsonschema:"How long to wait for the refresh, in seconds; the server's default when omitted, capped by its maximum."`
}

// Outcomes of tidal_refresh_session.
const (
	outcomeRefreshed = "refreshed"
	outcomeFailed    = "failed"
	outcomePending   = "pending"
)

// refreshResult is the structured answer of tidal_refresh_session.
type refreshResult struct {
	// Outcome is refreshed, failed, or pending (the wait ended first; the request stands).
	Outcome string `json:"outcome"`
	// RequestedAt is the refresh request written to the session's annotation.
	RequestedAt string `json:"requestedAt"`
	// Session is the session as its status showed last.
	Session sessionops.Summary `json:"session"`
}

// tools serves the MCP tools from one Kubernetes client. The client needs only get and
// patch on tidalsessions: the tools never read a Secret.
type tools struct {
	client client.Client
	log    *slog.Logger
	now    func() time.Time
	// namespace is the default namespace; with onlyNamespace, the only one served.
	namespace     string
	onlyNamespace bool
	// wait is how long tidal_refresh_session waits by default; maxWait caps waitSeconds.
	wait, maxWait time.Duration
}

// newServer returns an MCP server with the session tools.
func (t *tools) newServer(version string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "tidal-mcp", Title: "TIDAL sessions", Version: version},
		&mcp.ServerOptions{Instructions: "Tools to inspect and refresh the TIDAL sessions that the " +
			"tidal-session-operator keeps in Kubernetes. They never return a token."})
	mcp.AddTool(s, &mcp.Tool{
		Name:  toolStatus,
		Title: "TIDAL session status",
		Description: "Describe a TIDAL session in plain words: phase, readiness, conditions, token expiry, " +
			"last and next refresh, and what to do next. Returns no token.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, t.status)
	mcp.AddTool(s, &mcp.Tool{
		Name:  toolRefresh,
		Title: "Refresh a TIDAL session now",
		Description: "Ask the operator to refresh a TIDAL session's access token now and wait a bounded " +
			"time for the outcome: the new expiry, or why it failed and what to do. Refreshes stay at " +
			"least 30 seconds apart, so a request right after one waits. Returns no token.",
		Annotations: &mcp.ToolAnnotations{IdempotentHint: true, DestructiveHint: new(false)},
	}, t.refresh)
	mcp.AddTool(s, &mcp.Tool{
		Name:  toolLogin,
		Title: "Log a TIDAL session in again",
		Description: "When a TIDAL session needs a new login, start the operator's device login (or report " +
			"the one running) and return the link and the code for the user to enter there. The user must " +
			"open the link and approve; the session then recovers on its own. Returns no token.",
		Annotations: &mcp.ToolAnnotations{IdempotentHint: true, DestructiveHint: new(false)},
	}, t.login)
	return s
}

// loginWait bounds how long tidal_login waits for the operator to show a link and a code.
const loginWait = 15 * time.Second

// login answers tidal_login with the device login's link and code. Side effect: the
// session's login-request annotation is set when the session needs a login and none runs.
func (t *tools) login(ctx context.Context, _ *mcp.CallToolRequest, in sessionArgs) (*mcp.CallToolResult, sessionops.Login, error) {
	key, err := t.key(in.Namespace, in.Name)
	if err != nil {
		t.logCall(toolLogin, key, "rejected", err)
		return nil, sessionops.Login{}, err
	}
	l, err := sessionops.StartLogin(ctx, t.client, key, t.now())
	if errors.Is(err, sessionops.ErrLoginNotAllowed) {
		t.logCall(toolLogin, key, outcomeFailed, err)
		return textResult(true, err.Error()), l, nil
	}
	if err != nil {
		t.logCall(toolLogin, key, "failed", err)
		return nil, sessionops.Login{}, err
	}
	if !l.Done() && !l.Pending() {
		l, err = sessionops.WaitForLogin(ctx, t.client, key, l.Requested, min(loginWait, t.maxWait),
			func(l sessionops.Login) bool { return l.Done() || l.Pending() || l.Ended() })
		if err != nil && !errors.Is(err, sessionops.ErrTimedOut) {
			t.logCall(toolLogin, key, "failed", err)
			return nil, sessionops.Login{}, err
		}
	}
	t.logCall(toolLogin, key, "answered", nil)
	return textResult(l.Ended(), l.Text()), l, nil
}

// key resolves and checks a tool's session arguments. Its errors become tool errors that
// say what was wrong, before anything reaches the API server; the key is returned with
// them for the log.
func (t *tools) key(namespace, name string) (types.NamespacedName, error) {
	if namespace == "" {
		namespace = t.namespace
	}
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if err := sessionops.ValidateName(namespace, name); err != nil {
		return key, err
	}
	if t.onlyNamespace && namespace != t.namespace {
		return key, fmt.Errorf("this server serves only TidalSessions in namespace %q, "+
			"not %q: omit the namespace or use %q", t.namespace, namespace, t.namespace)
	}
	return key, nil
}

// status answers tidal_session_status with the session's summary.
func (t *tools) status(ctx context.Context, _ *mcp.CallToolRequest, in sessionArgs) (*mcp.CallToolResult, sessionops.Summary, error) {
	key, err := t.key(in.Namespace, in.Name)
	if err != nil {
		t.logCall(toolStatus, key, "rejected", err)
		return nil, sessionops.Summary{}, err
	}
	sum, err := sessionops.Status(ctx, t.client, key)
	if err != nil {
		t.logCall(toolStatus, key, "failed", err)
		return nil, sessionops.Summary{}, err
	}
	t.logCall(toolStatus, key, "answered", nil)
	return textResult(false, sum.Text()), sum, nil
}

// refresh answers tidal_refresh_session: it writes a refresh request and waits for the
// operator's answer in the session's status. Side effect: the session's refresh-request
// annotation is set.
func (t *tools) refresh(ctx context.Context, _ *mcp.CallToolRequest, in refreshArgs) (*mcp.CallToolResult, refreshResult, error) {
	key, err := t.key(in.Namespace, in.Name)
	if err == nil && in.WaitSeconds < 0 {
		err = fmt.Errorf("waitSeconds must not be negative, got %d", in.WaitSeconds)
	}
	if err != nil {
		t.logCall(toolRefresh, key, "rejected", err)
		return nil, refreshResult{}, err
	}
	wait := t.wait
	if in.WaitSeconds > 0 {
		wait = min(time.Duration(in.WaitSeconds)*time.Second, t.maxWait)
	}

	requested, err := sessionops.RequestRefresh(ctx, t.client, key, t.now())
	if err != nil {
		t.logCall(toolRefresh, key, "failed", err)
		return nil, refreshResult{}, err
	}
	sum, err := sessionops.WaitForRefresh(ctx, t.client, key, requested, wait)
	out := refreshResult{RequestedAt: requested, Session: sum}
	var failed *sessionops.RefreshFailedError
	switch {
	case err == nil:
		out.Outcome = outcomeRefreshed
		t.logCall(toolRefresh, key, outcomeRefreshed, nil)
		return textResult(false, fmt.Sprintf("Refreshed TidalSession %s: phase %s, the new access token "+
			"expires at %s.", key, sum.Phase, sum.ExpiresAt)), out, nil
	case errors.As(err, &failed):
		out.Outcome = outcomeFailed
		t.logCall(toolRefresh, key, outcomeFailed, err)
		return textResult(true, fmt.Sprintf("%v\nWhat to do next: %s", err, sum.NextStep)), out, nil
	case errors.Is(err, sessionops.ErrTimedOut):
		out.Outcome = outcomePending
		t.logCall(toolRefresh, key, outcomePending, nil)
		return textResult(false, fmt.Sprintf("Asked for a refresh of TidalSession %s at %s; it has not "+
			"happened yet: %v.\n%s", key, requested, err, sum.Text())), out, nil
	}
	t.logCall(toolRefresh, key, "failed", err)
	return nil, refreshResult{}, err
}

// textResult is a tool result whose content is text for the model; the SDK adds the
// structured output beside it.
func textResult(isError bool, text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: isError, Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

// logCall records one tool call at the level its outcome deserves. Errors name sessions and
// the API server's reasons, never a token: the tools read none.
func (t *tools) logCall(tool string, key types.NamespacedName, outcome string, err error) {
	attrs := []any{"tool", tool, "namespace", key.Namespace, "name", key.Name, "outcome", outcome}
	if err != nil {
		t.log.Warn("Tool call did not succeed", append(attrs, "error", err.Error())...)
		return
	}
	t.log.Info("Tool call", attrs...)
}
