package healthapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
)

// TokenPath is the route of one session's access token, served only when the endpoint has a
// token audience (Options.TokenAudience). See docs/token-endpoint.md.
const TokenPath = "/sessions/{namespace}/{name}/token"

// How long a caller should wait before asking again, in seconds, by what it waits for.
const (
	// retryPod: the cache lags the API server by well under a second.
	retryPod = 2
	// retryToken: the reconciler writes a missing token within seconds of a change, or the
	// session's status says that a person must act.
	retryToken = 5
	// retryReview: the API server did not answer a review or a read.
	retryReview = 2
)

// PodReviewer decides who presented a pod-bound token; *PodTokens is one.
type PodReviewer interface {
	Review(ctx context.Context, token string) (Decision, PodIdentity, error)
}

// TokenHandler serves TokenPath: a session's current access token, to a pod that proves
// with a projected, audience-bound ServiceAccount token that it is bound to the session
// (controller.JudgeTokenCaller). It never binds anyone, and every refusal is a security event.
type TokenHandler struct {
	// Cache reads Pods, TidalSessions and output Secrets: the manager's cached client, which
	// holds Pods stripped and only the Secrets the operator manages.
	Cache client.Reader
	// Live reads without the cache: the pod's ReplicaSet or Job, to fingerprint it, and
	// whether a pod the cache has not seen exists.
	Live client.Reader
	// Tokens reviews the callers' tokens for Audience.
	Tokens PodReviewer
	// Precheck turns a token away as not accepted without a review when its unverified
	// claims already show the API server would refuse it (plausibleToken): a flood of
	// garbage then costs the API server nothing.
	Precheck bool
	// Audience is the audience the callers' tokens must be issued for, named in answers.
	Audience string
	// Namespaces are the namespaces the operator manages; empty means all.
	Namespaces []string
	// Recorder emits the Warning Events of refusals on the session asked for.
	Recorder events.EventRecorder
	// Verdicts, when set, remembers each pod's verdict for a session version for
	// verdictTTL, so that a pod asking again and again is fingerprinted, and its owner read
	// from the API server, once in a while rather than on every call.
	Verdicts *cache.LRUExpireCache
	// Clock says whether a token has expired; nil means the real clock.
	Clock clock.PassiveClock
	// Log receives refusals at level 0 and tokens served at V(1), never a token.
	Log logr.Logger
}

// TokenAnswer is the body of a 200 on TokenPath, shaped like an OAuth token response.
type TokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	// ExpiresAt is the token's expiry in RFC 3339, UTC, as the output Secret's expires_at.
	ExpiresAt string `json:"expires_at"`
}

// refusal is a 401 or 403 answer and what the log and the Event say about it.
type refusal struct {
	code int
	// answer is the body's message: it never says whether the session exists, nor why a
	// pod is not bound, which only the session's owner may learn (from the Event).
	answer string
	// why is the reason for people, in the log and the Event.
	why         string
	id          PodIdentity
	fingerprint string
	// session is the session asked for, when it was read already.
	session *sessionsv1alpha1.TidalSession
	// challenge is a 401's WWW-Authenticate header.
	challenge string
}

// ServeHTTP answers GET TokenPath. The steps run in this order so that nothing about the
// session is read before the caller is known to be a pod of the session's namespace, and a
// caller from elsewhere gets the same 403 whether the session exists or not.
func (h *TokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := sessionKey(w, r, http.MethodGet)
	if !ok {
		return
	}

	id, ok := h.identify(w, r, key)
	if !ok {
		return
	}
	pod, ok := h.callerPod(w, r, key, id)
	if !ok {
		return
	}
	session, fp, ok := h.judge(w, r, key, id, pod)
	if !ok {
		return
	}
	tok, ok := h.servableToken(w, r, session)
	if !ok {
		return
	}

	h.Log.V(1).Info("Access token served", "session", klog.KObj(session), "user", id.User,
		"pod", klog.KRef(id.Namespace, id.Pod), "fingerprint", fp)
	writeJSON(w, http.StatusOK, TokenAnswer{AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		ExpiresAt: tok.ExpiresAt.UTC().Format(time.RFC3339)})
}

