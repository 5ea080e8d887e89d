// Package healthapi serves each TidalSession's health over HTTPS to the MCP pods and probes
// that depend on it: phase, conditions, expiry and the last check against TIDAL, never a
// token. A caller authenticates with its bearer token (TokenReview) and must be allowed to
// get the TidalSession (SubjectAccessReview), the same permission `kubectl get` needs.
//
// With a token audience, the same server also serves a session's access token (TokenPath,
// token.go), only to pods bound to the session that present a projected ServiceAccount token
// of that audience.
package healthapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// SessionPath is the route of one session's health; the handler answers nothing else.
const SessionPath = "/sessions/{namespace}/{name}"

// Checker decides whether a bearer token may read a session's health; *Access is one.
type Checker interface {
	Check(ctx context.Context, token string, session types.NamespacedName) (Decision, string, error)
}

// Handler serves SessionPath.
type Handler struct {
	// Sessions reads TidalSessions; the manager's cached client, so a probe reads memory.
	Sessions client.Reader
	// Access decides who may read which session.
	Access Checker
	// Namespaces are the namespaces the operator manages; empty means all. A session
	// elsewhere is not this operator's, and is reported as not found.
	Namespaces []string
	// Log receives denials at V(1) and review failures at level 0, never a token.
	Log logr.Logger
}

// SessionHealth is the answer for one session. It is built field by field from the status,
// so a status field added later is not served until someone decides it may be.
type SessionHealth struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Phase is status.phase; empty before the operator first looked at the session.
	Phase sessionsv1alpha1.Phase `json:"phase"`
	// Ready is true when the Ready condition is True: the output Secret holds a valid token.
	Ready bool `json:"ready"`
	// Generation and ObservedGeneration differ while the operator has not yet acted on the
	// latest spec.
	Generation           int64        `json:"generation"`
	ObservedGeneration   int64        `json:"observedGeneration"`
	Conditions           []Condition  `json:"conditions"`
	AccessTokenExpiresAt *metav1.Time `json:"accessTokenExpiresAt,omitempty"`
	LastRefreshTime      *metav1.Time `json:"lastRefreshTime,omitempty"`
	NextRefreshTime      *metav1.Time `json:"nextRefreshTime,omitempty"`
	ConsecutiveFailures  int32        `json:"consecutiveFailures"`
	// Health is the last check of the session against TIDAL, absent before the first.
	Health *Health `json:"health,omitempty"`
}

// Condition is one of the session's status conditions.
type Condition struct {
	Type               string                 `json:"type"`
	Status             metav1.ConditionStatus `json:"status"`
	Reason             string                 `json:"reason"`
	Message            string                 `json:"message"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime"`
	ObservedGeneration int64                  `json:"observedGeneration,omitempty"`
}

// Health is status.health: what the last check against TIDAL found.
type Health struct {
	Result          sessionsv1alpha1.HealthResult `json:"result,omitempty"`
	LastCheckTime   *metav1.Time                  `json:"lastCheckTime,omitempty"`
	LastHealthyTime *metav1.Time                  `json:"lastHealthyTime,omitempty"`
}

// Problem is the body of every answer that is not a session's health.
type Problem struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// NewMux routes SessionPath to h and, when token is not nil, TokenPath to token; it answers
// every other path with 404, TokenPath too while the token endpoint is off.
func NewMux(h *Handler, token *TokenHandler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(SessionPath, h)
	notFound := "not found: the only path is /sessions/<namespace>/<name>"
	if token != nil {
		mux.Handle(TokenPath, token)
		notFound = "not found: the paths are /sessions/<namespace>/<name> and /sessions/<namespace>/<name>/token"
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusNotFound, notFound)
	})
	return mux
}

// ServeHTTP answers GET SessionPath. The order matters: the caller is authenticated and
// authorized before the session is looked up, so a caller who may not get a session cannot
// learn whether it exists. ?ready=1 answers 503 unless Ready is True, for probes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := sessionKey(w, r, http.MethodGet, http.MethodHead)
	if !ok {
		return
	}
	requireReady, err := readyParam(r)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}

	if !h.authorized(w, r, key) {
		return
	}

	if !managed(h.Namespaces, key.Namespace) {
		writeProblem(w, http.StatusNotFound, notFoundMessage(key))
		return
	}
	session := &sessionsv1alpha1.TidalSession{}
	if err := h.Sessions.Get(r.Context(), key, session); err != nil {
		if apierrors.IsNotFound(err) {
			writeProblem(w, http.StatusNotFound, notFoundMessage(key))
			return
		}
		h.Log.Error(err, "Failed to read session for the health endpoint", "session", klog.KRef(key.Namespace, key.Name))
		writeProblem(w, http.StatusServiceUnavailable, "the session could not be read; try again")
		return
	}

	health := View(session)
	code := http.StatusOK
	if requireReady && !health.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, health)
}

