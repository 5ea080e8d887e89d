package healthapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
)

// PodIdentity is who presented a pod-bound ServiceAccount token, as the API server vouched
// for it in a TokenReview.
type PodIdentity struct {
	// User is the token's user name, system:serviceaccount:<namespace>:<name>.
	User           string
	Namespace      string
	ServiceAccount string
	Pod            string
	PodUID         types.UID
}

// podIdentityOf reads the identity of a pod-bound ServiceAccount token from the user the
// API server reviewed it as. ok is false for any other user: a ServiceAccount token without
// a bound pod (a TokenRequest without boundObjectRef, a legacy Secret token), one bound to
// another kind of object, or a person's token. Exactly one pod name and one pod UID are
// required: anything else is not what the API server writes, and is not guessed at.
func podIdentityOf(u authenticationv1.UserInfo) (PodIdentity, bool) {
	ns, sa, err := serviceaccount.SplitUsername(u.Username)
	if err != nil {
		return PodIdentity{User: u.Username}, false
	}
	id := PodIdentity{User: u.Username, Namespace: ns, ServiceAccount: sa}
	names, uids := u.Extra[serviceaccount.PodNameKey], u.Extra[serviceaccount.PodUIDKey]
	if len(names) != 1 || len(uids) != 1 || names[0] == "" || uids[0] == "" {
		return id, false
	}
	id.Pod, id.PodUID = names[0], types.UID(uids[0])
	return id, true
}

// PodTokens answers "which pod presented this token" for the token endpoint, and remembers
// each answer for a short time, as Access does, so that a pod asking for its session's token
// often costs the API server one TokenReview per TTL.
type PodTokens struct {
	authenticate AuthenticateFunc
	answers      *answerCache
	// inflight bounds the reviews under way, nil for no bound (see ErrBusy).
	inflight chan struct{}
}

// ErrBusy says that as many reviews as allowed are under way: the caller should try again
// shortly. It keeps a flood of new tokens from queueing without end behind the client's rate
// limit, and from delaying callers whose answer is cached, who never wait for a slot.
var ErrBusy = errors.New("too many token reviews under way")

// NewPodTokens returns a PodTokens that asks authenticate on a cache miss, at most
// maxInFlight at a time (0 means no bound). authenticate must accept only tokens of the
// endpoint's audience: TokenReviewer(c, audience).
func NewPodTokens(authenticate AuthenticateFunc, maxInFlight int, opts AccessOptions) (*PodTokens, error) {
	answers, err := newAnswerCache(opts)
	if err != nil {
		return nil, err
	}
	p := &PodTokens{authenticate: authenticate, answers: answers}
	if maxInFlight > 0 {
		p.inflight = make(chan struct{}, maxInFlight)
	}
	return p, nil
}

// podAnswer is a cached answer. id is as much of the identity as the token showed: empty for
// Unauthenticated, without a pod for Forbidden.
type podAnswer struct {
	decision Decision
	id       PodIdentity
}

// Review decides who presented token: Unauthenticated when the API server did not accept it
// for the audience, Forbidden when it did but the token is not bound to a pod, Allowed with
// the pod otherwise. Errors (the API server unreachable) are not cached.
func (p *PodTokens) Review(ctx context.Context, token string) (Decision, PodIdentity, error) {
	key := p.answers.key(token, "pod")
	if v, ok := p.answers.get(key); ok {
		cached := v.(podAnswer)
		return cached.decision, cached.id, nil
	}

	if p.inflight != nil {
		select {
		case p.inflight <- struct{}{}:
			defer func() { <-p.inflight }()
		default:
			return Unauthenticated, PodIdentity{}, ErrBusy
		}
	}
	u, ok, err := p.authenticate(ctx, token)
	if err != nil {
		return Unauthenticated, PodIdentity{}, fmt.Errorf("failed to review token: %w", err)
	}
	a := podAnswer{decision: Unauthenticated}
	if ok {
		a.id, ok = podIdentityOf(u)
		a.decision = Forbidden
		if ok {
			a.decision = Allowed
		}
	}
	p.answers.add(key, a)
	return a.decision, a.id, nil
}

// maxTokenBytes bounds a bearer token worth a review. Projected ServiceAccount tokens are
// about a kilobyte.
const maxTokenBytes = 8 << 10

// plausibleToken says whether token could be a ServiceAccount token for audience that has
// not expired at now, by reading its claims without checking its signature. It only spares
// the API server a review of what it would refuse anyway: a token that passes is still
// reviewed, and decides nothing by itself.
func plausibleToken(token, audience string, now time.Time) bool {
	if len(token) > maxTokenBytes {
		return false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Audience json.RawMessage `json:"aud"`
		Expiry   float64         `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Expiry <= float64(now.Unix()) {
		return false
	}
	// "aud" is a string or an array of strings.
	var one string
	if json.Unmarshal(claims.Audience, &one) == nil {
		return one == audience
	}
	var many []string
	return json.Unmarshal(claims.Audience, &many) == nil && slices.Contains(many, audience)
}
