package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// DefaultListTimeout bounds how long one scrape waits for the session list. Listing from a
// synced cache takes microseconds; the bound matters only while the cache is still syncing,
// when waiting longer than a scrape's own timeout would help nobody.
const DefaultListTimeout = 5 * time.Second

// sessionLabels are the only labels of the per-session series: a session is named by where
// it lives, never by anything TIDAL told the operator about it.
var sessionLabels = []string{"namespace", "name"}

var (
	accessTokenExpiryDesc = prometheus.NewDesc(
		"tidal_session_access_token_expiry_timestamp_seconds",
		"When the access token in the session's output Secret expires, in Unix seconds.",
		sessionLabels, nil)
	nextRefreshDesc = prometheus.NewDesc(
		"tidal_session_next_refresh_timestamp_seconds",
		"When the operator will next refresh the session, in Unix seconds.",
		sessionLabels, nil)
	consecutiveFailuresDesc = prometheus.NewDesc(
		"tidal_session_consecutive_failures",
		"Failed refresh attempts since the session's last successful refresh.",
		sessionLabels, nil)
	phaseDesc = prometheus.NewDesc(
		"tidal_session_phase",
		"The session's current phase: 1 on the series of that phase, no series for others.",
		[]string{"namespace", "name", "phase"}, nil)
	readyDesc = prometheus.NewDesc(
		"tidal_session_ready",
		"1 when the session's Ready condition is True, 0 otherwise.",
		sessionLabels, nil)
	createdDesc = prometheus.NewDesc(
		"tidal_session_created_timestamp_seconds",
		"When the TidalSession was created, in Unix seconds; time() minus it is the session's age.",
		sessionLabels, nil)
	lastHealthyDesc = prometheus.NewDesc(
		"tidal_session_last_healthy_timestamp_seconds",
		"When a check against TIDAL last found the session healthy, in Unix seconds.",
		sessionLabels, nil)
	collectorUpDesc = prometheus.NewDesc(
		"tidal_session_status_up",
		"1 when the last scrape could list TidalSessions from the cache, 0 when it could not "+
			"and the per-session series are missing.",
		nil, nil)
)

// SessionCollector reports each TidalSession's status as gauges. It lists the sessions at
// scrape time instead of keeping gauges up to date, so a deleted session's series vanish
// with it and nothing has to remember to remove them.
type SessionCollector struct {
	reader  client.Reader
	timeout time.Duration
	log     logr.Logger

	// failing records whether the last list failed, so that a cache that cannot be read is
	// logged once when it starts failing and not on every scrape.
	failing atomic.Bool
}

// NewSessionCollector returns a collector that lists sessions from reader, which should be
// the manager's cached client: a scrape must not cost the API server a list call.
func NewSessionCollector(reader client.Reader) *SessionCollector {
	return &SessionCollector{
		reader:  reader,
		timeout: DefaultListTimeout,
		log:     ctrllog.Log.WithName("metrics").WithName("sessions"),
	}
}

// RegisterSessionCollector registers a SessionCollector reading from reader on
// controller-runtime's registry, which the manager's metrics endpoint serves.
func RegisterSessionCollector(reader client.Reader) error {
	return ctrlmetrics.Registry.Register(NewSessionCollector(reader))
}

// Describe sends the descriptors of every series the collector may produce.
func (c *SessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- accessTokenExpiryDesc
	ch <- nextRefreshDesc
	ch <- consecutiveFailuresDesc
	ch <- phaseDesc
	ch <- readyDesc
	ch <- createdDesc
	ch <- lastHealthyDesc
	ch <- collectorUpDesc
}

// Collect lists the sessions and sends their series. When the list fails it sends only
// tidal_session_status_up = 0: an invalid metric would fail the whole scrape, taking the
// refresh counters and controller-runtime's own metrics down with it.
func (c *SessionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()

	var sessions sessionsv1alpha1.TidalSessionList
	// The items are only read, so the cache may hand out its own objects instead of copies.
	if err := c.reader.List(ctx, &sessions, client.UnsafeDisableDeepCopy); err != nil {
		if !c.failing.Swap(true) {
			// Per-session series stay missing until a list succeeds.
			c.log.Error(err, "Failed to list TidalSessions for metrics")
		}
		ch <- prometheus.MustNewConstMetric(collectorUpDesc, prometheus.GaugeValue, 0)
		return
	}
	if c.failing.Swap(false) {
		c.log.Info("Listing TidalSessions for metrics works again")
	}
	ch <- prometheus.MustNewConstMetric(collectorUpDesc, prometheus.GaugeValue, 1)

	for i := range sessions.Items {
		collectSession(ch, &sessions.Items[i])
	}
}

// collectSession sends the series of one session. Times the operator has not set yet are
// left out rather than reported as 1970, which would look like an expired token.
func collectSession(ch chan<- prometheus.Metric, s *sessionsv1alpha1.TidalSession) {
	ns, name := s.Namespace, s.Name
	st := &s.Status

	if t := st.AccessTokenExpiresAt; t != nil {
		ch <- prometheus.MustNewConstMetric(accessTokenExpiryDesc, prometheus.GaugeValue,
			unixSeconds(t), ns, name)
	}
	if t := st.NextRefreshTime; t != nil {
		ch <- prometheus.MustNewConstMetric(nextRefreshDesc, prometheus.GaugeValue,
			unixSeconds(t), ns, name)
	}
	if h := st.Health; h != nil && h.LastHealthyTime != nil {
		ch <- prometheus.MustNewConstMetric(lastHealthyDesc, prometheus.GaugeValue,
			unixSeconds(h.LastHealthyTime), ns, name)
	}
	if !s.CreationTimestamp.IsZero() {
		ch <- prometheus.MustNewConstMetric(createdDesc, prometheus.GaugeValue,
			unixSeconds(&s.CreationTimestamp), ns, name)
	}
	ch <- prometheus.MustNewConstMetric(consecutiveFailuresDesc, prometheus.GaugeValue,
		float64(st.ConsecutiveFailures), ns, name)
	// A session the operator has not reconciled yet has no phase; an empty label value
	// would read as a phase of its own.
	if st.Phase != "" {
		ch <- prometheus.MustNewConstMetric(phaseDesc, prometheus.GaugeValue, 1,
			ns, name, string(st.Phase))
	}
	// A missing Ready condition, or one that is Unknown, counts as not ready, so that
	// tidal_session_ready == 0 finds every session that is not serving a token.
	readyValue := 0.0
	if meta.IsStatusConditionTrue(st.Conditions, sessionsv1alpha1.ConditionReady) {
		readyValue = 1
	}
	ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, readyValue, ns, name)
}

// unixSeconds is t in whole Unix seconds, the precision the API server keeps.
func unixSeconds(t *metav1.Time) float64 {
	return float64(t.Unix())
}
