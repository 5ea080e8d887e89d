package tidalserver

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRefreshGrantAnswersLikeTIDAL(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rt := mustGrant(t, s, secretID)

	res := refresh(t, s, rt)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", res.status, res.raw)
	}
	for key, want := range map[string]any{
		"token_type": "Bearer", "expires_in": float64(86400), "scope": "r_usr w_usr w_sub",
		"user_id": float64(testUserID), "clientName": "Secret Test Client",
	} {
		if res.body[key] != want {
			t.Errorf("%s = %v, want %v", key, res.body[key], want)
		}
	}
	if _, ok := res.body["refresh_token"]; ok {
		t.Error("a refresh answered a refresh_token; TIDAL does not rotate by default")
	}
	user, _ := res.body["user"].(map[string]any)
	if user["userId"] != float64(testUserID) || user["countryCode"] != "NO" ||
		user["username"] != "listener" {
		t.Errorf("user object = %v", user)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	// The access token is a JWT with an exp, the refresh token one without.
	access := claims(t, res.str("access_token"))
	if access["exp"] == nil || access["uid"] != float64(testUserID) || access["cid"] != float64(77) {
		t.Errorf("access token claims = %v", access)
	}
	if r := claims(t, rt); r["exp"] != nil || r["type"] != "o2_refresh" {
		t.Errorf("refresh token claims = %v", r)
	}
	// TIDAL usually keeps the refresh token: the same one refreshes again, with a new
	// access token each time.
	if again := accessToken(t, s, rt); again == res.str("access_token") {
		t.Error("two refreshes answered the same access token")
	}
}

// claims decodes the payload of a JWT-shaped token.
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var out map[string]any
	if err != nil || json.Unmarshal(raw, &out) != nil {
		t.Fatal("token payload is not base64url JSON")
	}
	return out
}

func TestRefreshScope(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rt := mustGrant(t, s, secretID)
	tests := []struct{ asked, want string }{
		{"", "r_usr w_usr w_sub"},
		{"r_usr", "r_usr"},
		{"r_usr w_usr", "r_usr w_usr"},
		{"r_usr playlists.write", "r_usr"},
		{"playlists.write", "r_usr w_usr w_sub"},
	}
	for _, tt := range tests {
		res := postForm(t, s, "/v1/oauth2/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {rt}, "client_id": {secretID}, "client_secret": {secret},
			"scope": {tt.asked}}, nil)
		if got := res.str("scope"); got != tt.want {
			t.Errorf("scope %q: granted %q, want %q", tt.asked, got, tt.want)
		}
	}
}

func TestClientAuthentication(t *testing.T) {
	s, _ := newTestServer(t, nil)
	secretRT := mustGrant(t, s, secretID)
	publicRT := mustGrant(t, s, publicID)
	escaped := url.QueryEscape(secret)

	tests := []struct {
		name  string
		form  url.Values
		basic *[2]string
		// code is the expected OAuth error, "" for success.
		code string
	}{
		{"secret in form", url.Values{"client_id": {secretID}, "client_secret": {secret}}, nil, ""},
		{"Basic auth", url.Values{}, &[2]string{secretID, secret}, ""},
		{"Basic auth, form-encoded as RFC 6749 asks", url.Values{},
			&[2]string{secretID, escaped}, ""},
		{"Basic auth and the same client_id in the form", url.Values{"client_id": {secretID}},
			&[2]string{secretID, secret}, ""},
		{"Basic auth with another client_id in the form", url.Values{"client_id": {publicID}},
			&[2]string{secretID, secret}, "invalid_request"},
		{"wrong secret", url.Values{"client_id": {secretID}, "client_secret": {"nope"}}, nil,
			"invalid_client"},
		{"wrong secret in Basic auth", url.Values{}, &[2]string{secretID, "nope"}, "invalid_client"},
		{"missing secret", url.Values{"client_id": {secretID}}, nil, "invalid_client"},
		{"unknown client", url.Values{"client_id": {"nobody"}}, nil, "invalid_client"},
		{"missing client_id", url.Values{}, nil, "invalid_request"},
		{"public client", url.Values{"client_id": {publicID}}, nil, ""},
		{"public client sending a secret", url.Values{"client_id": {publicID},
			"client_secret": {"x"}}, nil, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("grant_type", "refresh_token")
			tt.form.Set("refresh_token", secretRT)
			if tt.form.Get("client_id") == publicID && tt.basic == nil {
				tt.form.Set("refresh_token", publicRT)
			}
			res := postForm(t, s, "/v1/oauth2/token", tt.form, tt.basic)
			switch tt.code {
			case "":
				if res.status != http.StatusOK {
					t.Errorf("status = %d, body %s", res.status, res.raw)
				}
			case "invalid_client":
				wantOAuthError(t, res, 401, "invalid_client", 1005)
				if tt.basic != nil && res.header.Get("WWW-Authenticate") == "" {
					t.Error("401 to Basic auth has no WWW-Authenticate")
				}
			default:
				wantOAuthError(t, res, 400, tt.code, 0)
			}
		})
	}
}

