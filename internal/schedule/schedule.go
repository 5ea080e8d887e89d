// Package schedule decides when a session's access token is refreshed. Its functions are
// pure: they take the time they need as arguments.
package schedule

import (
	"hash/fnv"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// PropagationFloor is the least time before expiry at which a refresh is scheduled. The
// kubelet updates a mounted Secret about a minute (its sync period plus cache TTL) after
// the Secret changes; a token refreshed later than this could expire in a pod before the
// pod sees its successor.
const PropagationFloor = 2 * time.Minute

// MinInterval is the least time between two refreshes of one session. A server that hands
// out tokens living a few seconds would otherwise be asked for a new one several times a
// second, for as long as it answers so.
const MinInterval = 30 * time.Second

// defaultPercent is the share of the lifetime left when a session sets no policy.
const defaultPercent = 25

// Lead returns how long before expiry a token of the given lifetime is refreshed under
// policy p. It is at least PropagationFloor, so that mounted volumes receive the new token
// in time, and at most half the lifetime, so that short-lived tokens are not refreshed
// again the moment they arrive.
func Lead(lifetime time.Duration, p sessionsv1alpha1.RefreshPolicy) time.Duration {
	var lead time.Duration
	switch {
	case p.BeforeExpiry != nil:
		lead = p.BeforeExpiry.Duration
	case p.BeforeExpiryPercent != nil:
		lead = lifetime * time.Duration(*p.BeforeExpiryPercent) / 100
	default:
		lead = lifetime * defaultPercent / 100
	}
	lead = max(lead, PropagationFloor)
	return min(lead, lifetime/2)
}

// Retry backoff after a refresh failed for a reason that may pass: 5s, 10s, 20s, ... up to
// 5 minutes, each with up to 20% added at random so that sessions failing together (a TIDAL
// outage) do not retry together.
const (
	RetryBase   = 5 * time.Second
	RetryCap    = 5 * time.Minute
	retryJitter = 0.2
)

// RetryDelay returns how long to wait after the given number of consecutive failures (1
// for the first) before trying again, starting from base (RetryBase when 0).
func RetryDelay(failures int32, base time.Duration) time.Duration {
	if base <= 0 {
		base = RetryBase
	}
	b := wait.Backoff{Duration: base, Factor: 2, Jitter: retryJitter, Steps: math.MaxInt32, Cap: RetryCap}
	d := base
	// The cap is reached after 6 steps; more would only repeat it.
	for range min(max(failures, 1), 10) {
		d = b.Step()
	}
	return d
}

// maxSpread bounds Spread: ten minutes spreads thousands of sessions over 600 distinct
// seconds, and moves no refresh of a long-lived token much earlier than its policy says.
const maxSpread = 10 * time.Minute

// NextRefresh returns when a token that arrived at receivedAt and lives for lifetime is
// refreshed under policy p for the session identified by key (its UID): Lead before
// expiry, made earlier by the session's Spread, but never sooner than MinInterval after
// receivedAt, even if the token expires first.
func NextRefresh(receivedAt time.Time, lifetime time.Duration, p sessionsv1alpha1.RefreshPolicy, key string) time.Time {
	at := lifetime - Lead(lifetime, p) - Spread(key, lifetime)
	return receivedAt.Add(max(at, MinInterval))
}

// Spread is how much earlier than its policy a session refreshes, so that sessions created
// together (and so holding tokens of the same age) do not all ask TIDAL in the same second.
// It is a deterministic function of key, in whole seconds (as status records times), spread
// evenly over [0, min(lifetime/10, 10m)): a session keeps its place across restarts and
// replicas. It only ever moves a refresh earlier, so the propagation floor still holds.
func Spread(key string, lifetime time.Duration) time.Duration {
	seconds := uint64(min(lifetime/10, maxSpread) / time.Second)
	if seconds == 0 || key == "" {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64()%seconds) * time.Second
}
