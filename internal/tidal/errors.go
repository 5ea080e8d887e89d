package tidal

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says what a caller should do about a failed TIDAL call.
type Kind string

const (
	// Transient failures may pass: an outage, a rate limit, a timeout, an answer that could
	// not be read. Retry with backoff and keep the current token.
	Transient Kind = "Transient"
	// GrantInvalid means the refresh token is expired or revoked: only a new login helps.
	GrantInvalid Kind = "GrantInvalid"
	// ClientInvalid means TIDAL does not accept the client id or secret. Every session of
	// that client fails the same way until the client is fixed.
	ClientInvalid Kind = "ClientInvalid"
)

// Error is a failed TIDAL call, classified. Its message is built from fixed words and
// numbers only: TIDAL's response body, and anything it might echo, never reaches it.
type Error struct {
	// Op is the call that failed, e.g. "refresh token" or "get session".
	Op string
	// Kind says what to do about it.
	Kind Kind
	// Code is the OAuth "error" field when it is one TIDAL documents, else empty.
	Code string
	// HTTPStatus is the response status, 0 when no response arrived.
	HTTPStatus int
	// SubStatus is TIDAL's sub_status or subStatus, 0 when absent.
	SubStatus int
	// Cause is a fixed description of what went wrong at the transport or parsing level.
	Cause string
	// RetryAfter is the server's Retry-After, 0 when it sent none or none that can be read,
	// and at most an hour.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "failed to %s: %s", e.Op, strings.ToLower(string(e.Kind)))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, ", HTTP %d", e.HTTPStatus)
	}
	if e.SubStatus != 0 {
		fmt.Fprintf(&b, ", sub-status %d", e.SubStatus)
	}
	if e.Cause != "" {
		fmt.Fprintf(&b, ": %s", e.Cause)
	}
	return b.String()
}

// KindOf returns the Kind of a TIDAL error, and Transient for any other error: what we
// cannot classify we must not treat as the end of a session.
func KindOf(err error) Kind {
	var te *Error
	if errors.As(err, &te) {
		return te.Kind
	}
	return Transient
}

// OAuth error codes TIDAL's token endpoint uses.
const (
	CodeInvalidGrant         = "invalid_grant"
	CodeInvalidClient        = "invalid_client"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeAuthorizationPending = "authorization_pending"
	CodeSlowDown             = "slow_down"
	CodeExpiredToken         = "expired_token"
	CodeAccessDenied         = "access_denied"
)

// knownCodes are the OAuth error codes copied into Error.Code; any other value of the
// field is replaced by "other", so an arbitrary string from the server never travels on.
var knownCodes = map[string]bool{
	CodeInvalidGrant: true, CodeInvalidClient: true, CodeUnauthorizedClient: true,
	CodeAuthorizationPending: true, CodeSlowDown: true, CodeExpiredToken: true,
	CodeAccessDenied: true, "invalid_request": true, "invalid_scope": true,
	"unsupported_grant_type": true, "server_error": true, "temporarily_unavailable": true,
}

// classifyToken decides what a token-endpoint failure means: the JSON error field first,
// because OAuth servers in the wild send invalid_grant with 401, 404 or even 500, and the
// HTTP status second. Everything not known to be final is Transient: treating an unknown
// failure as the end of a session would destroy sessions during an outage.
func classifyToken(code string, revoked bool) Kind {
	switch {
	case code == CodeInvalidGrant || revoked:
		return GrantInvalid
	case code == CodeInvalidClient || code == CodeUnauthorizedClient:
		return ClientInvalid
	default:
		return Transient
	}
}

// revocationMessages are the parts of TIDAL's error descriptions that mean the grant was
// revoked on TIDAL's side (password change, logout everywhere): only a new login helps.
var revocationMessages = []string{"bad subject token version"}

func isRevocation(description string) bool {
	d := strings.ToLower(description)
	for _, m := range revocationMessages {
		if strings.Contains(d, m) {
			return true
		}
	}
	return false
}

func safeCode(code string) string {
	if code == "" || knownCodes[code] {
		return code
	}
	return "other"
}
