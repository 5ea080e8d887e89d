// Package metrics defines the operator's Prometheus metrics, registered on
// controller-runtime's registry so they are served on the manager's metrics endpoint.
// Labels never carry a token or any other value that came from TIDAL's answers.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a refresh attempt, the values of the "result" label.
const (
	ResultSuccess       = "success"
	ResultTransient     = "transient_error"
	ResultGrantInvalid  = "grant_invalid"
	ResultClientInvalid = "client_invalid"
)

// Verdicts of a session check against TIDAL, the values of the "result" label.
const (
	CheckHealthy       = "healthy"
	CheckUnknown       = "unknown"
	CheckTokenRejected = "token_rejected"
	CheckGone          = "session_gone"
)

// Types of security events, the values of the "type" label. A type names a rule, never a
// pod or session: the Events and status name those.
const (
	// SecurityConsumerMismatch: a workload the binding does not know consumes a session.
	SecurityConsumerMismatch = "consumer_mismatch"
	// SecurityFingerprintChanged: a bound workload consumes a session under a new fingerprint.
	SecurityFingerprintChanged = "fingerprint_changed"
	// SecurityQuarantined: a session in binding mode Enforce was quarantined.
	SecurityQuarantined = "quarantined"
	// SecurityConsumerBurst: more new consumers than the threshold appeared within the window.
	SecurityConsumerBurst = "consumer_burst"
	// SecurityRepeatedViolations: the threshold of violations was reached within the window.
	SecurityRepeatedViolations = "repeated_violations"
	// SecurityIdentityChanged: a health check found another user, country or client behind a
	// session.
	SecurityIdentityChanged = "identity_changed"
	// SecurityRefreshTokenReused: TIDAL rejected a refresh token it had issued to the
	// operator and nobody else should have used (possible theft).
	SecurityRefreshTokenReused = "refresh_token_reused"
	// SecurityTokenRequestRefused: the token endpoint refused a caller.
	SecurityTokenRequestRefused = "token_request_refused"
)

// SecurityEventTypes lists every value of the "type" label.
var SecurityEventTypes = []string{SecurityConsumerMismatch, SecurityFingerprintChanged, SecurityQuarantined,
	SecurityConsumerBurst, SecurityRepeatedViolations, SecurityIdentityChanged, SecurityRefreshTokenReused,
	SecurityTokenRequestRefused}

var (
	// SecurityEvents counts security events by type; alerts fire on its increase. Each type's
	// series exists from the start at 0, so increase() sees the first event.
	SecurityEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidal_session_security_events_total",
		Help: "Security events about sessions (binding violations, quarantines, anomalies), by type.",
	}, []string{"type"})

	// HealthChecks counts checks of sessions against TIDAL (after each refresh and every
	// spec.healthCheck.interval between), by verdict.
	HealthChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidal_session_health_checks_total",
		Help: "Checks of sessions against TIDAL, by verdict.",
	}, []string{"result"})

	// PhaseTransitions counts the sessions' phase changes; "from" is "None" for a new session.
	PhaseTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidal_session_phase_transitions_total",
		Help: "Phase changes of TidalSessions, by the phase left and the phase entered.",
	}, []string{"from", "to"})

	// TimeToFirstReady observes, for each new session, the time from its creation to the
	// first access token in its output Secret.
	TimeToFirstReady = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tidal_session_time_to_first_ready_seconds",
		Help:    "Time from a TidalSession's creation to its first access token.",
		Buckets: prometheus.ExponentialBuckets(0.25, 2, 14),
	})

	// RefreshAttempts counts refresh attempts by result. The success rate over an hour is
	// sum(rate(tidal_session_refresh_attempts_total{result="success"}[1h]))
	//   / sum(rate(tidal_session_refresh_attempts_total[1h])).
	RefreshAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidal_session_refresh_attempts_total",
		Help: "Token refresh attempts against TIDAL, by result.",
	}, []string{"result"})

	// RefreshDuration observes how long TIDAL took to answer a refresh.
	RefreshDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tidal_session_refresh_duration_seconds",
		Help:    "Time TIDAL took to answer a token refresh.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(RefreshAttempts, RefreshDuration, HealthChecks, PhaseTransitions,
		TimeToFirstReady, SecurityEvents)
	for _, t := range SecurityEventTypes {
		SecurityEvents.WithLabelValues(t)
	}
}
