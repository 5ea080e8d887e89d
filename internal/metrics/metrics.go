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

var (
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
	ctrlmetrics.Registry.MustRegister(RefreshAttempts, RefreshDuration)
}
