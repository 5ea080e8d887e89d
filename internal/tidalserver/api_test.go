package tidalserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	s, _ := newTestServer(t, nil)
	token := accessToken(t, s, mustGrant(t, s, secretID))

	res := getBearer(t, s, "/v1/sessions?countryCode=NO&sessionId=x", token)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", res.status, res.raw)
	}
	if res.str("sessionId") == "" || res.num("userId") != testUserID ||
		res.str("countryCode") != "NO" || res.num("channelId") != 1 || res.num("partnerId") != 1 {
		t.Errorf("session = %s", res.raw)
	}
	client, _ := res.body["client"].(map[string]any)
	if client["id"] != float64(77) || client["name"] != "Secret Test Client" ||
		client["authorizedForOffline"] != false {
		t.Errorf("client = %v", client)
	}
	if _, ok := client["authorizedForOfflineDate"]; !ok {
		t.Error("client has no authorizedForOfflineDate")
	}

}

func TestSessionIDSurvivesRefresh(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rt := mustGrant(t, s, secretID)
	first := getBearer(t, s, "/v1/sessions", accessToken(t, s, rt)).str("sessionId")
	second := getBearer(t, s, "/v1/sessions", accessToken(t, s, rt)).str("sessionId")
	other := getBearer(t, s, "/v1/sessions",
		accessToken(t, s, mustGrant(t, s, secretID))).str("sessionId")
	if first == "" || first != second || first == other {
		t.Errorf("session ids: same login %v, other login differs %v", first == second,
			first != other)
	}
}

func TestAPIErrorRows(t *testing.T) {
	tests := []struct {
		name string
		// token returns the bearer token to send, after whatever it does to the server.
		token     func(s *Server, clock *fakeClock) string
		status    int
		subStatus int
		message   string
	}{
		{"no token", func(*Server, *fakeClock) string { return "" },
			401, 6004, "Invalid token"},
		{"unknown token", func(*Server, *fakeClock) string { return "eyJ.unknown.token" },
			401, 11002, "Token has invalid payload"},
		{"expired token", func(s *Server, c *fakeClock) string {
			token := accessToken(t, s, mustGrant(t, s, secretID))
			c.Advance(24 * time.Hour)
			return token
		}, 401, 11003, "The token has expired. (Expired on time)"},
		{"revoked grant", func(s *Server, _ *fakeClock) string {
			rt := mustGrant(t, s, secretID)
			token := accessToken(t, s, rt)
			_ = s.RevokeGrant(rt)
			return token
		}, 401, 11003, "The token has expired. (Bad subject token version)"},
		{"revoked client", func(s *Server, _ *fakeClock) string {
			token := accessToken(t, s, mustGrant(t, s, secretID))
			_ = s.RevokeClient(secretID)
			return token
		}, 401, 8003, "Client not found"},
		{"developer app", func(s *Server, _ *fakeClock) string {
			rt := mustGrant(t, s, devAppID)
			res := postForm(t, s, "/v1/oauth2/token", url.Values{
				"grant_type": {"refresh_token"}, "refresh_token": {rt}}, &[2]string{devAppID, secret})
			return res.str("access_token")
		}, 403, 6001, "Session does not exist"},
		{"client credentials token", func(s *Server, _ *fakeClock) string {
			res := postForm(t, s, "/v1/oauth2/token", url.Values{
				"grant_type": {"client_credentials"}}, &[2]string{secretID, secret})
			return res.str("access_token")
		}, 403, 6001, "Session does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestServer(t, nil)
			wantAPIError(t, getBearer(t, s, "/v1/sessions", tt.token(s, clock)), tt.status,
				tt.subStatus, tt.message)
		})
	}
}

func TestExpiryFollowsTheClock(t *testing.T) {
	s, clock := newTestServer(t, func(c *Config) {
		c.AccessTokenLifetime = 14400 * time.Second
		c.Clients[1].AccessTokenLifetime = 0 // the confidential client uses the Config's
	})
	res := refresh(t, s, mustGrant(t, s, secretID))
	if res.num("expires_in") != 14400 {
		t.Errorf("expires_in = %d, want 14400", res.num("expires_in"))
	}
	token := res.str("access_token")
	clock.Advance(14399 * time.Second)
	if res := getBearer(t, s, "/v1/sessions", token); res.status != http.StatusOK {
		t.Errorf("one second before expiry: status %d", res.status)
	}
	clock.Advance(time.Second)
	wantAPIError(t, getBearer(t, s, "/v1/sessions", token), 401, 11003,
		"The token has expired. (Expired on time)")
}

func TestPingDateComesFromTheClock(t *testing.T) {
	s, clock := newTestServer(t, nil)
	clock.Advance(90 * time.Minute)
	res := getBearer(t, s, "/v1/ping", "")
	if res.status != http.StatusOK {
		t.Fatalf("status = %d", res.status)
	}
	date, err := http.ParseTime(res.header.Get("Date"))
	if err != nil || !date.Equal(clock.Now()) {
		t.Errorf("Date = %q, want %v", res.header.Get("Date"), clock.Now())
	}
}

func TestUsersMe(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rt := mustGrant(t, s, devAppID)
	res := postForm(t, s, "/v1/oauth2/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {rt}}, &[2]string{devAppID, secret})

	r := httptest.NewRequest(http.MethodGet, "/v2/users/me", nil)
	r.Header.Set("Authorization", "Bearer "+res.str("access_token"))
	me := serve(t, s, r)
	data, _ := me.body["data"].(map[string]any)
	attrs, _ := data["attributes"].(map[string]any)
	if me.status != http.StatusOK || data["id"] != "4242" || data["type"] != "users" ||
		attrs["country"] != "NO" {
		t.Errorf("users/me = %d %s", me.status, me.raw)
	}
	if ct := me.header.Get("Content-Type"); ct != "application/vnd.api+json" {
		t.Errorf("Content-Type = %q", ct)
	}

	unknown := getBearer(t, s, "/v2/users/me", "nope")
	errs, _ := unknown.body["errors"].([]any)
	if unknown.status != http.StatusUnauthorized || len(errs) != 1 {
		t.Errorf("unknown token: %d %s", unknown.status, unknown.raw)
	}
}

func TestSetCountryMovesTheAccount(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rt := mustGrant(t, s, secretID)
	token := accessToken(t, s, rt)
	before := getBearer(t, s, "/v1/sessions", token).str("countryCode")
	if err := s.SetCountry(rt, "DE"); err != nil {
		t.Fatal(err)
	}
	if got := getBearer(t, s, "/v1/sessions", token).str("countryCode"); before == "DE" || got != "DE" {
		t.Errorf("country %q before, %q after moving the account to DE", before, got)
	}
	if err := s.SetCountry("no-such-token", "DE"); err != ErrUnknownGrant {
		t.Errorf("unknown token: %v, want ErrUnknownGrant", err)
	}
}
