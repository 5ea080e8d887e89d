package sessionops

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// Summary is what a person needs to know about a TidalSession, from its status alone.
// Times are RFC 3339 in UTC, empty when unknown. It never holds a token: the status has
// none, and no Secret is read.
type Summary struct {
	// Namespace and Name identify the session.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Phase is the operator's one-word summary, or "Unknown" before it looked at the session.
	Phase string `json:"phase"`
	// Ready is the Ready condition's status: "True", "False" or "Unknown".
	Ready string `json:"ready"`
	// Reason and Message are the Ready condition's.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Conditions are all the session's conditions, each with a plain explanation.
	Conditions []Condition `json:"conditions,omitempty"`
	// ExpiresAt is when the access token in the output Secret expires.
	ExpiresAt string `json:"expiresAt,omitempty"`
	// LastRefreshTime is when the last successful refresh happened.
	LastRefreshTime string `json:"lastRefreshTime,omitempty"`
	// NextRefreshTime is when the operator refreshes next (or retries, while failing).
	NextRefreshTime string `json:"nextRefreshTime,omitempty"`
	// LastRefreshRequest is the refresh request the operator handled last.
	LastRefreshRequest string `json:"lastRefreshRequest,omitempty"`
	// RefreshCount counts successful refreshes; ConsecutiveFailures failed ones since.
	RefreshCount        int64 `json:"refreshCount"`
	ConsecutiveFailures int32 `json:"consecutiveFailures"`
	// Health is the last check against TIDAL: Healthy, Unhealthy or Unknown; empty before the
	// first. LastCheckTime and LastHealthyTime are when it ran and last found the session
	// healthy.
	Health          string `json:"health,omitempty"`
	LastCheckTime   string `json:"lastCheckTime,omitempty"`
	LastHealthyTime string `json:"lastHealthyTime,omitempty"`
	// Binding is spec.binding's mode, empty without a binding; BoundConsumers counts the
	// workloads bound to the session and Violations the consumers that did not match.
	Binding        string `json:"binding,omitempty"`
	BoundConsumers int    `json:"boundConsumers,omitempty"`
	Violations     int64  `json:"violations,omitempty"`
	// UserID and CountryCode are the TIDAL account's, as TIDAL reported them.
	UserID      string `json:"userID,omitempty"`
	CountryCode string `json:"countryCode,omitempty"`
	// OutputSecret and CredentialsSecret name the session's Secrets; their contents are
	// never read.
	OutputSecret      string `json:"outputSecret,omitempty"`
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// Suspended is spec.suspend.
	Suspended bool `json:"suspended"`
	// StatusCurrent is false while the status describes an older spec than the current one.
	StatusCurrent bool `json:"statusCurrent"`
	// NextStep says in one sentence what a person should do now.
	NextStep string `json:"nextStep"`
}

// Condition is one status condition with a plain-words explanation.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Since is when the condition last changed status.
	Since string `json:"since,omitempty"`
	// Explanation says what the reason means, in plain words.
	Explanation string `json:"explanation,omitempty"`
}

// reasonWords explains each condition reason the operator sets.
var reasonWords = map[string]string{
	sessionsv1alpha1.ReasonRefreshed:            "TIDAL issued a new access token and the output Secret holds it",
	sessionsv1alpha1.ReasonTokenValid:           "the output Secret holds a valid access token; no refresh was due",
	sessionsv1alpha1.ReasonRefreshRetrying:      "a refresh failed for a reason that may pass; the operator retries with backoff",
	sessionsv1alpha1.ReasonTokenExpired:         "the access token expired while refreshes kept failing",
	sessionsv1alpha1.ReasonReauthRequired:       "TIDAL rejected the refresh token; only a new login helps",
	sessionsv1alpha1.ReasonRefreshTokenLost:     "TIDAL rejected the stored refresh token after the answer to an earlier refresh was lost; only a new login helps",
	sessionsv1alpha1.ReasonClientRejected:       "TIDAL rejected the client id or client secret",
	sessionsv1alpha1.ReasonCredentialsMissing:   "the credentials Secret, or a key the spec names, is missing",
	sessionsv1alpha1.ReasonCredentialsInvalid:   "the credentials Secret holds a value that cannot be used",
	sessionsv1alpha1.ReasonOutputSecretConflict: "a Secret with the output name exists and the operator does not manage it",
	sessionsv1alpha1.ReasonInvalidSpec:          "the session's spec breaks a rule admission could not check",
	sessionsv1alpha1.ReasonSuspended:            "spec.suspend is true, so the token is not refreshed",
}

