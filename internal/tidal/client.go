// Package tidal is the operator's client of TIDAL's OAuth and session endpoints.
//
// Endpoints come from the operator's own configuration, never from a TidalSession, so a
// namespace user cannot aim the operator (and a refresh token) at a server of their choice.
// Nothing this package returns or logs carries a token, a client secret or a response body,
// except the Token values that are the point of a call.
package tidal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"k8s.io/utils/clock"
)

// Default base URLs of TIDAL's hosts.
const (
	DefaultAuthBaseURL    = "https://auth.tidal.com/v1/oauth2/"
	DefaultAPIBaseURL     = "https://api.tidal.com/v1/"
	DefaultOpenAPIBaseURL = "https://openapi.tidal.com/v2/"
)

// maxBodyBytes bounds what the client reads of any answer: TIDAL's are a few hundred bytes.
const maxBodyBytes = 1 << 20

// maxAccessTokenBytes bounds an access token; TIDAL's are JWTs of about a kilobyte.
const maxAccessTokenBytes = 64 << 10

// identifier is the form of a value TIDAL reports about a session. The operator writes
// such values into status, the output Secret and kubectl's columns, so a value of another
// form (control characters, terminal escapes, megabytes) is dropped as unknown.
type identifier struct{ re *regexp.Regexp }

var (
	userIDForm      = identifier{regexp.MustCompile(`^[0-9]{1,20}$`)}
	clientIDForm    = identifier{regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)}
	countryCodeForm = identifier{regexp.MustCompile(`^[A-Z]{2}$`)}
	sessionIDForm   = identifier{regexp.MustCompile(`^[0-9A-Za-z-]{1,64}$`)}
	clientNameForm  = identifier{regexp.MustCompile(`^[ -~]{1,128}$`)}
)

// clean returns v when it has the identifier's form, and "" otherwise.
func (id identifier) clean(v string) string {
	if id.re.MatchString(v) {
		return v
	}
	return ""
}

// maxRetryAfter bounds a server's Retry-After. The header is the server's word, not ours: a
// wait longer than this would outlive the access token, and a number of seconds beyond what
// a time.Duration holds would overflow into a negative wait.
const maxRetryAfter = time.Hour

// Endpoints are the base URLs of TIDAL's hosts, each ending in a slash.
type Endpoints struct {
	// AuthBaseURL is the OAuth base, e.g. https://auth.tidal.com/v1/oauth2/.
	AuthBaseURL string
	// APIBaseURL is the v1 API base, e.g. https://api.tidal.com/v1/.
	APIBaseURL string
	// OpenAPIBaseURL is the official API's base, e.g. https://openapi.tidal.com/v2/, for the
	// checks of developer apps' sessions; empty means those checks are not configured.
	OpenAPIBaseURL string
}

// Validate checks that both base URLs are absolute http(s) URLs.
func (e Endpoints) Validate() error {
	urls := map[string]string{"auth": e.AuthBaseURL, "api": e.APIBaseURL}
	if e.OpenAPIBaseURL != "" {
		urls["openapi"] = e.OpenAPIBaseURL
	}
	for name, raw := range urls {
		// The messages do not quote the URL: it could carry a password.
		u, err := url.Parse(raw)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			return fmt.Errorf("TIDAL %s base URL is not an absolute http(s) URL", name)
		case u.User != nil:
			return fmt.Errorf("TIDAL %s base URL must not carry a user or password", name)
		case u.RawQuery != "" || u.Fragment != "":
			return fmt.Errorf("TIDAL %s base URL must not have a query or fragment: paths are appended to it", name)
		}
	}
	return nil
}

// Client talks to TIDAL. It is safe for concurrent use.
type Client struct {
	endpoints Endpoints
	http      *http.Client
	clock     clock.PassiveClock
}

