// Package schedule decides when a session's access token is refreshed. Its functions are
// pure: they take the time they need as arguments.
package schedule

import (
	"time"

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

// NextRefresh returns when a token that arrived at receivedAt and lives for lifetime is
// refreshed under policy p: Lead before expiry, but never sooner than MinInterval after
// receivedAt, even if the token expires first.
func NextRefresh(receivedAt time.Time, lifetime time.Duration, p sessionsv1alpha1.RefreshPolicy) time.Time {
	return receivedAt.Add(max(lifetime-Lead(lifetime, p), MinInterval))
}
