package tidalserver

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors of the test-control methods.
var (
	ErrUnknownClient   = errors.New("unknown or revoked client")
	ErrUnknownGrant    = errors.New("unknown refresh token")
	ErrUnknownUserCode = errors.New("unknown user code")
	ErrDeviceNotLive   = errors.New("device code is expired or no longer pending")
	ErrTokenInUse      = errors.New("refresh token value is already in use")
	ErrInvalidSpec     = errors.New("invalid grant specification")
)

// channelID and partnerID are what /v1/sessions answers for TIDAL's direct customers.
const (
	channelID = 1
	partnerID = 1
)

// User is a TIDAL account.
type User struct {
	// ID is TIDAL's user id, a positive number.
	ID int64 `json:"user_id"`
	// CountryCode is the account's country, e.g. "US"; empty means "US".
	CountryCode string `json:"country_code,omitempty"`
	// Username is the account's user name, often its e-mail address.
	Username string `json:"username,omitempty"`
	// Email is the account's e-mail address; empty means none.
	Email string `json:"email,omitempty"`
}

func (u User) withDefaults() User {
	if u.CountryCode == "" {
		u.CountryCode = "US"
	}
	if u.Username == "" {
		u.Username = fmt.Sprintf("user%d", u.ID)
	}
	return u
}

type clientState struct {
	Client
	revoked bool
}

// grant is what a login leaves behind: a user, a client and scopes. Its refresh tokens
// and access tokens stay valid until it is revoked.
type grant struct {
	clientID  string
	user      User
	scopes    []string
	sessionID string
	created   time.Time
	revoked   bool
	// current is the refresh token a refresh answers under rotation.
	current string
}

type refreshRecord struct {
	grant *grant
	// retiredAt is when rotation replaced this token; zero while it is current.
	retiredAt time.Time
}

type accessRecord struct {
	clientID string
	// grant is nil for tokens of the client credentials grant, which have no user.
	grant     *grant
	scopes    []string
	expiresAt time.Time
}

// GrantSpec describes a login made outside the server, for IssueGrant.
type GrantSpec struct {
	// ClientID is the client the user logged in to; required.
	ClientID string
	// UserID is the user's TIDAL id; required.
	UserID int64
	// CountryCode defaults to "US".
	CountryCode string
	// Username defaults to "user<UserID>".
	Username string
	// Scopes defaults to all the client's scopes; others are dropped.
	Scopes []string
	// RefreshToken is the refresh token to issue, e.g. a canary string a test looks for in
	// logs; empty means a new JWT-shaped one.
	RefreshToken string
}

// IssueGrant records a login of a user to a client, as if the user had logged in, and
// returns its refresh token.
func (s *Server) IssueGrant(spec GrantSpec) (string, error) {
	if spec.UserID <= 0 || strings.ContainsAny(spec.RefreshToken, " \t\r\n") {
		return "", ErrInvalidSpec
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[spec.ClientID]
	if c == nil || c.revoked {
		return "", ErrUnknownClient
	}
	if spec.RefreshToken != "" && s.refresh[spec.RefreshToken] != nil {
		return "", ErrTokenInUse
	}
	user := User{ID: spec.UserID, CountryCode: spec.CountryCode, Username: spec.Username}
	g := s.newGrantLocked(c, user, grantScopes(spec.Scopes, c.Scopes))
	if spec.RefreshToken != "" {
		g.current = spec.RefreshToken
	} else {
		g.current = s.mintRefresh(c, g)
	}
	s.refresh[g.current] = &refreshRecord{grant: g}
	return g.current, nil
}

// newGrantLocked starts a grant without a refresh token. Callers hold s.mu.
func (s *Server) newGrantLocked(c *clientState, user User, scopes []string) *grant {
	return &grant{
		clientID:  c.ID,
		user:      user.withDefaults(),
		scopes:    scopes,
		sessionID: newUUID(),
		created:   s.cfg.Now(),
	}
}

// RevokeGrant revokes the grant of a refresh token, as a password change or a logout on
// TIDAL's side does: its refresh and access tokens are rejected from then on.
func (s *Server) RevokeGrant(refreshToken string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.refresh[refreshToken]
	if rec == nil {
		return ErrUnknownGrant
	}
	rec.grant.revoked = true
	return nil
}

// SetCountry moves the account behind a refresh token's grant to another country, as TIDAL
// does when a subscriber moves: its sessions, token answers and /v2/users/me report the new
// country from then on.
func (s *Server) SetCountry(refreshToken, countryCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.refresh[refreshToken]
	if rec == nil {
		return ErrUnknownGrant
	}
	rec.grant.user.CountryCode = countryCode
	return nil
}

// RevokeClient revokes a client id, as TIDAL does with leaked or retired ids: every
// request of the client answers invalid_client from then on.
func (s *Server) RevokeClient(clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[clientID]
	if c == nil {
		return ErrUnknownClient
	}
	c.revoked = true
	return nil
}

// SetRotation changes the refresh-token rotation mode for the refreshes that follow.
func (s *Server) SetRotation(r Rotation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotation = r
}

// issueAccessLocked mints an access token for a grant (nil for client credentials) and
// remembers it. Callers hold s.mu.
func (s *Server) issueAccessLocked(c *clientState, g *grant, scopes []string) (string, time.Time) {
	now := s.cfg.Now()
	s.issued++
	if s.issued%256 == 0 {
		s.sweepLocked(now)
	}
	expires := now.Add(c.AccessTokenLifetime)
	token := s.mintAccess(c, g, scopes, now, expires)
	s.access[token] = &accessRecord{clientID: c.ID, grant: g, scopes: scopes, expiresAt: expires}
	return token, expires
}

// sweepLocked forgets access tokens and device codes that expired a day ago, so a long demo
// does not grow without bound; within that day they still answer "expired", not "unknown".
func (s *Server) sweepLocked(now time.Time) {
	cutoff := now.Add(-24 * time.Hour)
	for token, rec := range s.access {
		if rec.expiresAt.Before(cutoff) {
			delete(s.access, token)
		}
	}
	for code, d := range s.devices {
		if d.expiresAt.Before(cutoff) {
			delete(s.devices, code)
			delete(s.userCodes, d.userCode)
		}
	}
}

// grantScopes is what a client asking for requested may be granted: the requested scopes
// that allowed holds, or all of allowed when none of them is. TIDAL accepts scope strings it
// does not know (tools log in sending "r_usr+w_usr+w_sub" as one word); RFC 6749 (3.3) lets
// a server grant other scopes than asked, and the answer's scope field says which.
func grantScopes(requested, allowed []string) []string {
	var out []string
	for _, r := range requested {
		if slices.Contains(allowed, r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return append([]string(nil), allowed...)
	}
	return out
}
