// Package sessionops holds what people and their tools do to a TidalSession without
// touching a token: ask for an immediate refresh, wait for its outcome, and describe a
// session in plain words. The MCP server (cmd/tidal-mcp) and the kubectl plugin share it.
//
// Nothing here reads a Secret: a TidalSession's status holds no token, and a summary names
// the Secrets a session uses without opening them.
package sessionops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// Kinds of failure a caller may want to tell apart, checked with errors.Is. The errors
// returned carry a complete message of their own; these only classify them.
var (
	// ErrNotFound: the TidalSession does not exist (or was deleted while waiting).
	ErrNotFound = errors.New("TidalSession not found")
	// ErrForbidden: the caller's identity may not read or patch the TidalSession.
	ErrForbidden = errors.New("access to the TidalSession forbidden")
	// ErrInvalidName: a namespace or session name is not a valid Kubernetes name.
	ErrInvalidName = errors.New("invalid name")
	// ErrTimedOut: the wait ended before the status showed the refresh or a failure.
	ErrTimedOut = errors.New("timed out waiting for the refresh")
)

// maxSessionName is the longest TidalSession name admission accepts: the output Secret
// carries the name as a label value.
const maxSessionName = 63

// opError is an error with a message for people, a kind for errors.Is, and the API
// server's error underneath for apierrors' helpers.
type opError struct {
	kind  error
	msg   string
	cause error
}

func (e *opError) Error() string        { return e.msg }
func (e *opError) Is(target error) bool { return target == e.kind }
func (e *opError) Unwrap() error        { return e.cause }

// sessionRef is how messages name a session.
func sessionRef(key types.NamespacedName) string {
	return fmt.Sprintf("TidalSession %q in namespace %q", key.Name, key.Namespace)
}

// apiError turns an API server error about the session key into one a person can act on.
// verb is what was attempted ("read", "patch"), for the forbidden case.
func apiError(err error, key types.NamespacedName, verb string) error {
	switch {
	case apierrors.IsNotFound(err):
		return &opError{kind: ErrNotFound, cause: err,
			msg: fmt.Sprintf("no %s: check the name and namespace", sessionRef(key))}
	case apierrors.IsForbidden(err):
		// The API server's message names the identity and the missing verb, which is what
		// whoever fixes the Role needs.
		return &opError{kind: ErrForbidden, cause: err,
			msg: fmt.Sprintf("not allowed to %s %s: %v", verb, sessionRef(key), err)}
	}
	return fmt.Errorf("failed to %s %s: %w", verb, sessionRef(key), err)
}

// ValidateName checks that ns is a valid namespace name and name a valid TidalSession
// name, so that a malformed argument gets a clear answer instead of an API server error.
func ValidateName(ns, name string) error {
	var problems []string
	switch {
	case ns == "":
		problems = append(problems, "the namespace is empty")
	default:
		for _, p := range validation.IsDNS1123Label(ns) {
			problems = append(problems, fmt.Sprintf("namespace %s: %s", quoteShort(ns), p))
		}
	}
	switch {
	case name == "":
		problems = append(problems, "the session name is empty")
	case len(name) > maxSessionName:
		problems = append(problems, fmt.Sprintf("session name %s: must be no more than %d characters",
			quoteShort(name), maxSessionName))
	default:
		for _, p := range validation.IsDNS1123Subdomain(name) {
			problems = append(problems, fmt.Sprintf("session name %s: %s", quoteShort(name), p))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &opError{kind: ErrInvalidName, msg: strings.Join(problems, "; ")}
}

// quoteShort quotes v for a message, cut to a length a person reads: a malformed name
// may be of any length.
func quoteShort(v string) string {
	const max = 80
	if len(v) <= max {
		return strconv.Quote(v)
	}
	return strconv.Quote(v[:max]) + "..."
}

// RequestRefresh asks the operator for an immediate refresh of the session key by setting
// its refresh-request annotation to now, in RFC 3339 (UTC, whole seconds). It returns the
// value written, which WaitForRefresh takes.
//
// Side effects: one merge patch of the TidalSession that sets only that annotation, so
// concurrent edits of anything else are neither needed nor overwritten. A request while
// another is pending replaces it; the operator satisfies both with one refresh.
func RequestRefresh(ctx context.Context, c client.Client, key types.NamespacedName, now time.Time) (string, error) {
	if err := ValidateName(key.Namespace, key.Name); err != nil {
		return "", err
	}
	return annotateNow(ctx, c, key, sessionsv1alpha1.RefreshRequestAnnotation, now)
}

// annotateNow sets the request annotation of the session key to now, in RFC 3339 (UTC,
// whole seconds), with one merge patch that touches nothing else, and returns the value.
func annotateNow(ctx context.Context, c client.Client, key types.NamespacedName, annotation string, now time.Time) (string, error) {
	value := now.UTC().Truncate(time.Second).Format(time.RFC3339)
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{annotation: value}},
	})
	if err != nil {
		return "", fmt.Errorf("failed to build the request patch: %w", err)
	}
	session := &sessionsv1alpha1.TidalSession{}
	session.Namespace, session.Name = key.Namespace, key.Name
	if err := c.Patch(ctx, session, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return "", apiError(err, key, "patch")
	}
	return value, nil
}

// Status reads the session key and summarizes it. Its errors say whether the name is
// malformed, the session missing or the caller not allowed to read it.
func Status(ctx context.Context, c client.Client, key types.NamespacedName) (Summary, error) {
	if err := ValidateName(key.Namespace, key.Name); err != nil {
		return Summary{}, err
	}
	s := &sessionsv1alpha1.TidalSession{}
	if err := c.Get(ctx, key, s); err != nil {
		return Summary{}, apiError(err, key, "read")
	}
	return Summarize(s), nil
}
