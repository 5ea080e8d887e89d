package healthapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// The endpoint asks the API server who a caller is and what it may do; both reviews are
// cluster-scoped and reveal nothing about Secrets.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Decision is what the access check concluded for one caller and one session.
type Decision int

const (
	// Unauthenticated: the API server did not accept the caller's token (401).
	Unauthenticated Decision = iota
	// Forbidden: the caller is known but may not get the TidalSession (403).
	Forbidden
	// Allowed: the caller may get the TidalSession, so it may read its health.
	Allowed
)

// AuthenticateFunc resolves a bearer token to the user it was issued to. ok is false when
// the API server rejected the token; err is set only when it could not decide, so that an
// outage is never mistaken for a bad token (and never cached as one).
type AuthenticateFunc func(ctx context.Context, token string) (u authenticationv1.UserInfo, ok bool, err error)

// AuthorizeFunc decides whether u may get the TidalSession session. err is set only when
// the API server could not decide.
type AuthorizeFunc func(ctx context.Context, u authenticationv1.UserInfo, session types.NamespacedName) (bool, error)

// Access answers "may this bearer token read this session's health" and remembers each
// answer for a short time, so that a probe calling every second costs the API server one
// TokenReview and one SubjectAccessReview per TTL instead of two per call.
type Access struct {
	authenticate AuthenticateFunc
	authorize    AuthorizeFunc
	answers      *answerCache
}

// AccessOptions configure NewAccess and NewPodTokens. Zero values take the defaults.
type AccessOptions struct {
	// TTL is how long an answer is reused, allowed or not: 10 s by default. A revoked
	// RoleBinding or a deleted ServiceAccount stops working within this time.
	TTL time.Duration
	// MaxEntries bounds the cache (4096 by default); the least recently used answer goes
	// first, so callers with many distinct tokens cannot grow the operator's memory.
	MaxEntries int
	// Clock is the cache's clock, a fake one in tests.
	Clock clock.PassiveClock
}

const (
	defaultDecisionTTL = 10 * time.Second
	defaultMaxEntries  = 4096
)

// answerCache remembers answers about bearer tokens for a short time. It holds a keyed hash
// of each token, never the token, and the key is random per process, so a memory dump does
// not let anyone test guesses.
type answerCache struct {
	ttl     time.Duration
	answers *cache.LRUExpireCache
	hmacKey []byte
}

func newAnswerCache(opts AccessOptions) (*answerCache, error) {
	if opts.TTL <= 0 {
		opts.TTL = defaultDecisionTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = defaultMaxEntries
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("failed to generate cache key: %w", err)
	}
	return &answerCache{ttl: opts.TTL, answers: cache.NewLRUExpireCacheWithClock(opts.MaxEntries, opts.Clock),
		hmacKey: key}, nil
}

// key binds an answer to the token and to scope, what the answer is about: an answer about
// one scope tells nothing about another.
func (c *answerCache) key(token, scope string) string {
	mac := hmac.New(sha256.New, c.hmacKey)
	mac.Write([]byte(token))
	return hex.EncodeToString(mac.Sum(nil)) + "/" + scope
}

func (c *answerCache) get(key string) (any, bool) { return c.answers.Get(key) }

func (c *answerCache) add(key string, answer any) { c.answers.Add(key, answer, c.ttl) }

// entries is the number of answers the cache holds, for tests of its bound.
func (c *answerCache) entries() int { return len(c.answers.Keys()) }

// NewAccess returns an Access that asks authenticate and authorize on a cache miss.
func NewAccess(authenticate AuthenticateFunc, authorize AuthorizeFunc, opts AccessOptions) (*Access, error) {
	answers, err := newAnswerCache(opts)
	if err != nil {
		return nil, err
	}
	return &Access{authenticate: authenticate, authorize: authorize, answers: answers}, nil
}

// verdict is a cached answer. user is the caller's name, for the 403 message and the log;
// it is empty for Unauthenticated.
type verdict struct {
	decision Decision
	user     string
}

// Check decides whether the bearer token may get session. It returns the caller's user
// name when the token was accepted. Errors (the API server unreachable) are not cached.
func (a *Access) Check(ctx context.Context, token string, session types.NamespacedName) (Decision, string, error) {
	key := a.cacheKey(token, session)
	if v, ok := a.answers.get(key); ok {
		cached := v.(verdict)
		return cached.decision, cached.user, nil
	}

	v, err := a.review(ctx, token, session)
	if err != nil {
		return Unauthenticated, "", err
	}
	a.answers.add(key, v)
	return v.decision, v.user, nil
}

func (a *Access) review(ctx context.Context, token string, session types.NamespacedName) (verdict, error) {
	u, ok, err := a.authenticate(ctx, token)
	if err != nil {
		return verdict{}, fmt.Errorf("failed to review token: %w", err)
	}
	if !ok {
		return verdict{decision: Unauthenticated}, nil
	}

	allowed, err := a.authorize(ctx, u, session)
	if err != nil {
		return verdict{}, fmt.Errorf("failed to review access of %s: %w", u.Username, err)
	}
	if !allowed {
		return verdict{decision: Forbidden, user: u.Username}, nil
	}
	return verdict{decision: Allowed, user: u.Username}, nil
}

// cacheKey binds the answer to the token and to the session: a token allowed for one
// session learns nothing about another from the cache.
func (a *Access) cacheKey(token string, session types.NamespacedName) string {
	return a.answers.key(token, session.Namespace+"/"+session.Name)
}

// reviewTimeout bounds one TokenReview or SubjectAccessReview, so that callers queued behind
// the client's rate limit give up instead of piling up.
const reviewTimeout = 5 * time.Second

// TokenReviewer returns an AuthenticateFunc that creates a TokenReview with c. Without
// audiences the review names none, so the API server accepts the tokens it would accept
// itself, such as a pod's projected ServiceAccount token. With audiences, a token is accepted
// only when it was issued for one of them and the API server says so in the review's status:
// a token meant for the API server, or for another service, is refused.
func TokenReviewer(c client.Client, audiences ...string) AuthenticateFunc {
	return func(ctx context.Context, token string) (authenticationv1.UserInfo, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
		defer cancel()
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token,
			Audiences: audiences}}
		if err := c.Create(ctx, review); err != nil {
			// The API server's error names the review, not the token it carried.
			return authenticationv1.UserInfo{}, false, err
		}
		// Status.Error says why a token was rejected; it is left out of the answer because
		// it helps only someone probing with forged tokens.
		ok := review.Status.Authenticated &&
			(len(audiences) == 0 || slices.ContainsFunc(review.Status.Audiences, func(a string) bool {
				return slices.Contains(audiences, a)
			}))
		return review.Status.User, ok, nil
	}
}

// AccessReviewer returns an AuthorizeFunc that creates a SubjectAccessReview with c: may the
// user get the TidalSession, by name, in its namespace.
func AccessReviewer(c client.Client) AuthorizeFunc {
	return func(ctx context.Context, u authenticationv1.UserInfo, session types.NamespacedName) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
		defer cancel()
		extra := make(map[string]authorizationv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			extra[k] = authorizationv1.ExtraValue(v)
		}
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   u.Username,
			UID:    u.UID,
			Groups: u.Groups,
			Extra:  extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group:     sessionsv1alpha1.GroupVersion.Group,
				Resource:  "tidalsessions",
				Namespace: session.Namespace,
				Name:      session.Name,
				Verb:      "get",
			},
		}}
		if err := c.Create(ctx, review); err != nil {
			return false, err
		}
		return review.Status.Allowed && !review.Status.Denied, nil
	}
}