// identify reviews the bearer token and requires a pod-bound ServiceAccount token of the
// session's namespace, in a namespace the operator manages. Side effects: a refusal, or a
// 503 when the API server could not review the token.
func (h *TokenHandler) identify(w http.ResponseWriter, r *http.Request, key types.NamespacedName) (PodIdentity, bool) {
	token, ok := bearerToken(r)
	if !ok {
		h.refuse(w, r, key, refusal{code: http.StatusUnauthorized, challenge: challengeNoToken,
			why: "the request carried no bearer token",
			answer: fmt.Sprintf("unauthorized: send the ServiceAccount token for audience %q projected into your pod",
				h.Audience)})
		return PodIdentity{}, false
	}
	decision, id, err := Unauthenticated, PodIdentity{}, error(nil)
	if !h.Precheck || plausibleToken(token, h.Audience, h.now()) {
		decision, id, err = h.Tokens.Review(r.Context(), token)
	}
	switch {
	case errors.Is(err, ErrBusy):
		h.Log.V(1).Info("Token endpoint busy", "session", klog.KRef(key.Namespace, key.Name))
		retryLater(w, retryReview, "too many requests under review; try again")
		return PodIdentity{}, false
	case err != nil:
		h.Log.Error(err, "Failed to review token endpoint caller", "session", klog.KRef(key.Namespace, key.Name))
		retryLater(w, retryReview, "the token could not be reviewed; try again")
		return PodIdentity{}, false
	}
	switch {
	case decision == Unauthenticated:
		// Invalid, expired, revoked, or issued for another audience: the review does not say
		// which, and the answer would only help someone probing with forged tokens.
		h.refuse(w, r, key, refusal{code: http.StatusUnauthorized, challenge: challengeInvalid,
			why: "the token was not accepted (invalid, expired, revoked or for another audience)",
			answer: fmt.Sprintf("unauthorized: the token was not accepted; send a current ServiceAccount token "+
				"for audience %q projected into your pod", h.Audience)})
		return PodIdentity{}, false
	case decision != Allowed:
		h.refuse(w, r, key, refusal{code: http.StatusForbidden, id: id, why: "the token is not bound to a pod",
			answer: "forbidden: the token is not bound to a pod; " +
				"send the ServiceAccount token projected into your pod"})
		return PodIdentity{}, false
	case id.Namespace != key.Namespace:
		h.refuse(w, r, key, h.forbidden(id, key,
			"the caller's pod is in namespace "+id.Namespace+", not the session's"))
		return PodIdentity{}, false
	case !managed(h.Namespaces, key.Namespace):
		h.refuse(w, r, key, h.forbidden(id, key, "the operator does not manage the namespace"))
		return PodIdentity{}, false
	}
	return id, true
}

// callerPod reads the pod the token is bound to from the cache. It must be the same pod (UID)
// under the token's ServiceAccount. When the cache does not have it, a live read tells a
// cache that lags (503, try again) from a pod that is gone (refused): the API server keeps
// accepting a deleted pod's token for a few seconds, and the review is cached too.
func (h *TokenHandler) callerPod(w http.ResponseWriter, r *http.Request, key types.NamespacedName,
	id PodIdentity) (*corev1.Pod, bool) {
	pod := &corev1.Pod{}
	err := h.Cache.Get(r.Context(), types.NamespacedName{Namespace: id.Namespace, Name: id.Pod}, pod)
	if err != nil && !apierrors.IsNotFound(err) {
		h.Log.Error(err, "Failed to read the token endpoint caller's pod", "pod", klog.KRef(id.Namespace, id.Pod))
		retryLater(w, retryReview, "the pod could not be read; try again")
		return nil, false
	}
	if err == nil && pod.UID == id.PodUID {
		if pod.Spec.ServiceAccountName != id.ServiceAccount {
			h.refuse(w, r, key, h.forbidden(id, key, "the token's ServiceAccount is not the pod's"))
			return nil, false
		}
		return pod, true
	}

	exists, err := h.podExists(r.Context(), id)
	switch {
	case err != nil:
		h.Log.Error(err, "Failed to look up the token endpoint caller's pod", "pod", klog.KRef(id.Namespace, id.Pod))
		retryLater(w, retryReview, "the pod could not be read; try again")
	case exists:
		retryLater(w, retryPod, "the operator has not seen the pod yet; try again")
	default:
		h.refuse(w, r, key, h.forbidden(id, key, "the pod the token is bound to no longer exists"))
	}
	return nil, false
}

