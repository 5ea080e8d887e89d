package tidal

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DeviceScope is the scope a device login asks for: the one TIDAL's device clients
// (tidalapi and the like) use, which lets the session read and write the user's library.
const DeviceScope = "r_usr w_usr w_sub"

// deviceCodeGrant is the grant type of a device-code poll (RFC 8628, 3.4).
const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// Bounds of a device authorization answer. The device code is held in memory and sent back
// only; the user code and link reach status and Events, so their form is checked.
const (
	maxDeviceCodeBytes = 4 << 10
	maxVerificationURI = 512
	// defaultDeviceInterval is RFC 8628's interval when the answer names none.
	defaultDeviceInterval = 5 * time.Second
	// maxDeviceInterval and maxDeviceLifetime bound the server's word, so that a wild
	// answer neither stalls a login for days nor overflows a Duration.
	maxDeviceInterval = time.Minute
	maxDeviceLifetime = time.Hour
)

var userCodeForm = identifier{regexp.MustCompile(`^[0-9A-Za-z-]{1,32}$`)}

// DeviceAuthorization is TIDAL's answer to the start of a device login.
type DeviceAuthorization struct {
	// DeviceCode finishes the login: whoever holds it receives the tokens once a person
	// approves. It must never leave the operator's memory.
	DeviceCode string
	// UserCode is what the person enters at VerificationURI.
	UserCode string
	// VerificationURI is the link for the person, with a scheme: the complete link (with
	// the code) when TIDAL offers one.
	VerificationURI string
	// ReceivedAt is when the answer arrived, by the client's clock; ExpiresAt is ReceivedAt
	// plus TIDAL's expiresIn.
	ReceivedAt time.Time
	ExpiresAt  time.Time
	// Interval is how long to wait between polls.
	Interval time.Duration
}

// deviceAuthorizationAnswer is the JSON of TIDAL's answer: camelCase, unlike RFC 8628's
// snake_case, which is why oauth2.Config.DeviceAuth cannot read it.
type deviceAuthorizationAnswer struct {
	DeviceCode              string      `json:"deviceCode"`
	UserCode                string      `json:"userCode"`
	VerificationURI         string      `json:"verificationUri"`
	VerificationURIComplete string      `json:"verificationUriComplete"`
	ExpiresIn               json.Number `json:"expiresIn"`
	Interval                json.Number `json:"interval"`
}

// StartDeviceLogin asks TIDAL for a device authorization (POST device_authorization) for
// the client in creds; its refresh token is not used.
func (c *Client) StartDeviceLogin(ctx context.Context, creds Credentials) (*DeviceAuthorization, error) {
	const op = "start device login"
	if creds.ClientID == "" {
		return nil, &Error{Op: op, Kind: ClientInvalid, Cause: "client id is empty"}
	}
	form := url.Values{"client_id": {creds.ClientID}, "scope": {DeviceScope}}
	if creds.ClientSecret != "" {
		form.Set("client_secret", creds.ClientSecret)
	}
	body, obs, err := c.postForm(ctx, op, c.endpoints.AuthBaseURL+"device_authorization", form)
	if err != nil {
		return nil, err
	}
	var a deviceAuthorizationAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: obs.status, Cause: "answer is not a device authorization"}
	}
	out, problem := deviceAuthorizationOf(a, obs.receivedAt)
	if problem != "" {
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: obs.status, Cause: problem}
	}
	return out, nil
}

// deviceAuthorizationOf checks an answer and turns it into a DeviceAuthorization, or names
// what is wrong with it.
func deviceAuthorizationOf(a deviceAuthorizationAnswer, receivedAt time.Time) (*DeviceAuthorization, string) {
	expiresIn, errE := a.ExpiresIn.Int64()
	interval, errI := a.Interval.Int64()
	if a.Interval == "" {
		interval, errI = int64(defaultDeviceInterval/time.Second), nil
	}
	link := verificationLink(a.VerificationURIComplete)
	if link == "" {
		link = verificationLink(a.VerificationURI)
	}
	switch {
	case a.DeviceCode == "" || len(a.DeviceCode) > maxDeviceCodeBytes || !printableASCII(a.DeviceCode):
		return nil, "answer has no usable deviceCode"
	case userCodeForm.clean(a.UserCode) == "":
		return nil, "answer has no usable userCode"
	case link == "":
		return nil, "answer has no usable verificationUri"
	case errE != nil || expiresIn <= 0:
		return nil, "answer has no positive expiresIn"
	case errI != nil || interval < 0:
		return nil, "answer has an interval that is not a number of seconds"
	}
	lifetime := time.Duration(min(expiresIn, int64(maxDeviceLifetime/time.Second))) * time.Second
	wait := time.Duration(min(max(interval, 1), int64(maxDeviceInterval/time.Second))) * time.Second
	return &DeviceAuthorization{DeviceCode: a.DeviceCode, UserCode: a.UserCode, VerificationURI: link,
		ReceivedAt: receivedAt, ExpiresAt: receivedAt.Add(lifetime), Interval: wait}, ""
}

