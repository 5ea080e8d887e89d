package tidalserver

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// session is what an access token stands for, copied out of the server's state.
type session struct {
	clientID     string
	clientName   string
	numericID    int64
	developerApp bool
	// hasUser is false for tokens of the client credentials grant.
	hasUser   bool
	user      User
	sessionID string
}

// authorize checks the bearer token of an API request. The order of the checks is the
// order of their causes: no token, not ours, client gone, grant revoked, expired.
func (s *Server) authorize(req *Request) (*session, *apiError) {
	if req.bearer == "" {
		return nil, errTokenMissing
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.access[req.bearer]
	if rec == nil {
		return nil, errTokenUnknown
	}
	c := s.clients[rec.clientID]
	switch {
	case c.revoked:
		return nil, errTokenClient
	case rec.grant != nil && rec.grant.revoked:
		return nil, errTokenRevoked
	case !s.cfg.Now().Before(rec.expiresAt):
		return nil, errTokenExpired
	}
	out := &session{clientID: c.ID, clientName: c.Name, numericID: c.NumericID,
		developerApp: c.DeveloperApp}
	if rec.grant != nil {
		out.hasUser, out.user, out.sessionID = true, rec.grant.user, rec.grant.sessionID
	}
	return out, nil
}

// sessionResponse is TIDAL's answer to GET /v1/sessions.
type sessionResponse struct {
	SessionID   string        `json:"sessionId"`
	UserID      int64         `json:"userId"`
	CountryCode string        `json:"countryCode"`
	ChannelID   int64         `json:"channelId"`
	PartnerID   int64         `json:"partnerId"`
	Client      sessionClient `json:"client"`
}

type sessionClient struct {
	ID                       int64   `json:"id"`
	Name                     string  `json:"name"`
	AuthorizedForOffline     bool    `json:"authorizedForOffline"`
	AuthorizedForOfflineDate *string `json:"authorizedForOfflineDate"`
}

// handleSessions serves GET /v1/sessions, with which clients validate a stored session.
func (s *Server) handleSessions(w http.ResponseWriter, req *Request) {
	sess, aerr := s.authorize(req)
	if aerr == nil && (!sess.hasUser || sess.developerApp) {
		aerr = errNoSession
	}
	if aerr != nil {
		s.writeAPIError(w, req, aerr)
		return
	}
	s.count(req.ClientID, req.Endpoint, "ok")
	writeJSON(w, http.StatusOK, sessionResponse{
		SessionID:   sess.sessionID,
		UserID:      sess.user.ID,
		CountryCode: sess.user.CountryCode,
		ChannelID:   channelID,
		PartnerID:   partnerID,
		Client:      sessionClient{ID: sess.numericID, Name: sess.clientName},
	})
}

// handlePing serves GET /v1/ping, whose Date header TIDAL's web SDK sets its clock by.
func (s *Server) handlePing(w http.ResponseWriter, req *Request) {
	s.count(req.ClientID, req.Endpoint, "ok")
	writeJSON(w, http.StatusOK, struct{}{})
}

// handleUsersMe serves GET /v2/users/me of the openapi host, the session check for tokens of
// developer apps. It answers JSON:API documents; the error bodies are JSON:API's generic
// shape, as TIDAL's exact ones are not documented.
func (s *Server) handleUsersMe(w http.ResponseWriter, req *Request) {
	sess, aerr := s.authorize(req)
	switch {
	case aerr != nil:
		s.writeJSONAPIError(w, req, aerr.Status, "UNAUTHORIZED", aerr.UserMessage)
		return
	case !sess.hasUser:
		s.writeJSONAPIError(w, req, http.StatusForbidden, "FORBIDDEN",
			"The token does not belong to a user")
		return
	}
	s.count(req.ClientID, req.Endpoint, "ok")
	doc := map[string]any{
		"data": map[string]any{
			"id":   strconv.FormatInt(sess.user.ID, 10),
			"type": "users",
			"attributes": map[string]any{
				"username": sess.user.Username,
				"country":  sess.user.CountryCode,
			},
		},
		"links": map[string]string{"self": "/users/me"},
	}
	writeJSONAPI(w, http.StatusOK, doc)
}

func (s *Server) writeJSONAPIError(w http.ResponseWriter, req *Request, status int,
	code, detail string) {
	s.count(req.ClientID, req.Endpoint, strconv.Itoa(status))
	writeJSONAPI(w, status, map[string]any{"errors": []map[string]string{{
		"id": newUUID(), "status": strconv.Itoa(status), "code": code, "detail": detail,
	}}})
}

func writeJSONAPI(w http.ResponseWriter, status int, doc any) {
	body, _ := json.Marshal(doc) // maps of strings always marshal
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