// podExists asks the API server, without the cache, whether the token's pod exists. It lists
// metadata by name, which the operator's RBAC (list and watch on pods) allows and which
// holds no pod spec.
func (h *TokenHandler) podExists(ctx context.Context, id PodIdentity) (bool, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := h.Live.List(ctx, list, client.InNamespace(id.Namespace),
		client.MatchingFields{"metadata.name": id.Pod}); err != nil {
		return false, err
	}
	for _, p := range list.Items {
		if p.UID == id.PodUID {
			return true, nil
		}
	}
	return false, nil
}

// judge reads the session and decides whether the pod is bound to it. Side effects: a
// refusal, or a 503 when something could not be read.
func (h *TokenHandler) judge(w http.ResponseWriter, r *http.Request, key types.NamespacedName, id PodIdentity,
	pod *corev1.Pod) (*sessionsv1alpha1.TidalSession, string, bool) {
	session := &sessionsv1alpha1.TidalSession{}
	if err := h.Cache.Get(r.Context(), key, session); err != nil {
		if apierrors.IsNotFound(err) {
			h.refuse(w, r, key, h.forbidden(id, key, "the session does not exist"))
			return nil, "", false
		}
		h.Log.Error(err, "Failed to read session for the token endpoint", "session", klog.KRef(key.Namespace, key.Name))
		retryLater(w, retryReview, "the session could not be read; try again")
		return nil, "", false
	}
	verdict, err := h.verdict(r.Context(), session, pod)
	if err != nil {
		h.Log.Error(err, "Failed to fingerprint the token endpoint caller", "pod", klog.KObj(pod))
		retryLater(w, retryReview, "the pod's workload could not be read; try again")
		return nil, "", false
	}
	if !verdict.Allowed {
		f := h.forbidden(id, key, verdict.Reason)
		f.fingerprint, f.session = verdict.Fingerprint, session
		h.refuse(w, r, key, f)
		return nil, "", false
	}
	return session, verdict.Fingerprint, true
}

// verdictTTL is how long a remembered verdict serves. A change of the pod or the session makes
// a new version and so a new verdict at once; a change of the pod's owners (a ReplicaSet
// deleted) counts after at most this long.
const verdictTTL = 10 * time.Second

// verdict judges pod for session (controller.JudgeTokenCaller), or recalls the verdict of
// the same version of the pod for the same version of the session.
func (h *TokenHandler) verdict(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	pod *corev1.Pod) (controller.TokenCallerVerdict, error) {
	// Both versions: a change of the pod (terminating, its labels) or of the session (its
	// binding, a quarantine) is judged anew at once.
	key := string(pod.UID) + "/" + pod.ResourceVersion + "/" + string(session.UID) + "/" + session.ResourceVersion
	if h.Verdicts != nil {
		if v, ok := h.Verdicts.Get(key); ok {
			return v.(controller.TokenCallerVerdict), nil
		}
	}
	v, err := controller.JudgeTokenCaller(ctx, h.Live, session, pod)
	if err == nil && h.Verdicts != nil {
		h.Verdicts.Add(key, v, verdictTTL)
	}
	return v, err
}

// servableToken reads the output Secret from the cache and returns its token when it may be
// handed out (controller.ServableToken). Otherwise it answers 503: the reconciler is about
// to write one, or the session's status says why it cannot.
func (h *TokenHandler) servableToken(w http.ResponseWriter, r *http.Request,
	session *sessionsv1alpha1.TidalSession) (controller.OutputToken, bool) {
	secret := &corev1.Secret{}
	err := h.Cache.Get(r.Context(), types.NamespacedName{Namespace: session.Namespace,
		Name: session.Spec.OutputSecret.Name}, secret)
	if err != nil && !apierrors.IsNotFound(err) {
		h.Log.Error(err, "Failed to read the output Secret for the token endpoint", "secret",
			klog.KRef(session.Namespace, session.Spec.OutputSecret.Name))
		retryLater(w, retryReview, "the session's token could not be read; try again")
		return controller.OutputToken{}, false
	}
	if err != nil {
		secret = nil
	}
	tok, ok := controller.ServableToken(secret, session, h.now())
	if !ok {
		retryLater(w, retryToken, "the session holds no valid access token yet; see its status, and try again")
	}
	return tok, ok
}

