package tidalserver

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Grant types of the token endpoint.
const (
	grantRefresh           = "refresh_token"
	grantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	grantClientCredentials = "client_credentials"
)

// grantNames are the short names of grant types in outcome keys.
var grantNames = map[string]string{
	grantRefresh:           "refresh_token",
	grantDeviceCode:        "device_code",
	grantClientCredentials: "client_credentials",
}

// tokenResponse is a successful token endpoint answer: snake_case, but clientName and the
// user object are camelCase, as TIDAL sends them.
type tokenResponse struct {
	Scope        string    `json:"scope"`
	User         *userJSON `json:"user,omitempty"`
	ClientName   string    `json:"clientName"`
	TokenType    string    `json:"token_type"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	ExpiresIn    int64     `json:"expires_in"`
	UserID       int64     `json:"user_id,omitempty"`
}

// userJSON is the user object of a token answer. TIDAL sends more fields, most of them null
// for accounts made through the apps; these are the ones clients read.
type userJSON struct {
	UserID             int64   `json:"userId"`
	Email              *string `json:"email"`
	CountryCode        string  `json:"countryCode"`
	FullName           *string `json:"fullName"`
	FirstName          *string `json:"firstName"`
	LastName           *string `json:"lastName"`
	Nickname           *string `json:"nickname"`
	Username           string  `json:"username"`
	ChannelID          int64   `json:"channelId"`
	ParentID           int64   `json:"parentId"`
	AcceptedEULA       bool    `json:"acceptedEULA"`
	Created            int64   `json:"created"`
	Updated            int64   `json:"updated"`
	AccountLinkCreated bool    `json:"accountLinkCreated"`
	EmailVerified      bool    `json:"emailVerified"`
	NewUser            bool    `json:"newUser"`
}

func newUserJSON(g *grant) *userJSON {
	u := &userJSON{
		UserID:       g.user.ID,
		CountryCode:  g.user.CountryCode,
		Username:     g.user.Username,
		ChannelID:    channelID,
		AcceptedEULA: true,
		Created:      g.created.UnixMilli(),
		Updated:      g.created.UnixMilli(),
	}
	if g.user.Email != "" {
		email := g.user.Email
		u.Email, u.EmailVerified = &email, true
	}
	return u
}

// handleToken serves POST /v1/oauth2/token.
func (s *Server) handleToken(w http.ResponseWriter, req *Request) {
	op := opName(req)
	resp, oerr := s.token(req)
	if oerr != nil {
		s.writeOAuthError(w, req, op, oerr)
		return
	}
	s.count(req.ClientID, op, "ok")
	writeToken(w, resp)
}

// token authenticates the client and runs the grant the request asks for.
func (s *Server) token(req *Request) (*tokenResponse, *oauthError) {
	grantType := req.form.Get("grant_type")
	if grantType == "" {
		return nil, errRequest("Missing grant_type")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, oerr := s.authenticateClient(req, true)
	if oerr != nil {
		return nil, oerr
	}
	switch grantType {
	case grantRefresh:
		return s.refreshGrantLocked(c, req)
	case grantDeviceCode:
		return s.deviceCodeGrantLocked(c, req)
	case grantClientCredentials:
		return s.clientCredentialsGrantLocked(c, req)
	default:
		// authorization_code needs TIDAL's login pages and update_client moves a session to
		// another client; neither is served here.
		return nil, errGrantType
	}
}

// refreshGrantLocked answers grant_type=refresh_token: a new access token for the grant, a
// new refresh token only under rotation. Callers hold s.mu.
func (s *Server) refreshGrantLocked(c *clientState, req *Request) (*tokenResponse, *oauthError) {
	token := req.form.Get("refresh_token")
	if token == "" {
		return nil, errRequest("Missing refresh_token")
	}
	rec := s.refresh[token]
	if rec == nil || rec.grant.clientID != c.ID {
		return nil, errGrantUnknown
	}
	g := rec.grant
	if g.revoked {
		return nil, errGrantRevoked
	}
	now := s.cfg.Now()
	if !rec.retiredAt.IsZero() && !now.Before(rec.retiredAt.Add(s.rotation.Grace)) {
		// A retired token used after its grace period: either a client that lost the new
		// token or a thief replaying an old one.
		if s.rotation.RevokeOnReuse {
			g.revoked = true
		}
		return nil, errGrantRevoked
	}

	scopes := grantScopes(strings.Fields(req.form.Get("scope")), g.scopes)
	resp := s.grantResponseLocked(c, g, scopes)
	if s.rotation.Enabled && rec.retiredAt.IsZero() {
		s.rotateLocked(c, g, rec, now)
	}
	if g.current != token {
		// Under rotation, and within the grace period of a retired token, the answer carries
		// the grant's current token.
		resp.RefreshToken = g.current
	}
	return resp, nil
}

// rotateLocked retires the current refresh token of a grant and issues a new one.
func (s *Server) rotateLocked(c *clientState, g *grant, rec *refreshRecord, now time.Time) {
	rec.retiredAt = now
	g.current = s.mintRefresh(c, g)
	s.refresh[g.current] = &refreshRecord{grant: g}
}

// grantResponseLocked issues an access token of a grant and builds the answer, without a
// refresh token. Callers hold s.mu.
func (s *Server) grantResponseLocked(c *clientState, g *grant, scopes []string) *tokenResponse {
	token, _ := s.issueAccessLocked(c, g, scopes)
	return &tokenResponse{
		Scope:       strings.Join(scopes, " "),
		User:        newUserJSON(g),
		ClientName:  c.Name,
		TokenType:   "Bearer",
		AccessToken: token,
		ExpiresIn:   int64(c.AccessTokenLifetime / time.Second),
		UserID:      g.user.ID,
	}
}

// clientCredentialsGrantLocked answers grant_type=client_credentials, which only clients
// with a secret may use: an access token with no user and, as TIDAL.md says of developer
// apps, no refresh token. Callers hold s.mu.
func (s *Server) clientCredentialsGrantLocked(c *clientState, req *Request) (*tokenResponse,
	*oauthError) {
	if c.Secret == "" {
		return nil, errNotConfidential
	}
	var scopes []string
	for _, r := range strings.Fields(req.form.Get("scope")) {
		if slices.Contains(c.Scopes, r) && !slices.Contains(scopes, r) {
			scopes = append(scopes, r)
		}
	}
	token, _ := s.issueAccessLocked(c, nil, scopes)
	return &tokenResponse{
		Scope:       strings.Join(scopes, " "),
		ClientName:  c.Name,
		TokenType:   "Bearer",
		AccessToken: token,
		ExpiresIn:   int64(c.AccessTokenLifetime / time.Second),
	}, nil
}