// NewClient returns a Client for the given endpoints. A nil httpClient gets one with a
// 15-second timeout; a nil clock is the real clock. The Client uses a copy of httpClient
// that follows no redirects.
func NewClient(endpoints Endpoints, httpClient *http.Client, clk clock.PassiveClock) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 15 * time.Second}
	}
	hc := *httpClient
	// TIDAL's endpoints do not redirect. Following a 307 or 308 would post the refresh token
	// and client secret again to wherever the Location points, so a redirect is an answer
	// like any other failure.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if clk == nil {
		clk = clock.RealClock{}
	}
	endpoints.AuthBaseURL = withSlash(endpoints.AuthBaseURL)
	endpoints.APIBaseURL = withSlash(endpoints.APIBaseURL)
	if endpoints.OpenAPIBaseURL != "" {
		endpoints.OpenAPIBaseURL = withSlash(endpoints.OpenAPIBaseURL)
	}
	return &Client{endpoints: endpoints, http: &hc, clock: clk}
}

// Credentials are what a refresh needs. ClientSecret is empty for public clients.
type Credentials struct {
	ClientID     string
	ClientSecret string
	RefreshToken string
}

// Token is TIDAL's answer to a successful refresh.
type Token struct {
	AccessToken string
	TokenType   string
	// RefreshToken is non-empty only when TIDAL rotated the refresh token: the caller must
	// store it before doing anything else.
	RefreshToken string
	// ReceivedAt is when the answer arrived, by the operator's clock.
	ReceivedAt time.Time
	// Lifetime is TIDAL's expires_in.
	Lifetime time.Duration
	// ExpiresAt is ReceivedAt plus Lifetime: computed from the moment the answer arrived,
	// not from TIDAL's clock, which may be skewed against ours.
	ExpiresAt time.Time
	// ServerDate is the answer's Date header, zero when absent; for skew checks.
	ServerDate time.Time
	UserID     string
	ClientName string
	Scope      string
}

// Refresh exchanges a refresh token for a new access token. On an error the Token is nil,
// except when TIDAL rotated the refresh token in an answer that is otherwise unusable: then
// it holds only RefreshToken, which the caller must store all the same, since TIDAL may
// already have retired the old one.
func (c *Client) Refresh(ctx context.Context, creds Credentials) (*Token, error) {
	const op = "refresh token"
	if creds.ClientID == "" || creds.RefreshToken == "" {
		return nil, &Error{Op: op, Kind: GrantInvalid, Cause: "client id or refresh token is empty"}
	}
	conf := oauth2.Config{
		ClientID:     creds.ClientID,
		ClientSecret: creds.ClientSecret,
		Endpoint: oauth2.Endpoint{
			TokenURL:  c.endpoints.AuthBaseURL + "token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	obs := &observation{}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.observingClient(obs))
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: creds.RefreshToken}).Token()
	if err != nil {
		return nil, tokenError(op, err, obs)
	}

	// oauth2 puts the old refresh token back when the answer has none; only a different
	// value is a rotation.
	rotated := ""
	if tok.RefreshToken != "" && tok.RefreshToken != creds.RefreshToken {
		rotated = tok.RefreshToken
	}
	return tokenOf(op, tok, obs, rotated)
}

// tokenOf turns a successful token answer into a Token carrying refreshToken, the new refresh
// token the caller must store ("" for none). An unusable answer is an Error; the Token
// returned with it holds only refreshToken, when there is one, since TIDAL may already have
// retired the old one.
func tokenOf(op string, tok *oauth2.Token, obs *observation, refreshToken string) (*Token, error) {
	if problem := unusableAnswer(tok); problem != "" {
		var partial *Token
		if refreshToken != "" {
			partial = &Token{RefreshToken: refreshToken}
		}
		return partial, &Error{Op: op, Kind: Transient, HTTPStatus: obs.status, Cause: problem}
	}

	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	out := &Token{
		AccessToken:  tok.AccessToken,
		TokenType:    "Bearer",
		ReceivedAt:   obs.receivedAt,
		Lifetime:     lifetime,
		ExpiresAt:    obs.receivedAt.Add(lifetime),
		ServerDate:   obs.serverDate,
		UserID:       userIDForm.clean(extraString(tok.Extra("user_id"))),
		ClientName:   extraString(tok.Extra("clientName")),
		Scope:        extraString(tok.Extra("scope")),
		RefreshToken: refreshToken,
	}
	return out, nil
}

