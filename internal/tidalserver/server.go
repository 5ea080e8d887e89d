// Package tidalserver is a TIDAL-compatible server for tests and the demo: TIDAL's own
// servers cannot be reached from our machines, and this is what the operator, the contract
// tests and the demo talk to instead.
//
// One http.Handler serves the paths of TIDAL's hosts, which do not collide:
//
//	auth host      POST /v1/oauth2/token, POST /v1/oauth2/device_authorization
//	v1 API host    GET /v1/sessions, GET /v1/ping
//	openapi host   GET /v2/users/me
//
// so the auth base URL is http://HOST/v1/oauth2/, the API base http://HOST/v1/ and the
// openapi base http://HOST/v2/. Its answers follow /work/shared/TIDAL.md and TIDAL's own web
// SDK; where TIDAL's behaviour is not documented, the choice made is said in a comment.
//
// The test-control surface (IssueGrant, ApproveDevice, faults, rotation, Stats) is kept apart
// from TIDAL's: methods of Server, and AdminHandler for other processes.
package tidalserver

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Endpoint names, used by faults, interceptors and Stats.
const (
	EndpointToken               = "token"
	EndpointDeviceAuthorization = "device_authorization"
	EndpointSessions            = "sessions"
	EndpointPing                = "ping"
	EndpointUsersMe             = "users_me"
)

// route is one path of TIDAL's surface.
type route struct {
	endpoint string
	method   string
	// form says the request carries a form body (auth host); otherwise a bearer token may.
	form   bool
	handle func(s *Server, w http.ResponseWriter, req *Request)
}

var routes = map[string]route{
	"/v1/oauth2/token": {EndpointToken, http.MethodPost, true, (*Server).handleToken},
	"/v1/oauth2/device_authorization": {EndpointDeviceAuthorization, http.MethodPost, true,
		(*Server).handleDeviceAuthorization},
	"/v1/sessions": {EndpointSessions, http.MethodGet, false, (*Server).handleSessions},
	"/v1/ping":     {EndpointPing, http.MethodGet, false, (*Server).handlePing},
	"/v2/users/me": {EndpointUsersMe, http.MethodGet, false, (*Server).handleUsersMe},
}

// Server is a TIDAL-compatible server. It is an http.Handler for TIDAL's surface and safe
// for concurrent use.
type Server struct {
	cfg Config
	key []byte

	mu           sync.Mutex
	rotation     Rotation
	clients      map[string]*clientState // keys are fixed by New
	refresh      map[string]*refreshRecord
	access       map[string]*accessRecord
	devices      map[string]*deviceAuth // by device code
	userCodes    map[string]*deviceAuth
	faults       []*Fault
	interceptors []Interceptor
	issued       int

	statsMu sync.Mutex
	stats   Stats
}

// New returns a Server for cfg. It panics when cfg is invalid (see Config.Validate): a
// configuration is written by a test or checked by the command before.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic("tidalserver: " + err.Error())
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		key:       cfg.SigningKey,
		rotation:  cfg.Rotation,
		clients:   map[string]*clientState{},
		refresh:   map[string]*refreshRecord{},
		access:    map[string]*accessRecord{},
		devices:   map[string]*deviceAuth{},
		userCodes: map[string]*deviceAuth{},
		stats:     newStats(),
	}
	if len(s.key) == 0 {
		s.key = make([]byte, 32)
		_, _ = rand.Read(s.key)
	}
	for i, c := range cfg.Clients {
		if c.Scopes == nil {
			c.Scopes = DefaultScopes
		}
		c.Scopes = append([]string(nil), c.Scopes...)
		if c.NumericID == 0 {
			c.NumericID = int64(1000 + i)
		}
		if c.AccessTokenLifetime == 0 {
			c.AccessTokenLifetime = cfg.AccessTokenLifetime
		}
		s.clients[c.ID] = &clientState{Client: c}
	}
	return s
}

// Request is what an Interceptor sees of a request to TIDAL's surface.
type Request struct {
	// Endpoint is one of the Endpoint constants.
	Endpoint string
	// ClientID is the client the request claims (form or Basic auth) on the auth host, or
	// the client of its bearer token on the API hosts; empty when unknown.
	ClientID string
	// HTTP is the request; its body has already been read.
	HTTP *http.Request

	form     url.Values
	basic    bool
	basicID  string
	basicPW  string
	bearer   string
	received time.Time
	// parseErr is the answer to a request whose form could not be read; it is written
	// after the interceptors had their turn.
	parseErr *oauthError
}

// ServeHTTP serves TIDAL's surface.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	// TIDAL's web SDK sets its clock from this header; it must come from the same clock as
	// token expiry.
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))

	rt, ok := routes[r.URL.Path]
	if !ok {
		s.count("", "unknown", "404")
		writeJSON(w, http.StatusNotFound, apiError{Status: 404, SubStatus: 0,
			UserMessage: "Not found"})
		return
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		s.count("", rt.endpoint, "405")
		w.Header().Set("Allow", allowed(rt.method))
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Status: 405,
			UserMessage: "Method not allowed"})
		return
	}

	req := &Request{Endpoint: rt.endpoint, HTTP: r, received: now}
	if rt.form {
		s.readForm(w, req)
	} else {
		s.readBearer(req)
	}
	s.countRequest(req)

	answered, drop := s.intercept(w, req)
	if answered {
		return
	}
	if drop {
		// The work is done and the answer lost: aborting the handler closes the connection
		// without a response.
		defer panic(http.ErrAbortHandler)
		w = &discardAnswer{header: http.Header{}}
	}
	if req.parseErr != nil {
		s.writeOAuthError(w, req, opName(req), req.parseErr)
		return
	}
	rt.handle(s, w, req)
}

func allowed(method string) string {
	if method == http.MethodGet {
		return "GET, HEAD"
	}
	return method
}

// opName is the first half of an outcome key: the grant type's short name on the token
// endpoint, the endpoint's name elsewhere.
func opName(req *Request) string {
	if req.Endpoint == EndpointToken {
		if short, ok := grantNames[req.form.Get("grant_type")]; ok {
			return short
		}
	}
	return req.Endpoint
}

// writeJSON writes v as a JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"status":500,"subStatus":0,"userMessage":"Internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeToken writes a token endpoint answer, which no cache may keep (RFC 6749, 5.1).
func writeToken(w http.ResponseWriter, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, v)
}