// Summarize describes s from its spec names and status.
func Summarize(s *sessionsv1alpha1.TidalSession) Summary {
	st := s.Status
	sum := Summary{
		Namespace:           s.Namespace,
		Name:                s.Name,
		Phase:               string(st.Phase),
		Ready:               string(metav1.ConditionUnknown),
		ExpiresAt:           timeString(st.AccessTokenExpiresAt),
		LastRefreshTime:     timeString(st.LastRefreshTime),
		NextRefreshTime:     timeString(st.NextRefreshTime),
		LastRefreshRequest:  st.LastRefreshRequest,
		RefreshCount:        st.RefreshCount,
		ConsecutiveFailures: st.ConsecutiveFailures,
		UserID:              st.UserID,
		CountryCode:         st.CountryCode,
		OutputSecret:        s.Spec.OutputSecret.Name,
		CredentialsSecret:   s.Spec.CredentialsSecretRef.Name,
		Suspended:           s.Spec.Suspend,
		StatusCurrent:       st.ObservedGeneration == s.Generation,
	}
	if sum.Phase == "" {
		sum.Phase = "Unknown"
	}
	if h := st.Health; h != nil {
		sum.Health, sum.LastCheckTime, sum.LastHealthyTime = string(h.Result), timeString(h.LastCheckTime),
			timeString(h.LastHealthyTime)
	}
	if b := s.Spec.Binding; b != nil {
		sum.Binding = string(b.Mode)
		if st.Binding != nil {
			sum.BoundConsumers, sum.Violations = len(st.Binding.Bound), st.Binding.Violations
		}
	}
	if ready := meta.FindStatusCondition(st.Conditions, sessionsv1alpha1.ConditionReady); ready != nil {
		sum.Ready, sum.Reason, sum.Message = string(ready.Status), ready.Reason, ready.Message
	}
	for _, c := range st.Conditions {
		sum.Conditions = append(sum.Conditions, Condition{
			Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message,
			Since:       timeString(&c.LastTransitionTime),
			Explanation: reasonWords[c.Reason],
		})
	}
	sum.NextStep = nextStep(s, sum)
	return sum
}

// nextStep is the advice of the README's phase table, made specific with the names the
// session uses where the reason tells which one is at fault.
func nextStep(s *sessionsv1alpha1.TidalSession, sum Summary) string {
	creds := fmt.Sprintf("the credentials Secret %q", sum.CredentialsSecret)
	switch s.Status.Phase {
	case "":
		return "Wait: the operator has not looked at this session yet. If this lasts, check that " +
			"the operator runs and watches namespace " + s.Namespace + "."
	case sessionsv1alpha1.PhasePending:
		return "Wait: the operator has not written a token yet; the Ready condition says why."
	case sessionsv1alpha1.PhaseActive:
		return "Nothing: the token is valid and the operator keeps it fresh."
	case sessionsv1alpha1.PhaseDegraded:
		return "Nothing yet: the current token is still valid and the operator retries" +
			atTime(sum.NextRefreshTime) + ". If this lasts, check TIDAL's reachability and the operator's logs."
	case sessionsv1alpha1.PhaseExpired:
		return "The token has expired and refreshes keep failing: check TIDAL's reachability and " +
			"the operator's logs; the operator retries" + atTime(sum.NextRefreshTime) + "."
	case sessionsv1alpha1.PhaseReauthRequired:
		return "Log in to TIDAL again and put the new refresh token in " + creds + "; the operator " +
			"notices the change and does not send the rejected token again."
	case sessionsv1alpha1.PhaseSuspended:
		return "Set spec.suspend to false to resume refreshing."
	case sessionsv1alpha1.PhaseQuarantined:
		return "A workload the session is not bound to used its Secret, so the token was removed: " +
			"find it in the session's Events, stop it, and approve the current consumers with the " +
			sessionsv1alpha1.BindingApprovalAnnotation + " annotation; the operator then writes a fresh token."
	case sessionsv1alpha1.PhaseError:
		switch sum.Reason {
		case sessionsv1alpha1.ReasonClientRejected:
			return "Check the client id and client secret in " + creds + "."
		case sessionsv1alpha1.ReasonCredentialsMissing:
			return "Create " + creds + " or add the key the spec names; the Ready message says which."
		case sessionsv1alpha1.ReasonCredentialsInvalid:
			return "Fix the value in " + creds + " that the Ready message names."
		case sessionsv1alpha1.ReasonOutputSecretConflict:
			return fmt.Sprintf("Delete the Secret %q that the operator does not manage, or choose another "+
				"spec.outputSecret.name.", sum.OutputSecret)
		}
		return "Fix the session's spec or Secrets as the Ready message says."
	}
	return "Read the Ready condition's message."
}