// unusableAnswer names what makes a successful token answer unusable, or returns "".
func unusableAnswer(tok *oauth2.Token) string {
	switch {
	case tok.ExpiresIn <= 0:
		return "answer has no positive expires_in"
	case len(tok.AccessToken) > maxAccessTokenBytes:
		// It would not fit a Secret twice (the token and the session file), and TIDAL's
		// tokens are JWTs of about a kilobyte.
		return "answer has an access token larger than 64 KiB"
	case tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "Bearer"):
		return "answer has a token_type other than Bearer"
	}
	return ""
}

// SessionInfo is TIDAL's description of the session behind an access token.
type SessionInfo struct {
	SessionID   string
	UserID      string
	CountryCode string
	ClientID    string
	ClientName  string
}

// Session asks TIDAL which session an access token belongs to (GET /sessions), the check
// TIDAL's own clients use to validate a stored session.
func (c *Client) Session(ctx context.Context, accessToken string) (*SessionInfo, error) {
	const op = "get session"
	body, err := c.get(ctx, op, c.endpoints.APIBaseURL+"sessions", "application/json", accessToken)
	if err != nil {
		return nil, err
	}
	var s struct {
		SessionID   string      `json:"sessionId"`
		UserID      json.Number `json:"userId"`
		CountryCode string      `json:"countryCode"`
		Client      struct {
			ID   json.Number `json:"id"`
			Name string      `json:"name"`
		} `json:"client"`
	}
	if err := json.Unmarshal(body, &s); err != nil || s.UserID == "" {
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: http.StatusOK,
			Cause: "answer is not a session object"}
	}
	if userIDForm.clean(s.UserID.String()) == "" {
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: http.StatusOK,
			Cause: "answer has a userId that is not a number"}
	}
	return &SessionInfo{SessionID: sessionIDForm.clean(s.SessionID), UserID: s.UserID.String(),
		CountryCode: countryCodeForm.clean(s.CountryCode), ClientID: clientIDForm.clean(s.Client.ID.String()),
		ClientName: clientNameForm.clean(s.Client.Name)}, nil
}

