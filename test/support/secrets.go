package support

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// Secrets is the registry of every token and secret a suite handed out or read, for the leak
// search at its end. It is safe for concurrent use.
type Secrets struct {
	mu     sync.Mutex
	values map[string]bool
}

// NewSecrets returns a registry holding values, typically the suite's canary client secret.
func NewSecrets(values ...string) *Secrets {
	s := &Secrets{values: map[string]bool{}}
	for _, v := range values {
		s.Remember(v)
	}
	return s
}

// Remember adds v, unless it is empty, and returns it, so that a value can be remembered
// where it is made.
func (s *Secrets) Remember(v string) string {
	if v == "" {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[v] = true
	return v
}

// Len is the number of values remembered, which lets a suite check that its search has
// something to look for.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// RememberStoredTokens remembers the refresh and access tokens in the Secrets that opts
// select: rotated refresh tokens and the latest access tokens are tokens too, though no spec
// handed them out. Values shorter than 16 characters are not tokens the suites make.
func (s *Secrets) RememberStoredTokens(ctx context.Context, c client.Reader, opts ...client.ListOption) {
	GinkgoHelper()
	var list corev1.SecretList
	Expect(c.List(ctx, &list, opts...)).To(Succeed())
	for _, secret := range list.Items {
		for _, key := range []string{"refresh_token", sessionsv1alpha1.KeyAccessToken} {
			if v := string(secret.Data[key]); len(v) >= 16 {
				s.Remember(v)
			}
		}
	}
}

// ExpectNoneIn fails if haystack contains any remembered value. where names the haystack in
// the failure message, which shows a value's length and first six characters only, so that a
// failed search does not leak the value itself.
func (s *Secrets) ExpectNoneIn(haystack, where string) {
	GinkgoHelper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for v := range s.values {
		Expect(strings.Contains(haystack, v)).To(BeFalse(),
			"a token or secret (%d chars, starting %q) reached %s", len(v), v[:min(6, len(v))], where)
	}
}

// EventsAndStatus is what a person sees with kubectl apart from logs: every Event, in both
// APIs, and every TidalSession with its status, as JSON. It also returns the number of Events,
// so that a search can check it had some to look at.
func EventsAndStatus(ctx context.Context, c client.Reader) (text string, events int) {
	GinkgoHelper()
	var evs eventsv1.EventList
	Expect(c.List(ctx, &evs)).To(Succeed())
	var coreEvs corev1.EventList
	Expect(c.List(ctx, &coreEvs)).To(Succeed())
	var sessions sessionsv1alpha1.TidalSessionList
	Expect(c.List(ctx, &sessions)).To(Succeed())
	var b strings.Builder
	for _, v := range []any{evs, coreEvs, sessions} {
		j, err := json.Marshal(v)
		Expect(err).NotTo(HaveOccurred())
		b.Write(j)
	}
	return b.String(), len(evs.Items)
}
