package schedule

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

func TestLead(t *testing.T) {
	before := func(d time.Duration) sessionsv1alpha1.RefreshPolicy {
		return sessionsv1alpha1.RefreshPolicy{BeforeExpiry: &metav1.Duration{Duration: d}}
	}
	percent := func(p int32) sessionsv1alpha1.RefreshPolicy {
		return sessionsv1alpha1.RefreshPolicy{BeforeExpiryPercent: ptr.To(p)}
	}
	tests := []struct {
		name     string
		lifetime time.Duration
		policy   sessionsv1alpha1.RefreshPolicy
		want     time.Duration
	}{
		{"default is a quarter of 4h", 4 * time.Hour, sessionsv1alpha1.RefreshPolicy{}, time.Hour},
		{"default is a quarter of 7d", 7 * 24 * time.Hour, sessionsv1alpha1.RefreshPolicy{}, 42 * time.Hour},
		{"duration as asked", 4 * time.Hour, before(30 * time.Minute), 30 * time.Minute},
		{"percent as asked", 24 * time.Hour, percent(10), 144 * time.Minute},
		{"duration below floor is raised", 4 * time.Hour, before(10 * time.Second), PropagationFloor},
		{"percent below floor is raised", time.Hour, percent(1), PropagationFloor},
		{"duration above half the lifetime is cut", 4 * time.Hour, before(3 * time.Hour), 2 * time.Hour},
		{"60s token: floor exceeds lifetime, half it is", time.Minute, sessionsv1alpha1.RefreshPolicy{}, 30 * time.Second},
		{"6m token: floor wins over a quarter", 6 * time.Minute, sessionsv1alpha1.RefreshPolicy{}, PropagationFloor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Lead(tt.lifetime, tt.policy); got != tt.want {
				t.Errorf("Lead(%v) = %v, want %v", tt.lifetime, got, tt.want)
			}
		})
	}
}

func TestNextRefresh(t *testing.T) {
	received := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		lifetime time.Duration
		want     time.Duration // after received
	}{
		{"4h token: a quarter before expiry", 4 * time.Hour, 3 * time.Hour},
		{"7-day token", 7 * 24 * time.Hour, 126 * time.Hour},
		{"60s token: half-way, the propagation floor cannot hold", time.Minute, 30 * time.Second},
		{"40s token: half-way would be too soon, MinInterval wins", 40 * time.Second, MinInterval},
		{"1s token: no faster than MinInterval though it expires first", time.Second, MinInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NextRefresh(received, tt.lifetime, sessionsv1alpha1.RefreshPolicy{}, "")
			if want := received.Add(tt.want); !got.Equal(want) {
				t.Errorf("NextRefresh = %v, want %v", got, want)
			}
		})
	}
	// For every lifetime of a minute or more, the refresh falls before expiry.
	for _, lifetime := range []time.Duration{time.Minute, time.Hour, 4 * time.Hour, 7 * 24 * time.Hour} {
		if next := NextRefresh(received, lifetime, sessionsv1alpha1.RefreshPolicy{}, "some-uid"); !next.Before(received.Add(lifetime)) {
			t.Errorf("lifetime %v: next refresh %v not before expiry", lifetime, next)
		}
	}
}

func TestSpread(t *testing.T) {
	const lifetime = 4 * time.Hour
	if a, b := Spread("uid-1", lifetime), Spread("uid-1", lifetime); a != b {
		t.Fatalf("Spread is not deterministic: %v, %v", a, b)
	}
	if s := Spread("", lifetime); s != 0 {
		t.Errorf("Spread without a key = %v, want 0", s)
	}
	if s := Spread("uid-1", time.Minute); s < 0 || s >= 6*time.Second {
		t.Errorf("Spread of a 60s token = %v, want within [0, 6s)", s)
	}

	// 1000 sessions created in the same second: their refreshes fall into many different
	// seconds of the 10-minute window, no second holds many, and none is later than policy.
	received := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	policyTime := NextRefresh(received, lifetime, sessionsv1alpha1.RefreshPolicy{}, "")
	perSecond := map[int64]int{}
	for i := range 1000 {
		next := NextRefresh(received, lifetime, sessionsv1alpha1.RefreshPolicy{}, fmt.Sprintf("uid-%d", i))
		if next.After(policyTime) || next.Before(policyTime.Add(-maxSpread)) {
			t.Fatalf("session %d refreshes at %v, outside [%v, %v]", i, next, policyTime.Add(-maxSpread), policyTime)
		}
		perSecond[next.Unix()]++
	}
	busiest := 0
	for _, n := range perSecond {
		busiest = max(busiest, n)
	}
	t.Logf("1000 sessions: %d distinct seconds, at most %d in one second", len(perSecond), busiest)
	if len(perSecond) < 400 || busiest > 8 {
		t.Errorf("1000 sessions spread over %d seconds with up to %d in one; want >= 400 and <= 8", len(perSecond), busiest)
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		failures int32
		min, max time.Duration
	}{
		{0, 5 * time.Second, 6 * time.Second},
		{1, 5 * time.Second, 6 * time.Second},
		{2, 10 * time.Second, 12 * time.Second},
		{3, 20 * time.Second, 24 * time.Second},
		{6, 160 * time.Second, 192 * time.Second},
		{7, RetryCap, RetryCap * 12 / 10},
		{1000, RetryCap, RetryCap * 12 / 10},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := RetryDelay(tt.failures, 0)
			if d < tt.min || d > tt.max {
				t.Errorf("RetryDelay(%d) = %v, want within [%v, %v]", tt.failures, d, tt.min, tt.max)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("RetryDelay(%d) gave %d distinct values in 50 calls: no jitter", tt.failures, len(seen))
		}
	}
}