// UsersMe asks the official API which user an access token belongs to (GET /v2/users/me),
// the check for sessions of developer apps, whose tokens TIDAL's /v1/sessions refuses. It
// knows no session id or client; the returned SessionInfo carries the user and country.
func (c *Client) UsersMe(ctx context.Context, accessToken string) (*SessionInfo, error) {
	const op = "get users/me"
	if c.endpoints.OpenAPIBaseURL == "" {
		return nil, &Error{Op: op, Kind: Transient, Cause: "the official API's base URL is not configured"}
	}
	body, err := c.get(ctx, op, c.endpoints.OpenAPIBaseURL+"users/me", "application/vnd.api+json", accessToken)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Data struct {
			ID         string `json:"id"`
			Type       string `json:"type"`
			Attributes struct {
				Country string `json:"country"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Data.Type != "users" {
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: http.StatusOK, Cause: "answer is not a user document"}
	}
	if userIDForm.clean(doc.Data.ID) == "" {
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: http.StatusOK,
			Cause: "answer has a user id that is not a number"}
	}
	return &SessionInfo{UserID: doc.Data.ID, CountryCode: countryCodeForm.clean(doc.Data.Attributes.Country)}, nil
}

// get sends an authorized GET and returns the body of a 200 answer; any other answer is an
// Error classified by apiError.
func (c *Client) get(ctx context.Context, op, url, accept, accessToken string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &Error{Op: op, Kind: Transient, Cause: "cannot build request"}
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", accept)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Op: op, Kind: Transient, Cause: transportCause(err)}
	}
	receivedAt := c.clock.Now()
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil || len(body) > maxBodyBytes {
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: resp.StatusCode,
			Cause: "answer could not be read within the size limit"}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(op, resp, body, receivedAt)
	}
	return body, nil
}

// apiError classifies an error answer of the v1 API, whose body has the shape
// {"status":401,"subStatus":11003,"userMessage":"..."}. receivedAt is when it arrived, by the
// client's clock, against which a Retry-After date is read.
func apiError(op string, resp *http.Response, body []byte, receivedAt time.Time) error {
	var e struct {
		SubStatus   int    `json:"subStatus"`
		UserMessage string `json:"userMessage"`
	}
	_ = json.Unmarshal(body, &e)
	kind := Transient
	switch {
	case isRevocation(e.UserMessage):
		kind = GrantInvalid
	case resp.StatusCode == http.StatusNotFound && e.SubStatus == 6001:
		// TIDAL no longer knows the session.
		kind = GrantInvalid
	case resp.StatusCode < 500 && e.SubStatus == 8003:
		// "Client not found": TIDAL revoked the client id, the API host's invalid_client.
		kind = ClientInvalid
	}
	return &Error{Op: op, Kind: kind, HTTPStatus: resp.StatusCode, SubStatus: e.SubStatus,
		RetryAfter: retryAfter(resp.Header, receivedAt)}
}

// tokenError turns what oauth2 returned into an Error, dropping the response body that
// oauth2's RetrieveError carries and prints.
func tokenError(op string, err error, obs *observation) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		body := parseTokenError(re.Body)
		code, description := re.ErrorCode, re.ErrorDescription
		if code == "" {
			// oauth2 reads the body by its Content-Type and finds nothing in JSON labelled
			// text/plain; the JSON error field decides whatever the label says.
			code, description = body.Error, body.Description
		}
		out := &Error{Op: op, Code: safeCode(code), Kind: classifyToken(code, isRevocation(description)),
			SubStatus: body.SubStatus}
		if re.Response != nil {
			out.HTTPStatus = re.Response.StatusCode
			out.RetryAfter = retryAfter(re.Response.Header, obs.receivedAt)
		}
		if code == "" {
			out.Cause = "answer is not a TIDAL error object"
		}
		return out
	}
	if obs.status != 0 {
		// A response arrived but oauth2 could not use it: not JSON, or no access_token.
		return &Error{Op: op, Kind: Transient, HTTPStatus: obs.status,
			Cause: "answer could not be read as a token"}
	}
	return &Error{Op: op, Kind: Transient, Cause: transportCause(err)}
}

// tokenErrorBody is the JSON shape of a token endpoint error.
type tokenErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	SubStatus   int    `json:"sub_status"`
}

// parseTokenError reads what it can of a token endpoint error body; fields of the wrong type
// or a body that is not JSON leave the zero value.
func parseTokenError(body []byte) tokenErrorBody {
	var e tokenErrorBody
	_ = json.Unmarshal(body, &e)
	return e
}

// transportCause names a transport failure without quoting it: url.Error messages carry
// the URL, and wrapped errors may carry more.
func transportCause(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "connection failed"
	}
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date, and bounds it by
// maxRetryAfter. A date is TIDAL's clock, so it is read against the answer's own Date header
// when there is one, and against receivedAt (our clock) otherwise: a skew between the two
// clocks then neither lengthens nor shortens the wait. It is 0 when the header is absent,
// not in the future or not readable.
func retryAfter(h http.Header, receivedAt time.Time) time.Duration {
	now := receivedAt
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Compare in seconds: secs times a second may not fit in a Duration.
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

func extraString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case json.Number:
		return t.String()
	default:
		return ""
	}
}

func withSlash(s string) string {
	if s == "" || strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}
