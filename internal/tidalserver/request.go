package tidalserver

import (
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// readForm reads the form body of an auth host request strictly: the form content type
// (a charset parameter is fine: TIDAL's web SDK sends one), a bounded body, no parameter
// twice (RFC 6749, 3.1 and 3.2). Parameters it does not know are ignored, as RFC 6749
// requires; TIDAL's web SDK sends client_unique_key. A failure is kept in req.parseErr.
func (s *Server) readForm(w http.ResponseWriter, req *Request) {
	r := req.HTTP
	req.basicID, req.basicPW, req.basic = r.BasicAuth()

	media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || media != "application/x-www-form-urlencoded" {
		req.parseErr = errRequest("Content-Type must be application/x-www-form-urlencoded")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			req.parseErr = &oauthError{Status: http.StatusRequestEntityTooLarge,
				Error: "invalid_request", Description: "Request body is too large"}
			return
		}
		req.parseErr = errRequest("Request body could not be read")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		req.parseErr = errRequest("Request body is not a valid form")
		return
	}
	for _, values := range form {
		if len(values) > 1 {
			req.parseErr = errRequest("A parameter is repeated")
			return
		}
	}
	req.form = form

	req.ClientID = form.Get("client_id")
	if req.basic {
		req.ClientID = unescapeBasic(req.basicID)
	}
	if r.Header.Get("Authorization") != "" && !req.basic {
		req.parseErr = errRequest("Authorization header is not Basic")
	}
}

// unescapeBasic undoes the form encoding RFC 6749 (2.3.1) asks of Basic credentials. Many
// clients do not encode, and TIDAL's ids and secrets are base64 ('+', '/', '='), so a
// value that does not decode cleanly is taken as it is.
func unescapeBasic(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	if u, err := url.QueryUnescape(v); err == nil {
		return u
	}
	return v
}

// readBearer finds the bearer token of an API host request and, when the server issued it,
// the client it belongs to.
func (s *Server) readBearer(req *Request) {
	scheme, token, ok := strings.Cut(req.HTTP.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return
	}
	req.bearer = strings.TrimSpace(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.access[req.bearer]; rec != nil {
		req.ClientID = rec.clientID
	}
}

// authenticateClient finds the client of an auth host request and checks its secret.
// requireSecret is false on the device authorization endpoint, where TIDAL's device clients
// (tidalapi, tiddl) send only client_id and scope although their client has a secret.
// Callers hold s.mu.
func (s *Server) authenticateClient(req *Request, requireSecret bool) (*clientState, *oauthError) {
	id, secret := req.form.Get("client_id"), req.form.Get("client_secret")
	if req.basic {
		// Clients such as tiddl send client_id in the form and Basic auth together.
		if id != "" && id != req.ClientID {
			return nil, errRequest("client_id does not match the Authorization header")
		}
		id = req.ClientID
		if secret != "" && secret != req.basicPW && secret != unescapeBasic(req.basicPW) {
			return nil, errRequest("client_secret does not match the Authorization header")
		}
		secret = req.basicPW
	}
	if id == "" {
		return nil, errRequest("Missing client_id")
	}
	c := s.clients[id]
	if c == nil || c.revoked {
		return nil, errClientUnknown
	}
	switch {
	case c.Secret == "" && secret != "":
		// A public client has no secret: sending one is a misconfigured client.
		return nil, errClientSecret
	case c.Secret == "":
		return c, nil
	case secret == "" && !requireSecret:
		return c, nil
	case secret == "":
		return nil, errClientSecret
	case equal(secret, c.Secret) || (req.basic && equal(unescapeBasic(secret), c.Secret)):
		return c, nil
	default:
		return nil, errClientSecret
	}
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