// authorized runs the access check and answers the request itself when the caller may not
// proceed.
func (h *Handler) authorized(w http.ResponseWriter, r *http.Request, key types.NamespacedName) bool {
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", challengeNoToken)
		writeProblem(w, http.StatusUnauthorized, "unauthorized: send a Kubernetes bearer token")
		return false
	}
	decision, user, err := h.Access.Check(r.Context(), token, key)
	if err != nil {
		h.Log.Error(err, "Failed to review health endpoint caller", "session", klog.KRef(key.Namespace, key.Name))
		writeProblem(w, http.StatusServiceUnavailable, "access could not be reviewed; try again")
		return false
	}
	switch decision {
	case Allowed:
		return true
	case Forbidden:
		h.Log.V(1).Info("Health endpoint caller forbidden", "user", user, "session", klog.KRef(key.Namespace, key.Name))
		writeProblem(w, http.StatusForbidden, fmt.Sprintf(
			"forbidden: %s may not get tidalsessions.%s %q in namespace %q",
			user, sessionsv1alpha1.GroupVersion.Group, key.Name, key.Namespace))
	default:
		h.Log.V(1).Info("Health endpoint caller not authenticated", "session", klog.KRef(key.Namespace, key.Name))
		w.Header().Set("WWW-Authenticate", challengeInvalid)
		writeProblem(w, http.StatusUnauthorized, "unauthorized: the token was not accepted")
	}
	return false
}

// managed says whether the operator manages namespace; no namespaces means all.
func managed(namespaces []string, namespace string) bool {
	return len(namespaces) == 0 || slices.Contains(namespaces, namespace)
}

// View is the health of s as the endpoint serves it.
func View(s *sessionsv1alpha1.TidalSession) SessionHealth {
	st := s.Status
	out := SessionHealth{
		Namespace:            s.Namespace,
		Name:                 s.Name,
		Phase:                st.Phase,
		Ready:                meta.IsStatusConditionTrue(st.Conditions, sessionsv1alpha1.ConditionReady),
		Generation:           s.Generation,
		ObservedGeneration:   st.ObservedGeneration,
		Conditions:           make([]Condition, 0, len(st.Conditions)),
		AccessTokenExpiresAt: st.AccessTokenExpiresAt,
		LastRefreshTime:      st.LastRefreshTime,
		NextRefreshTime:      st.NextRefreshTime,
		ConsecutiveFailures:  st.ConsecutiveFailures,
	}
	for _, c := range st.Conditions {
		out.Conditions = append(out.Conditions, Condition{
			Type:               c.Type,
			Status:             c.Status,
			Reason:             c.Reason,
			Message:            c.Message,
			LastTransitionTime: c.LastTransitionTime,
			ObservedGeneration: c.ObservedGeneration,
		})
	}
	if hs := st.Health; hs != nil {
		out.Health = &Health{Result: hs.Result, LastCheckTime: hs.LastCheckTime, LastHealthyTime: hs.LastHealthyTime}
	}
	return out
}

// Challenges of a 401 (RFC 6750): without a token, and with one that was not accepted.
const (
	challengeNoToken = `Bearer realm="tidal-session-operator"`
	challengeInvalid = `Bearer realm="tidal-session-operator", error="invalid_token"`
)

// bearerToken is the token of an "Authorization: Bearer <token>" header. The scheme is
// case-insensitive (RFC 7235); an empty token counts as none.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// sessionKey is the session the path names. It answers the request itself, with 405 for a
// method not in methods and 400 for a name no TidalSession can have, and then returns false.
func sessionKey(w http.ResponseWriter, r *http.Request, methods ...string) (types.NamespacedName, bool) {
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeProblem(w, http.StatusMethodNotAllowed, "method not allowed")
		return types.NamespacedName{}, false
	}
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	if msg := validateKey(key); msg != "" {
		writeProblem(w, http.StatusBadRequest, msg)
		return types.NamespacedName{}, false
	}
	return key, true
}

// validateKey rejects names no TidalSession can have before anything is asked of the API
// server, so garbage never reaches a review or the cache.
func validateKey(key types.NamespacedName) string {
	if errs := validation.IsDNS1123Label(key.Namespace); len(errs) > 0 {
		return "invalid namespace: " + strings.Join(errs, "; ")
	}
	if errs := validation.IsDNS1123Subdomain(key.Name); len(errs) > 0 {
		return "invalid name: " + strings.Join(errs, "; ")
	}
	return ""
}

// readyParam reads ?ready=: absent or false serves the health as it is; true makes a
// session that is not Ready answer 503, which is what a probe needs.
func readyParam(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("ready")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("invalid ready parameter: use ready=1 or ready=true")
	}
	return b, nil
}

func notFoundMessage(key types.NamespacedName) string {
	return fmt.Sprintf("tidalsessions.%s %q not found in namespace %q",
		sessionsv1alpha1.GroupVersion.Group, key.Name, key.Namespace)
}

func writeProblem(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Problem{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// A session's health changes with every refresh; no proxy may serve an old answer,
	// nor one meant for another caller.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
