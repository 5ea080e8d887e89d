package tidal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestClassifyToken(t *testing.T) {
	tests := []struct {
		code    string
		revoked bool
		want    Kind
	}{
		{CodeInvalidGrant, false, GrantInvalid},
		{CodeInvalidGrant, true, GrantInvalid},
		// A revocation message decides even without the error field.
		{"", true, GrantInvalid},
		{CodeInvalidClient, false, ClientInvalid},
		{CodeUnauthorizedClient, false, ClientInvalid},
		// Revocation of the grant wins over a client complaint: the login is gone either way.
		{CodeInvalidClient, true, GrantInvalid},
		{CodeAuthorizationPending, false, Transient},
		{CodeSlowDown, false, Transient},
		{CodeExpiredToken, false, Transient},
		{CodeAccessDenied, false, Transient},
		{"invalid_request", false, Transient},
		{"server_error", false, Transient},
		{"temporarily_unavailable", false, Transient},
		{"", false, Transient},
		{"INVALID_GRANT", false, Transient}, // codes are case-sensitive (RFC 6749, 5.2)
		{"something_else", false, Transient},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/revoked=%v", tt.code, tt.revoked), func(t *testing.T) {
			if got := classifyToken(tt.code, tt.revoked); got != tt.want {
				t.Errorf("classifyToken(%q, %v) = %s, want %s", tt.code, tt.revoked, got, tt.want)
			}
		})
	}
}

func TestIsRevocation(t *testing.T) {
	tests := []struct {
		description string
		want        bool
	}{
		{"The token has expired. (Bad subject token version)", true},
		{"the token has expired. (BAD SUBJECT TOKEN VERSION)", true},
		{"Bad subject token version", true},
		{"The token has expired. (Expired on time)", false},
		{"Token has invalid payload", false},
		{"", false},
		{"Bad subject token", false},
	}
	for _, tt := range tests {
		if got := isRevocation(tt.description); got != tt.want {
			t.Errorf("isRevocation(%q) = %v, want %v", tt.description, got, tt.want)
		}
	}
}

