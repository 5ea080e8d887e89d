package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/fingerprint"
)

// This file is what the token endpoint (internal/healthapi) asks of binding: may this pod,
// which proved who it is with a pod-bound ServiceAccount token, have the session's access
// token, and what does the output Secret hold to give it. The endpoint only reads: it binds
// nobody and writes no status; the reconciler stays the only writer of status.binding.

// TokenCallerVerdict is what JudgeTokenCaller concluded about a pod.
type TokenCallerVerdict struct {
	// Allowed is true when the pod may have the session's access token.
	Allowed bool
	// Fingerprint is the pod's fingerprint; empty when it was not resolved (a pod of another
	// namespace, or a terminating one whose ReplicaSet or Job is gone).
	Fingerprint string
	// Reason says, for people, why the pod was refused; empty when it is allowed. It names
	// the pod's workload and ServiceAccount, never anything of a Secret.
	Reason string
}

// JudgeTokenCaller decides whether pod may have session's access token (see
// decideTokenCaller for the rule). owners reads the pod's owners without the cache, to
// resolve the pod's fingerprint, as the reconciler does. An error means the owners could not
// be read; the caller should answer "try again", not refuse. No side effects.
func JudgeTokenCaller(ctx context.Context, owners client.Reader, session *sessionsv1alpha1.TidalSession,
	pod *corev1.Pod) (TokenCallerVerdict, error) {
	in := tokenCallerInput{sessionNamespace: session.Namespace, policy: session.Spec.Binding,
		status: session.Status.Binding, pod: pod}
	if in.policy != nil {
		allowed, err := allowedMatcher(in.policy.Allowed)
		if err != nil {
			// The reconciler reports the invalid selector (InvalidSpec); until it is fixed,
			// the selector admits nobody.
			allowed = func(consumer) bool { return false }
		}
		in.allowed = allowed
	}
	if pod.Namespace == session.Namespace {
		// A terminating pod of a gone owner has no fingerprint, and is refused as terminating.
		c, err := consumerOf(pod, ownerLookup(ctx, owners, pod.Namespace))
		switch {
		case errors.Is(err, fingerprint.ErrOwnerGone):
		case err != nil:
			return TokenCallerVerdict{}, err
		default:
			in.caller = &c
		}
	}
	return decideTokenCaller(in), nil
}

// tokenCallerInput is everything decideTokenCaller decides from.
type tokenCallerInput struct {
	sessionNamespace string
	policy           *sessionsv1alpha1.BindingPolicy
	status           *sessionsv1alpha1.BindingStatus
	// allowed matches consumers that spec.binding.allowed admits; nil without it.
	allowed func(consumer) bool
	pod     *corev1.Pod
	// caller is the pod as a fingerprinted consumer; nil when it was not resolved.
	caller *consumer
}

// decideTokenCaller is the token endpoint's rule. A pod may have the access token only when,
// in order:
//
//  1. the session has spec.binding: without it nobody is bound, and handing the token to
//     whoever asks would be weaker than the Secret's own RBAC;
//  2. the session is not quarantined (status.binding.quarantinedAt unset): the reconciler
//     withholds the token from the Secret then, and the endpoint must not hand it out instead;
//  3. the pod is in the session's namespace, as every consumer of a Secret is;
//  4. the pod is neither terminating nor finished: such a pod has no business with a fresh token;
//  5. its fingerprint is in status.binding.bound, or spec.binding.allowed admits the pod.
//
// Trust on first use is not applied: a pod that only asks for the token, without mounting the
// output Secret, is never bound by asking. The binding step binds consumers; this rule only
// reads what it recorded.
func decideTokenCaller(in tokenCallerInput) TokenCallerVerdict {
	v := TokenCallerVerdict{}
	if in.caller != nil {
		v.Fingerprint = in.caller.fp
	}
	refuse := func(format string, args ...any) TokenCallerVerdict {
		v.Reason = fmt.Sprintf(format, args...)
		return v
	}
	switch {
	case in.policy == nil:
		return refuse("the session has no spec.binding, so no pod is bound to it")
	case in.status != nil && in.status.QuarantinedAt != nil:
		return refuse("the session is quarantined since %s until a person approves its consumers",
			in.status.QuarantinedAt.UTC().Format(time.RFC3339))
	case in.pod.Namespace != in.sessionNamespace:
		return refuse("pod %s/%s is not in the session's namespace %s", in.pod.Namespace, in.pod.Name,
			in.sessionNamespace)
	case in.pod.DeletionTimestamp != nil:
		return refuse("pod %s is terminating", in.pod.Name)
	case in.pod.Status.Phase == corev1.PodSucceeded || in.pod.Status.Phase == corev1.PodFailed:
		return refuse("pod %s has finished (phase %s)", in.pod.Name, in.pod.Status.Phase)
	case in.caller == nil:
		return refuse("pod %s has no fingerprint", in.pod.Name)
	}

	c := *in.caller
	var bound []sessionsv1alpha1.BoundConsumer
	if in.status != nil {
		bound = in.status.Bound
	}
	if boundIndex(bound, c.fp) >= 0 || (in.allowed != nil && in.allowed(c)) {
		v.Allowed = true
		return v
	}
	return refuse("pod %s (%s, ServiceAccount %s, fingerprint %s) is not bound to the session and "+
		"spec.binding.allowed does not admit it", c.pod, c.id.Workload, c.id.ServiceAccount, c.fp)
}

// OutputToken is the access token an output Secret holds.
type OutputToken struct {
	AccessToken string
	TokenType   string
	ExpiresAt   time.Time
}

// ServableToken returns the access token in secret when it may be handed out at now: the
// operator manages secret for session, the token is there, token_status says valid (not
// withheld by a quarantine, nor marked expired during an outage), and its expiry is readable
// and after now. ok is false otherwise; the reconciler is then about to write a token, or a
// person must act, and the session's status says which. No side effects.
func ServableToken(secret *corev1.Secret, session *sessionsv1alpha1.TidalSession, now time.Time) (OutputToken, bool) {
	if secret == nil || !isManaged(secret, session) ||
		string(secret.Data[sessionsv1alpha1.KeyTokenStatus]) != sessionsv1alpha1.TokenStatusValid {
		return OutputToken{}, false
	}
	tok := OutputToken{AccessToken: string(secret.Data[sessionsv1alpha1.KeyAccessToken]),
		TokenType: string(secret.Data[sessionsv1alpha1.KeyTokenType])}
	expires, err := time.Parse(time.RFC3339, string(secret.Data[sessionsv1alpha1.KeyExpiresAt]))
	if tok.AccessToken == "" || err != nil || !expires.After(now) {
		return OutputToken{}, false
	}
	tok.ExpiresAt = expires
	if tok.TokenType == "" {
		tok.TokenType = "Bearer"
	}
	return tok, true
}
