package tidalserver

import (
	"net/http"
	"strconv"
)

// oauthError is an error answer of the auth host:
// {"status":400,"error":"invalid_grant","sub_status":11003,"error_description":"..."}.
// sub_status is left out where TIDAL.md knows none.
type oauthError struct {
	Status      int    `json:"status"`
	Error       string `json:"error"`
	SubStatus   int    `json:"sub_status,omitempty"`
	Description string `json:"error_description"`
}

// apiError is an error answer of the v1 API host:
// {"status":401,"subStatus":11003,"userMessage":"..."}.
type apiError struct {
	Status      int    `json:"status"`
	SubStatus   int    `json:"subStatus"`
	UserMessage string `json:"userMessage"`
}

// Token endpoint answers, one per row of TIDAL.md's table and a few RFC 6749 ones.
var (
	errAuthorizationPending = &oauthError{400, "authorization_pending", 1002,
		"Device Authorization code is not authorized yet"}
	errSlowDown      = &oauthError{400, "slow_down", 0, "Polling too frequently"}
	errExpiredDevice = &oauthError{400, "expired_token", 0, "Device code has expired"}
	errAccessDenied  = &oauthError{400, "access_denied", 0, "The user denied the authorization"}
	// errGrantExpired answers a device code that was already exchanged.
	errGrantExpired = &oauthError{400, "invalid_grant", 11003,
		"The token has expired. (Expired on time)"}
	// errGrantRevoked is what TIDAL answers for a grant revoked on its side (password change,
	// logout everywhere); TIDAL.md names the description.
	errGrantRevoked = &oauthError{400, "invalid_grant", 11003,
		"The token has expired. (Bad subject token version)"}
	// errGrantUnknown answers a token or device code the server never issued, or issued to
	// another client. TIDAL's sub-status for it is not documented; 11002 is the one its API
	// host uses for a token with an invalid payload.
	errGrantUnknown    = &oauthError{400, "invalid_grant", 11002, "Token has invalid payload"}
	errClientUnknown   = &oauthError{401, "invalid_client", 1005, "Client not found"}
	errClientSecret    = &oauthError{401, "invalid_client", 1005, "Invalid client credentials"}
	errGrantType       = &oauthError{400, "unsupported_grant_type", 0, "Unsupported grant type"}
	errNotConfidential = &oauthError{400, "unauthorized_client", 0,
		"Client is not allowed to use this grant type"}
)

// errRequest is an invalid_request answer; description is fixed text, never request data.
func errRequest(description string) *oauthError {
	return &oauthError{Status: 400, Error: "invalid_request", Description: description}
}

// API host answers.
var (
	errTokenMissing = &apiError{401, 6004, "Invalid token"}
	errTokenUnknown = &apiError{401, 11002, "Token has invalid payload"}
	errTokenExpired = &apiError{401, 11003, "The token has expired. (Expired on time)"}
	errTokenRevoked = &apiError{401, 11003, "The token has expired. (Bad subject token version)"}
	errTokenClient  = &apiError{401, 8003, "Client not found"}
	// errNoSession answers v1 calls with a token that has no TIDAL session behind it: tokens
	// of developer apps and of the client credentials grant. TIDAL.md says they get 403; the
	// body is not documented.
	errNoSession = &apiError{403, 6001, "Session does not exist"}
)

// writeOAuthError writes an auth host error answer and counts it under op.
func (s *Server) writeOAuthError(w http.ResponseWriter, req *Request, op string, e *oauthError) {
	s.count(req.ClientID, op, e.Error)
	if e.Error == "invalid_client" && req.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="tidal"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.Status, e)
}

// writeAPIError writes a v1 API error answer and counts it under the endpoint.
func (s *Server) writeAPIError(w http.ResponseWriter, req *Request, e *apiError) {
	s.count(req.ClientID, req.Endpoint, strconv.Itoa(e.Status)+"/"+strconv.Itoa(e.SubStatus))
	writeJSON(w, e.Status, e)
}
