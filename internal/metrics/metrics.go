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

var (
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
		TimeToFirstReady)
}
