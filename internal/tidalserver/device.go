package tidalserver

import (
	"net/http"
	"strings"
	"time"
)

// deviceState is where a device authorization stands.
type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDenied
	deviceExchanged
)

// deviceAuth is a device authorization (RFC 8628) between its start and its exchange.
type deviceAuth struct {
	deviceCode string
	userCode   string
	clientID   string
	scopes     []string
	expiresAt  time.Time
	interval   time.Duration
	lastPoll   time.Time
	state      deviceState
	user       User
}

// pollJitter is how much sooner than the interval a poll may come without slow_down:
// timers of clients fire a little early or late, and a poll is not "too fast" for that.
const pollJitter = 100 * time.Millisecond

// deviceAuthorizationResponse is TIDAL's answer to a device authorization: camelCase, unlike
// the token endpoint's.
type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"deviceCode"`
	UserCode                string `json:"userCode"`
	VerificationURI         string `json:"verificationUri"`
	VerificationURIComplete string `json:"verificationUriComplete"`
	ExpiresIn               int64  `json:"expiresIn"`
	Interval                int64  `json:"interval"`
}

// handleDeviceAuthorization serves POST /v1/oauth2/device_authorization.
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, req *Request) {
	resp, oerr := s.deviceAuthorization(req)
	if oerr != nil {
		s.writeOAuthError(w, req, req.Endpoint, oerr)
		return
	}
	s.count(req.ClientID, req.Endpoint, "ok")
	writeToken(w, resp)
}

func (s *Server) deviceAuthorization(req *Request) (*deviceAuthorizationResponse, *oauthError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, oerr := s.authenticateClient(req, false)
	if oerr != nil {
		return nil, oerr
	}
	d := &deviceAuth{
		deviceCode: newUUID(),
		clientID:   c.ID,
		scopes:     grantScopes(strings.Fields(req.form.Get("scope")), c.Scopes),
		expiresAt:  s.cfg.Now().Add(s.cfg.DeviceCodeLifetime),
		interval:   s.cfg.DevicePollInterval,
	}
	for d.userCode == "" || s.userCodes[d.userCode] != nil {
		d.userCode = newUserCode()
	}
	s.devices[d.deviceCode] = d
	s.userCodes[d.userCode] = d
	return &deviceAuthorizationResponse{
		DeviceCode:              d.deviceCode,
		UserCode:                d.userCode,
		VerificationURI:         s.cfg.VerificationURI,
		VerificationURIComplete: s.cfg.VerificationURI + "/" + d.userCode,
		ExpiresIn:               int64(s.cfg.DeviceCodeLifetime / time.Second),
		Interval:                int64(d.interval / time.Second),
	}, nil
}

// deviceCodeGrantLocked answers a poll of grant_type=urn:ietf:params:oauth:grant-type:
// device_code (RFC 8628, 3.5). The scopes are those of the device authorization: the scope
// a client sends again with the poll changes nothing. Callers hold s.mu.
func (s *Server) deviceCodeGrantLocked(c *clientState, req *Request) (*tokenResponse, *oauthError) {
	code := req.form.Get("device_code")
	if code == "" {
		return nil, errRequest("Missing device_code")
	}
	d := s.devices[code]
	if d == nil || d.clientID != c.ID {
		return nil, errGrantUnknown
	}
	now := s.cfg.Now()
	if !now.Before(d.expiresAt) {
		return nil, errExpiredDevice
	}
	last := d.lastPoll
	d.lastPoll = now
	if !last.IsZero() && now.Sub(last) < d.interval-pollJitter {
		d.interval += 5 * time.Second
		return nil, errSlowDown
	}

	switch d.state {
	case devicePending:
		return nil, errAuthorizationPending
	case deviceDenied:
		return nil, errAccessDenied
	case deviceExchanged:
		return nil, errGrantExpired
	}
	d.state = deviceExchanged
	g := s.newGrantLocked(c, d.user, d.scopes)
	g.current = s.mintRefresh(c, g)
	s.refresh[g.current] = &refreshRecord{grant: g}
	resp := s.grantResponseLocked(c, g, g.scopes)
	resp.RefreshToken = g.current
	return resp, nil
}

// ApproveDevice approves a pending device authorization for user, as the user entering the
// code at link.tidal.com would. The next poll of the device code gets tokens.
func (s *Server) ApproveDevice(userCode string, user User) error {
	if user.ID <= 0 {
		return ErrInvalidSpec
	}
	return s.settleDevice(userCode, func(d *deviceAuth) {
		d.state, d.user = deviceApproved, user
	})
}

// DenyDevice denies a pending device authorization: its polls answer access_denied.
func (s *Server) DenyDevice(userCode string) error {
	return s.settleDevice(userCode, func(d *deviceAuth) { d.state = deviceDenied })
}

func (s *Server) settleDevice(userCode string, settle func(*deviceAuth)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.userCodes[strings.ToUpper(strings.TrimSpace(userCode))]
	if d == nil {
		return ErrUnknownUserCode
	}
	if d.state != devicePending || !s.cfg.Now().Before(d.expiresAt) {
		return ErrDeviceNotLive
	}
	if c := s.clients[d.clientID]; c == nil || c.revoked {
		return ErrUnknownClient
	}
	settle(d)
	return nil
}