// verificationLink makes a link a person can open of TIDAL's verification URI, which comes
// without a scheme ("link.tidal.com"): https is added. It returns "" for anything that is
// not a plain http(s) link, since the link reaches status, Events and terminals.
func verificationLink(raw string) string {
	if raw == "" || len(raw) > maxVerificationURI || !printableASCII(raw) {
		return ""
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	return u.String()
}

// printableASCII says whether v is printable ASCII without spaces.
func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// deviceTokenAnswer is the JSON of a successful device-code poll: OAuth-shaped.
type deviceTokenAnswer struct {
	AccessToken  string      `json:"access_token"`
	TokenType    string      `json:"token_type"`
	RefreshToken string      `json:"refresh_token"`
	ExpiresIn    json.Number `json:"expires_in"`
	UserID       json.Number `json:"user_id"`
	ClientName   string      `json:"clientName"`
	Scope        string      `json:"scope"`
}

// PollDeviceLogin asks TIDAL once whether the device login of deviceCode was approved
// (the device-code grant). It does not wait: the caller polls again after the
// authorization's interval. While nobody approved, the Error's Code is
// authorization_pending (or slow_down: add 5 s to the interval for good); expired_token and
// access_denied end the login. On success the Token's RefreshToken is the new login's,
// which the caller must store.
func (c *Client) PollDeviceLogin(ctx context.Context, creds Credentials, deviceCode string) (*Token, error) {
	const op = "poll device login"
	if creds.ClientID == "" || deviceCode == "" {
		return nil, &Error{Op: op, Kind: GrantInvalid, Cause: "client id or device code is empty"}
	}
	form := url.Values{"grant_type": {deviceCodeGrant}, "device_code": {deviceCode},
		"client_id": {creds.ClientID}, "scope": {DeviceScope}}
	if creds.ClientSecret != "" {
		form.Set("client_secret", creds.ClientSecret)
	}
	body, obs, err := c.postForm(ctx, op, c.endpoints.AuthBaseURL+"token", form)
	if err != nil {
		return nil, err
	}
	var a deviceTokenAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.AccessToken == "" {
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: obs.status, Cause: "answer could not be read as a token"}
	}
	expiresIn, _ := a.ExpiresIn.Int64()
	tok := (&oauth2.Token{AccessToken: a.AccessToken, TokenType: a.TokenType, ExpiresIn: expiresIn}).
		WithExtra(map[string]any{"user_id": a.UserID.String(), "clientName": a.ClientName, "scope": a.Scope})
	out, err := tokenOf(op, tok, obs, a.RefreshToken)
	if err == nil && a.RefreshToken == "" {
		// The login is worth nothing to the operator without a refresh token to keep it.
		return nil, &Error{Op: op, Kind: Transient, HTTPStatus: obs.status, Cause: "answer has no refresh token"}
	}
	return out, err
}

// postForm posts form to url and returns the body of a 200 answer. Any other answer is an
// Error classified like a token endpoint's (TIDAL's auth host answers errors in one shape).
func (c *Client) postForm(ctx context.Context, op, url string, form url.Values) ([]byte, *observation, error) {
	obs := &observation{}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, obs, &Error{Op: op, Kind: Transient, Cause: "cannot build request"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.observingClient(obs).Do(req)
	if err != nil {
		return nil, obs, &Error{Op: op, Kind: Transient, Cause: transportCause(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil || len(body) > maxBodyBytes {
		return nil, obs, &Error{Op: op, Kind: Transient, HTTPStatus: resp.StatusCode,
			Cause: "answer could not be read within the size limit"}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, obs, tokenError(op, &oauth2.RetrieveError{Response: resp, Body: body}, obs)
	}
	return body, obs, nil
}
