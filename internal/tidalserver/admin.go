package tidalserver

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"time"
)

// AdminHandler returns the test-control surface as JSON over HTTP, for tests and demo
// scripts in other processes. It is no part of TIDAL's surface: serve it on its own
// listener, on loopback only. It refuses requests from non-loopback addresses as well.
//
//	POST /grants          {"client_id","user_id","country_code","username","scopes","refresh_token"}
//	                      → 201 {"refresh_token": "..."}
//	POST /grants/revoke   {"refresh_token"}
//	POST /clients/revoke  {"client_id"}
//	POST /device/approve  {"user_code","user_id","country_code","username","email"}
//	POST /device/deny     {"user_code"}
//	POST /faults          {"endpoint","client_id","status","body","headers","delay":"1s","count",
//	                       "drop_answer"}
//	POST /reset-faults
//	POST /rotation        {"enabled","grace":"30s","revoke_on_reuse"}
//	GET  /stats           → Stats
//	POST /reset-stats
//
// Errors answer {"error": "..."} with 400 (bad request), 404 (unknown client, grant or user
// code) or 409 (device code no longer pending, refresh token value in use).
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /grants", s.adminIssueGrant)
	mux.HandleFunc("POST /grants/revoke", s.adminRevokeGrant)
	mux.HandleFunc("POST /clients/revoke", s.adminRevokeClient)
	mux.HandleFunc("POST /device/approve", s.adminApproveDevice)
	mux.HandleFunc("POST /device/deny", s.adminDenyDevice)
	mux.HandleFunc("POST /faults", s.adminInjectFault)
	mux.HandleFunc("POST /reset-faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetFaults()
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("POST /rotation", s.adminSetRotation)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /reset-stats", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetStats()
		writeJSON(w, http.StatusOK, struct{}{})
	})
	return loopbackOnly(mux)
}

// loopbackOnly refuses requests that do not come from a loopback address.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeAdminError(w, http.StatusForbidden, errors.New("admin API is for loopback only"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) adminIssueGrant(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ClientID     string   `json:"client_id"`
		UserID       int64    `json:"user_id"`
		CountryCode  string   `json:"country_code"`
		Username     string   `json:"username"`
		Scopes       []string `json:"scopes"`
		RefreshToken string   `json:"refresh_token"`
	}
	if !decodeAdmin(w, r, &in) {
		return
	}
	token, err := s.IssueGrant(GrantSpec{ClientID: in.ClientID, UserID: in.UserID,
		CountryCode: in.CountryCode, Username: in.Username, Scopes: in.Scopes,
		RefreshToken: in.RefreshToken})
	if err != nil {
		writeAdminError(w, adminStatus(err), err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"refresh_token": token})
}

func (s *Server) adminRevokeGrant(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	if decodeAdmin(w, r, &in) {
		adminResult(w, s.RevokeGrant(in.RefreshToken))
	}
}

func (s *Server) adminRevokeClient(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ClientID string `json:"client_id"`
	}
	if decodeAdmin(w, r, &in) {
		adminResult(w, s.RevokeClient(in.ClientID))
	}
}

func (s *Server) adminApproveDevice(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserCode string `json:"user_code"`
		User
	}
	if decodeAdmin(w, r, &in) {
		adminResult(w, s.ApproveDevice(in.UserCode, in.User))
	}
}

func (s *Server) adminDenyDevice(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserCode string `json:"user_code"`
	}
	if decodeAdmin(w, r, &in) {
		adminResult(w, s.DenyDevice(in.UserCode))
	}
}

func (s *Server) adminInjectFault(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Endpoint string            `json:"endpoint"`
		ClientID string            `json:"client_id"`
		Status   int               `json:"status"`
		Body     string            `json:"body"`
		Headers  map[string]string `json:"headers"`
		Delay    string            `json:"delay"`
		Count    int               `json:"count"`
		Drop     bool              `json:"drop_answer"`
	}
	if !decodeAdmin(w, r, &in) {
		return
	}
	delay, err := optionalDuration(in.Delay)
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, err)
		return
	}
	err = s.InjectFault(Fault{Endpoint: in.Endpoint, ClientID: in.ClientID, Status: in.Status,
		Body: in.Body, Headers: in.Headers, Delay: delay, Count: in.Count, DropAnswer: in.Drop})
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct{}{})
}

func (s *Server) adminSetRotation(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Rotation
		Grace string `json:"grace"`
	}
	if !decodeAdmin(w, r, &in) {
		return
	}
	grace, err := optionalDuration(in.Grace)
	if err != nil || grace < 0 {
		writeAdminError(w, http.StatusBadRequest, errors.New("grace is not a duration"))
		return
	}
	in.Rotation.Grace = grace
	s.SetRotation(in.Rotation)
	writeJSON(w, http.StatusOK, struct{}{})
}

func optionalDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("a duration is not valid, e.g. 250ms or 2s")
	}
	return d, nil
}

// decodeAdmin reads a JSON body strictly: application/json, bounded, no unknown fields, one
// value. It answers the request itself when it returns false.
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || media != "application/json" {
		writeAdminError(w, http.StatusUnsupportedMediaType,
			errors.New("Content-Type must be application/json"))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, DefaultMaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeAdminError(w, http.StatusBadRequest, errors.New("body is not the expected JSON object"))
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeAdminError(w, http.StatusBadRequest, errors.New("body has more than one JSON value"))
		return false
	}
	return true
}

func adminResult(w http.ResponseWriter, err error) {
	if err != nil {
		writeAdminError(w, adminStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func adminStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownClient), errors.Is(err, ErrUnknownGrant),
		errors.Is(err, ErrUnknownUserCode):
		return http.StatusNotFound
	case errors.Is(err, ErrDeviceNotLive), errors.Is(err, ErrTokenInUse):
		return http.StatusConflict
	default:
		return http.StatusBadRequest
	}
}

// writeAdminError answers an admin error. Every message is fixed text or names a field: none
// carries a token.
func writeAdminError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