func atTime(t string) string {
	if t == "" {
		return ""
	}
	return " at " + t
}

func timeString(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Text is the summary in plain words, a few lines for a person or a language model.
func (s Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "TidalSession %s/%s: phase %s, ready %s", s.Namespace, s.Name, s.Phase, strings.ToLower(s.Ready))
	if s.Reason != "" {
		fmt.Fprintf(&b, " (%s)", s.Reason)
	}
	b.WriteString(".\n")
	if s.Message != "" {
		fmt.Fprintf(&b, "Ready: %s\n", s.Message)
	}
	for _, c := range s.Conditions {
		if c.Explanation == "" {
			continue
		}
		fmt.Fprintf(&b, "Condition %s is %s", c.Type, c.Status)
		if c.Since != "" {
			fmt.Fprintf(&b, " since %s", c.Since)
		}
		fmt.Fprintf(&b, ": %s.\n", c.Explanation)
	}
	if s.ExpiresAt != "" {
		fmt.Fprintf(&b, "The access token expires at %s.\n", s.ExpiresAt)
	}
	if s.LastRefreshTime != "" {
		fmt.Fprintf(&b, "Last refreshed at %s (refreshes so far: %d).\n", s.LastRefreshTime, s.RefreshCount)
	}
	if s.NextRefreshTime != "" {
		fmt.Fprintf(&b, "Next refresh at %s.\n", s.NextRefreshTime)
	}
	if s.ConsecutiveFailures > 0 {
		fmt.Fprintf(&b, "%d refresh attempts failed since the last success.\n", s.ConsecutiveFailures)
	}
	if s.LastCheckTime != "" {
		fmt.Fprintf(&b, "Last checked against TIDAL at %s: %s", s.LastCheckTime, s.Health)
		if s.LastHealthyTime != "" && s.LastHealthyTime != s.LastCheckTime {
			fmt.Fprintf(&b, " (last healthy at %s)", s.LastHealthyTime)
		}
		b.WriteString(".\n")
	}
	if s.Binding != "" {
		fmt.Fprintf(&b, "Bound to %d workload(s) in %s mode; consumers that did not match so far: %d.\n",
			s.BoundConsumers, s.Binding, s.Violations)
	}
	if s.UserID != "" {
		fmt.Fprintf(&b, "TIDAL user %s, country %s.\n", s.UserID, s.CountryCode)
	}
	if s.OutputSecret != "" {
		fmt.Fprintf(&b, "Consumers mount the Secret %q.\n", s.OutputSecret)
	}
	if !s.StatusCurrent {
		b.WriteString("The status describes an earlier version of the spec; the operator has not caught up yet.\n")
	}
	fmt.Fprintf(&b, "What to do next: %s", s.NextStep)
	return b.String()
}