// TestTokenErrorRows covers the rows of TIDAL.md's error table that the refresh and
// client credentials grants produce; device-code rows are in device_test.go.
func TestTokenErrorRows(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(s *Server, rt string)
		form      url.Values
		status    int
		code      string
		subStatus int
		desc      string
	}{
		{name: "unknown refresh token", form: url.Values{"refresh_token": {"eyJ.not.ours"}},
			status: 400, code: "invalid_grant", subStatus: 11002},
		{name: "revoked grant", setup: func(s *Server, rt string) { _ = s.RevokeGrant(rt) },
			status: 400, code: "invalid_grant", subStatus: 11003,
			desc: "The token has expired. (Bad subject token version)"},
		{name: "revoked client", setup: func(s *Server, _ string) { _ = s.RevokeClient(secretID) },
			status: 401, code: "invalid_client", subStatus: 1005},
		{name: "missing refresh_token", form: url.Values{"refresh_token": {""}},
			status: 400, code: "invalid_request"},
		{name: "missing grant_type", form: url.Values{"grant_type": {""}},
			status: 400, code: "invalid_request"},
		{name: "authorization_code is not served", form: url.Values{
			"grant_type": {"authorization_code"}}, status: 400, code: "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, nil)
			rt := mustGrant(t, s, secretID)
			if tt.setup != nil {
				tt.setup(s, rt)
			}
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
				"client_id": {secretID}, "client_secret": {secret}}
			for k, v := range tt.form {
				form[k] = v
			}
			res := postForm(t, s, "/v1/oauth2/token", form, nil)
			wantOAuthError(t, res, tt.status, tt.code, tt.subStatus)
			if tt.desc != "" && res.str("error_description") != tt.desc {
				t.Errorf("error_description = %q, want %q", res.str("error_description"), tt.desc)
			}
		})
	}
}

func TestRefreshTokenOfAnotherClient(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rt := mustGrant(t, s, publicID)
	wantOAuthError(t, refresh(t, s, rt), 400, "invalid_grant", 11002)
}

func TestClientCredentialsGrant(t *testing.T) {
	s, _ := newTestServer(t, nil)
	res := postForm(t, s, "/v1/oauth2/token", url.Values{"grant_type": {"client_credentials"}},
		&[2]string{devAppID, secret})
	if res.status != http.StatusOK || res.str("access_token") == "" {
		t.Fatalf("status = %d, body %s", res.status, res.raw)
	}
	for _, absent := range []string{"refresh_token", "user", "user_id"} {
		if _, ok := res.body[absent]; ok {
			t.Errorf("client credentials answer has %s", absent)
		}
	}
	if res.num("expires_in") != int(DefaultAccessTokenLifetime/time.Second) {
		t.Errorf("expires_in = %d", res.num("expires_in"))
	}

	// A public client has no credentials to present.
	res = postForm(t, s, "/v1/oauth2/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {publicID}}, nil)
	wantOAuthError(t, res, 400, "unauthorized_client", 0)
}

func TestIssueGrant(t *testing.T) {
	s, _ := newTestServer(t, nil)
	canary := canaryPrefix + "0001"
	got, err := s.IssueGrant(GrantSpec{ClientID: secretID, UserID: 7, RefreshToken: canary,
		Scopes: []string{"r_usr"}})
	if err != nil || got != canary {
		t.Fatalf("IssueGrant with an explicit token: err %v, token kept: %v", err, got == canary)
	}
	res := refresh(t, s, canary)
	if res.status != http.StatusOK || res.str("scope") != "r_usr" {
		t.Errorf("refresh with the canary: %d scope %q", res.status, res.str("scope"))
	}

	errs := map[string]struct {
		spec GrantSpec
		want error
	}{
		"token in use":   {GrantSpec{ClientID: secretID, UserID: 7, RefreshToken: canary}, ErrTokenInUse},
		"unknown client": {GrantSpec{ClientID: "nobody", UserID: 7}, ErrUnknownClient},
		"no user":        {GrantSpec{ClientID: secretID}, ErrInvalidSpec},
		"token with a space": {GrantSpec{ClientID: secretID, UserID: 7, RefreshToken: "a b"},
			ErrInvalidSpec},
	}
	for name, tt := range errs {
		if _, err := s.IssueGrant(tt.spec); err != tt.want {
			t.Errorf("%s: err = %v, want %v", name, err, tt.want)
		}
	}
}