func TestSafeCode(t *testing.T) {
	tests := []struct{ code, want string }{
		{"", ""},
		{CodeInvalidGrant, CodeInvalidGrant},
		{CodeInvalidClient, CodeInvalidClient},
		{CodeUnauthorizedClient, CodeUnauthorizedClient},
		{CodeAuthorizationPending, CodeAuthorizationPending},
		{CodeSlowDown, CodeSlowDown},
		{CodeExpiredToken, CodeExpiredToken},
		{CodeAccessDenied, CodeAccessDenied},
		{"invalid_request", "invalid_request"},
		{"invalid_scope", "invalid_scope"},
		{"unsupported_grant_type", "unsupported_grant_type"},
		{"server_error", "server_error"},
		{"temporarily_unavailable", "temporarily_unavailable"},
		{canaryBody, "other"},
		{"Invalid_Grant", "other"},
		{"invalid_grant ", "other"},
	}
	for _, tt := range tests {
		if got := safeCode(tt.code); got != tt.want {
			t.Errorf("safeCode(%q) = %q, want %q", tt.code, got, tt.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"minimal", &Error{Op: "refresh token", Kind: Transient},
			"failed to refresh token: transient"},
		{"all fields", &Error{Op: "refresh token", Kind: GrantInvalid, Code: CodeInvalidGrant,
			HTTPStatus: 400, SubStatus: 11003, Cause: "fixed words", RetryAfter: time.Minute},
			"failed to refresh token: grantinvalid (invalid_grant), HTTP 400, sub-status 11003: fixed words"},
		{"client", &Error{Op: "get session", Kind: ClientInvalid, HTTPStatus: 401, SubStatus: 8003},
			"failed to get session: clientinvalid, HTTP 401, sub-status 8003"},
		{"cause only", &Error{Op: "get session", Kind: Transient, Cause: "timed out"},
			"failed to get session: transient: timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	grant := &Error{Op: "refresh token", Kind: GrantInvalid}
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"tidal error", grant, GrantInvalid},
		{"client error", &Error{Kind: ClientInvalid}, ClientInvalid},
		{"wrapped", fmt.Errorf("failed to reconcile: %w", grant), GrantInvalid},
		{"joined", errors.Join(errors.New("other"), grant), GrantInvalid},
		// What cannot be classified must not end a session.
		{"other error", errors.New("boom"), Transient},
		{"nil", nil, Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := testNow
	tests := []struct {
		name   string
		header []string // nil: no header
		want   time.Duration
	}{
		{"absent", nil, 0},
		{"empty", []string{""}, 0},
		{"seconds", []string{"30"}, 30 * time.Second},
		{"seconds with space", []string{" 7 "}, 7 * time.Second},
		{"plus sign", []string{"+5"}, 5 * time.Second},
		{"zero", []string{"0"}, 0},
		{"negative", []string{"-5"}, 0},
		{"fraction", []string{"1.5"}, 0},
		{"garbage", []string{"soon"}, 0},
		{"garbage with canary", []string{canaryBody}, 0},
		{"at the bound", []string{"3600"}, time.Hour},
		{"beyond the bound", []string{"3601"}, maxRetryAfter},
		// 1e10 seconds overflows a Duration when multiplied by a second.
		{"overflowing seconds", []string{"10000000000"}, maxRetryAfter},
		{"beyond int64", []string{"99999999999999999999999"}, 0},
		{"date in 90s", []string{now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"RFC 850 date", []string{now.Add(2 * time.Minute).Format(time.RFC850)}, 2 * time.Minute},
		{"ANSI C date", []string{now.Add(3 * time.Minute).Format(time.ANSIC)}, 3 * time.Minute},
		{"date now", []string{now.Format(http.TimeFormat)}, 0},
		{"date in the past", []string{now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"date far ahead", []string{now.AddDate(300, 0, 0).Format(http.TimeFormat)}, maxRetryAfter},
		{"first of two", []string{"12", "99"}, 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != nil {
				h["Retry-After"] = tt.header
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestTransportCause(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", context.DeadlineExceeded, "timed out"},
		{"wrapped deadline", &url.Error{Op: "Post", URL: "http://" + canaryBody, Err: context.DeadlineExceeded}, "timed out"},
		{"net timeout", &url.Error{Op: "Get", URL: "x", Err: timeoutErr{}}, "timed out"},
		{"canceled", fmt.Errorf("oauth2: %w", context.Canceled), "canceled"},
		{"other", errors.New("dial tcp " + canaryBody + ": connection refused"), "connection failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transportCause(tt.err); got != tt.want {
				t.Errorf("transportCause() = %q, want %q", got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestEndpointsValidate(t *testing.T) {
	tests := []struct {
		name    string
		e       Endpoints
		wantErr bool
	}{
		{"defaults", Endpoints{AuthBaseURL: DefaultAuthBaseURL, APIBaseURL: DefaultAPIBaseURL}, false},
		{"loopback http", Endpoints{AuthBaseURL: "http://127.0.0.1:8080/v1/oauth2/", APIBaseURL: "http://[::1]:8080/v1/"}, false},
		{"empty auth", Endpoints{AuthBaseURL: "", APIBaseURL: DefaultAPIBaseURL}, true},
		{"empty api", Endpoints{AuthBaseURL: DefaultAuthBaseURL, APIBaseURL: ""}, true},
		{"relative", Endpoints{AuthBaseURL: "/v1/oauth2/", APIBaseURL: DefaultAPIBaseURL}, true},
		{"no host", Endpoints{AuthBaseURL: "https:///v1/", APIBaseURL: DefaultAPIBaseURL}, true},
		{"other scheme", Endpoints{AuthBaseURL: DefaultAuthBaseURL, APIBaseURL: "ftp://example.invalid/v1/"}, true},
		{"unparseable", Endpoints{AuthBaseURL: DefaultAuthBaseURL, APIBaseURL: "http://[::1"}, true},
		{"password in the URL", Endpoints{AuthBaseURL: "http://op:CANARY-PW@127.0.0.1/v1/oauth2/", APIBaseURL: DefaultAPIBaseURL}, true},
		{"query", Endpoints{AuthBaseURL: DefaultAuthBaseURL, APIBaseURL: "http://127.0.0.1/v1/?x=1"}, true},
		{"openapi default", Endpoints{AuthBaseURL: DefaultAuthBaseURL, APIBaseURL: DefaultAPIBaseURL,
			OpenAPIBaseURL: DefaultOpenAPIBaseURL}, false},
		{"openapi with a password", Endpoints{AuthBaseURL: DefaultAuthBaseURL, APIBaseURL: DefaultAPIBaseURL,
			OpenAPIBaseURL: "http://op:CANARY-PW@127.0.0.1/v2/"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "CANARY") {
				t.Errorf("Validate() quotes a password: %v", err)
			}
		})
	}
}

func TestWithSlash(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"http://h/v1":           "http://h/v1/",
		"http://h/v1/":          "http://h/v1/",
		"https://h/v1/oauth2/":  "https://h/v1/oauth2/",
		"https://h/v1/oauth2//": "https://h/v1/oauth2//",
	} {
		if got := withSlash(in); got != want {
			t.Errorf("withSlash(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExtraString(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"4242", "4242"},
		{float64(4242), "4242"},
		{float64(193000123), "193000123"},
		{float64(1.5), "1.5"},
		{int64(4242), ""}, // only form-encoded answers give int64, and those are refused
		{json.Number("4242"), "4242"},
		{true, ""},
		{map[string]any{"a": 1}, ""},
	}
	for _, tt := range tests {
		if got := extraString(tt.in); got != tt.want {
			t.Errorf("extraString(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseTokenError(t *testing.T) {
	tests := []struct {
		name string
		body string
		want tokenErrorBody
	}{
		{"TIDAL shape", `{"status":400,"error":"invalid_grant","sub_status":11003,"error_description":"x"}`,
			tokenErrorBody{Error: "invalid_grant", Description: "x", SubStatus: 11003}},
		{"no sub-status", `{"error":"slow_down"}`, tokenErrorBody{Error: "slow_down"}},
		{"sub-status as string", `{"error":"invalid_grant","sub_status":"11003"}`,
			tokenErrorBody{Error: "invalid_grant"}},
		{"error not a string", `{"error":5,"sub_status":1005}`, tokenErrorBody{SubStatus: 1005}},
		{"empty", ``, tokenErrorBody{}},
		{"html", `<html>` + canaryBody + `</html>`, tokenErrorBody{}},
		{"truncated", `{"error":"invalid_grant","sub_status":110`, tokenErrorBody{}},
		{"array", `[1,2]`, tokenErrorBody{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseTokenError([]byte(tt.body)); got != tt.want {
				t.Errorf("parseTokenError() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	c := NewClient(Endpoints{AuthBaseURL: "http://127.0.0.1/a", APIBaseURL: "http://127.0.0.1/b/"}, nil, nil)
	if c.endpoints.AuthBaseURL != "http://127.0.0.1/a/" || c.endpoints.APIBaseURL != "http://127.0.0.1/b/" {
		t.Errorf("endpoints %+v, want each ending in a slash", c.endpoints)
	}
	if c.http.Timeout != 15*time.Second || c.clock == nil {
		t.Errorf("defaults: timeout %v, clock %v", c.http.Timeout, c.clock)
	}

	// The caller's client is copied, not changed: it may serve other purposes.
	mine := &http.Client{Timeout: time.Second}
	c = NewClient(Endpoints{}, mine, newFakeClock())
	if mine.CheckRedirect != nil || c.http == mine || c.http.Timeout != time.Second {
		t.Error("NewClient changed or kept the caller's http.Client instead of a copy")
	}
}
