package healthapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

var (
	alice = types.NamespacedName{Namespace: "team-a", Name: "alice"}
	bob   = types.NamespacedName{Namespace: "team-a", Name: "bob"}
)

func newTestAccess(t *testing.T, f *fakeAuth, opts AccessOptions) *Access {
	t.Helper()
	a, err := NewAccess(f.authenticate, f.authorize, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustCheck(t *testing.T, a *Access, token string, s types.NamespacedName, want Decision) {
	t.Helper()
	got, _, err := a.Check(context.Background(), token, s)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("decision %d, want %d", got, want)
	}
}

func TestAccessCachesEachAnswerForTheTTL(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	f := &fakeAuth{}
	a := newTestAccess(t, f, AccessOptions{TTL: 10 * time.Second, Clock: clk})

	for range 5 {
		mustCheck(t, a, tokenReader, alice, Allowed)
		mustCheck(t, a, tokenOutsider, alice, Forbidden)
		mustCheck(t, a, tokenForged, alice, Unauthenticated)
	}
	if n, m := f.authnCalls.Load(), f.authzCalls.Load(); n != 3 || m != 2 {
		t.Fatalf("15 checks of 3 callers: %d token reviews and %d access reviews, want 3 and 2", n, m)
	}

	clk.SetTime(clk.Now().Add(10 * time.Second))
	mustCheck(t, a, tokenReader, alice, Allowed)
	if n := f.authnCalls.Load(); n != 3 {
		t.Fatalf("answer gone before its TTL: %d token reviews", n)
	}
	clk.SetTime(clk.Now().Add(time.Second))
	mustCheck(t, a, tokenReader, alice, Allowed)
	if n := f.authnCalls.Load(); n != 4 {
		t.Fatalf("answer kept past its TTL: %d token reviews, want 4", n)
	}
}

// An answer is about one session: the same token asking for another is reviewed again.
func TestAccessKeysAnswersBySession(t *testing.T) {
	f := &fakeAuth{}
	a := newTestAccess(t, f, AccessOptions{})
	mustCheck(t, a, tokenReader, alice, Allowed)
	mustCheck(t, a, tokenReader, bob, Allowed)
	mustCheck(t, a, tokenReader, types.NamespacedName{Namespace: "team-b", Name: "alice"}, Forbidden)
	if m := f.authzCalls.Load(); m != 3 {
		t.Fatalf("%d access reviews for 3 sessions", m)
	}
}

// An outage is not remembered: the next call asks again.
func TestAccessDoesNotCacheErrors(t *testing.T) {
	failing := true
	calls := 0
	authn := func(_ context.Context, _ string) (authenticationv1.UserInfo, bool, error) {
		calls++
		if failing {
			return authenticationv1.UserInfo{}, false, errors.New("connection refused")
		}
		return authenticationv1.UserInfo{Username: "u"}, true, nil
	}
	authz := func(context.Context, authenticationv1.UserInfo, types.NamespacedName) (bool, error) { return true, nil }
	a, err := NewAccess(authn, authz, AccessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Check(context.Background(), tokenReader, alice); err == nil {
		t.Fatal("no error during the outage")
	}
	failing = false
	d, user, err := a.Check(context.Background(), tokenReader, alice)
	if err != nil || d != Allowed || user != "u" || calls != 2 {
		t.Fatalf("after the outage: %v %q %v, %d reviews", d, user, err, calls)
	}
}

// Many distinct tokens (a flood of forged ones, or many pods) cannot grow the cache past its
// bound; the least recently used answers go first.
func TestAccessCacheIsBounded(t *testing.T) {
	f := &fakeAuth{}
	a := newTestAccess(t, f, AccessOptions{MaxEntries: 8})
	mustCheck(t, a, tokenReader, alice, Allowed)
	for i := range 100 {
		mustCheck(t, a, fmt.Sprintf("forged-%d", i), alice, Unauthenticated)
		if n := a.answers.entries(); n > 8 {
			t.Fatalf("cache holds %d answers, bound 8", n)
		}
	}
	if n := a.answers.entries(); n != 8 {
		t.Fatalf("cache holds %d answers, want 8", n)
	}

	before := f.authnCalls.Load()
	mustCheck(t, a, "forged-99", alice, Unauthenticated)
	if f.authnCalls.Load() != before {
		t.Error("the most recent answer was evicted")
	}
	mustCheck(t, a, tokenReader, alice, Allowed)
	if f.authnCalls.Load() != before+1 {
		t.Error("the oldest answer survived 100 newer ones")
	}
}

// The cache holds a keyed hash of each token, never the token.
func TestAccessCacheHoldsNoToken(t *testing.T) {
	f := &fakeAuth{}
	a := newTestAccess(t, f, AccessOptions{})
	mustCheck(t, a, tokenReader, alice, Allowed)
	mustCheck(t, a, tokenOutsider, alice, Forbidden)
	for _, k := range a.answers.answers.Keys() {
		for _, tok := range allTokens {
			if strings.Contains(fmt.Sprint(k), tok) {
				t.Errorf("cache key holds a token")
			}
		}
	}
	other := newTestAccess(t, f, AccessOptions{})
	if a.cacheKey(tokenReader, alice) == other.cacheKey(tokenReader, alice) {
		t.Error("two processes hash a token the same way: the hash key is not random")
	}
}

// With an audience, TokenReviewer asks for it and accepts a token only when the API server
// says the token was issued for it: a review that authenticates without confirming the
// audience (an API server that ignores spec.audiences) is refused.
func TestTokenReviewerRequiresTheAudience(t *testing.T) {
	for _, tc := range []struct {
		name          string
		authenticated bool
		audiences     []string
		want          bool
	}{
		{name: "issued for the audience", authenticated: true, audiences: []string{"api", "tidal"}, want: true},
		{name: "audience not confirmed", authenticated: true},
		{name: "another audience", authenticated: true, audiences: []string{"api"}},
		{name: "not authenticated", audiences: []string{"tidal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
				Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
					review := obj.(*authenticationv1.TokenReview)
					asked = review.Spec.Audiences
					review.Status = authenticationv1.TokenReviewStatus{Authenticated: tc.authenticated,
						Audiences: tc.audiences, User: authenticationv1.UserInfo{Username: "u"}}
					return nil
				}}).Build()
			_, ok, err := TokenReviewer(c, "tidal")(context.Background(), tokenReader)
			if err != nil || ok != tc.want || !slices.Equal(asked, []string{"tidal"}) {
				t.Errorf("accepted %v, %v, asked for %v; want %v", ok, err, asked, tc.want)
			}
		})
	}
}