// now is the handler's clock's time.
func (h *TokenHandler) now() time.Time {
	if h.Clock == nil {
		return time.Now()
	}
	return h.Clock.Now()
}

// forbidden is the 403 of a pod-bound caller that may not have the session's token. Its
// answer is the same whatever the reason, so a caller cannot learn whether the session
// exists, is bound or is quarantined; why goes to the log and the Event.
func (h *TokenHandler) forbidden(id PodIdentity, key types.NamespacedName, why string) refusal {
	return refusal{code: http.StatusForbidden, id: id, why: why, answer: fmt.Sprintf(
		"forbidden: %s may not get the access token of tidalsessions.%s %q in namespace %q",
		id.User, sessionsv1alpha1.GroupVersion.Group, key.Name, key.Namespace)}
}

// refuse answers f and reports it as a security event: the metric, a line in the log and,
// for a caller the API server vouched for as a ServiceAccount of the session's namespace, a
// Warning Event on the session when it exists in a namespace the operator manages. Anyone
// else, token or none, could otherwise fill any session's Events from outside. None of them
// carries the caller's token; the log and Event name the caller by user, pod and
// fingerprint, as far as they are known.
func (h *TokenHandler) refuse(w http.ResponseWriter, r *http.Request, key types.NamespacedName, f refusal) {
	metrics.SecurityEvents.WithLabelValues(metrics.SecurityTokenRequestRefused).Inc()
	pod := ""
	if f.id.Pod != "" {
		pod = f.id.Namespace + "/" + f.id.Pod
	}
	h.Log.Info("Token request refused", "session", klog.KRef(key.Namespace, key.Name), "code", f.code,
		"user", f.id.User, "pod", pod, "fingerprint", f.fingerprint, "reason", f.why)

	if f.id.Namespace == key.Namespace {
		h.eventOnSession(r.Context(), key, f, pod)
	}
	if f.challenge != "" {
		w.Header().Set("WWW-Authenticate", f.challenge)
	}
	writeProblem(w, f.code, f.answer)
}

// eventOnSession emits the Warning Event of refusal f on the session key, read from the cache
// unless f holds it, when it exists in a namespace the operator manages.
func (h *TokenHandler) eventOnSession(ctx context.Context, key types.NamespacedName, f refusal, pod string) {
	session := f.session
	if session == nil {
		if !managed(h.Namespaces, key.Namespace) {
			return
		}
		session = &sessionsv1alpha1.TidalSession{}
		if err := h.Cache.Get(ctx, key, session); err != nil {
			return
		}
	}
	h.Recorder.Eventf(session, callerObject(f.id), corev1.EventTypeWarning,
		sessionsv1alpha1.ReasonTokenRequestRefused, "TokenRequest", "%s", refusalNote(f, pod))
}

// callerObject is the Event's related object: the caller's pod, or its ServiceAccount when
// the token named no pod. The Event recorder merges Events that differ only in their text into
// one series with a count, keeping the first text, so without it a second caller refused
// within minutes would not be named.
func callerObject(id PodIdentity) runtime.Object {
	if id.Pod != "" {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Pod, UID: id.PodUID}}
	}
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.ServiceAccount}}
}

// refusalNote is the Event's text: who asked, as far as the token showed, and why it was
// refused.
func refusalNote(f refusal, pod string) string {
	who := f.id.User
	switch {
	case pod != "" && f.fingerprint != "":
		who += fmt.Sprintf(" (pod %s, fingerprint %s)", pod, f.fingerprint)
	case pod != "":
		who += fmt.Sprintf(" (pod %s)", pod)
	}
	return fmt.Sprintf("Refused the access token to %s: %s", who, f.why)
}

// retryLater answers 503 with Retry-After.
func retryLater(w http.ResponseWriter, seconds int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
	writeProblem(w, http.StatusServiceUnavailable, msg)
}
