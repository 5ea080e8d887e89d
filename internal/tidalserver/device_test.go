package tidalserver

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"
)

// startDevice starts a device authorization as tidalapi does: client_id and scope only,
// although the client has a secret.
func startDevice(t *testing.T, s *Server, clientID string) (deviceCode, userCode string) {
	t.Helper()
	res := postForm(t, s, "/v1/oauth2/device_authorization",
		url.Values{"client_id": {clientID}, "scope": {"r_usr w_usr w_sub"}}, nil)
	if res.status != http.StatusOK {
		t.Fatalf("device authorization: status %d, body %s", res.status, res.raw)
	}
	return res.str("deviceCode"), res.str("userCode")
}

func pollDevice(t *testing.T, s *Server, deviceCode string) result {
	t.Helper()
	return postForm(t, s, "/v1/oauth2/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode},
		"client_id": {secretID}, "client_secret": {secret}, "scope": {"r_usr w_usr w_sub"},
	}, nil)
}

func TestDeviceAuthorizationAnswer(t *testing.T) {
	s, _ := newTestServer(t, nil)
	res := postForm(t, s, "/v1/oauth2/device_authorization",
		url.Values{"client_id": {secretID}, "scope": {"r_usr w_usr w_sub"}}, nil)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", res.status, res.raw)
	}
	code := res.str("userCode")
	if !regexp.MustCompile(`^[A-Z]{5}$`).MatchString(code) {
		t.Errorf("userCode %q is not five capital letters", code)
	}
	want := map[string]any{
		"verificationUri":         "link.tidal.com",
		"verificationUriComplete": "link.tidal.com/" + code,
		"expiresIn":               float64(300),
		"interval":                float64(2),
	}
	for key, v := range want {
		if res.body[key] != v {
			t.Errorf("%s = %v, want %v", key, res.body[key], v)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(res.str("deviceCode")) {
		t.Error("deviceCode is not a UUID")
	}
	for _, snake := range []string{"device_code", "user_code", "expires_in"} {
		if _, ok := res.body[snake]; ok {
			t.Errorf("answer has %s; TIDAL's is camelCase", snake)
		}
	}
}

func TestDeviceAuthorizationErrors(t *testing.T) {
	s, _ := newTestServer(t, nil)
	wantOAuthError(t, postForm(t, s, "/v1/oauth2/device_authorization",
		url.Values{"client_id": {"nobody"}}, nil), 401, "invalid_client", 1005)
	wantOAuthError(t, postForm(t, s, "/v1/oauth2/device_authorization",
		url.Values{"client_id": {secretID}, "client_secret": {"wrong"}}, nil),
		401, "invalid_client", 1005)
	// TIDAL's web SDK sends the secret here: a right one is accepted.
	res := postForm(t, s, "/v1/oauth2/device_authorization",
		url.Values{"client_id": {secretID}, "client_secret": {secret}}, nil)
	if res.status != http.StatusOK {
		t.Errorf("with the right secret: status %d", res.status)
	}
}

func TestDeviceCodeFlow(t *testing.T) {
	s, clock := newTestServer(t, nil)
	deviceCode, userCode := startDevice(t, s, secretID)

	wantOAuthError(t, pollDevice(t, s, deviceCode), 400, "authorization_pending", 1002)
	clock.Advance(2 * time.Second)
	wantOAuthError(t, pollDevice(t, s, deviceCode), 400, "authorization_pending", 1002)

	if err := s.ApproveDevice(userCode, User{ID: testUserID, CountryCode: "SE",
		Username: "alice", Email: "alice@example.org"}); err != nil {
		t.Fatalf("ApproveDevice: %v", err)
	}
	clock.Advance(2 * time.Second)
	res := pollDevice(t, s, deviceCode)
	if res.status != http.StatusOK || res.str("refresh_token") == "" ||
		res.str("access_token") == "" {
		t.Fatalf("approved poll: status %d, error %q", res.status, res.str("error"))
	}
	user, _ := res.body["user"].(map[string]any)
	if user["userId"] != float64(testUserID) || user["countryCode"] != "SE" ||
		user["username"] != "alice" || user["email"] != "alice@example.org" {
		t.Errorf("user object = %v", user)
	}
	if res.num("user_id") != testUserID || res.str("scope") != "r_usr w_usr w_sub" ||
		res.num("expires_in") != 86400 {
		t.Errorf("user_id %d scope %q expires_in %d", res.num("user_id"), res.str("scope"),
			res.num("expires_in"))
	}

	// The refresh token of the login refreshes, and the device code is spent.
	accessToken(t, s, res.str("refresh_token"))
	clock.Advance(2 * time.Second)
	wantOAuthError(t, pollDevice(t, s, deviceCode), 400, "invalid_grant", 11003)
}

func TestDeviceCodeErrorRows(t *testing.T) {
	tests := []struct {
		name string
		// act runs between the start and the poll.
		act       func(s *Server, clock *fakeClock, userCode string)
		code      string
		subStatus int
	}{
		{"pending", func(*Server, *fakeClock, string) {}, "authorization_pending", 1002},
		{"denied", func(s *Server, _ *fakeClock, uc string) { _ = s.DenyDevice(uc) },
			"access_denied", 0},
		{"expired after 300 s", func(_ *Server, c *fakeClock, _ string) {
			c.Advance(300 * time.Second)
		}, "expired_token", 0},
		{"approved but expired", func(s *Server, c *fakeClock, uc string) {
			_ = s.ApproveDevice(uc, User{ID: 1})
			c.Advance(301 * time.Second)
		}, "expired_token", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestServer(t, nil)
			dc, uc := startDevice(t, s, secretID)
			tt.act(s, clock, uc)
			wantOAuthError(t, pollDevice(t, s, dc), 400, tt.code, tt.subStatus)
		})
	}

	t.Run("unknown device code", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		wantOAuthError(t, pollDevice(t, s, newUUID()), 400, "invalid_grant", 11002)
	})
	t.Run("device code of another client", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		dc, _ := startDevice(t, s, publicID)
		wantOAuthError(t, pollDevice(t, s, dc), 400, "invalid_grant", 11002)
	})
}

func TestDeviceSlowDown(t *testing.T) {
	s, clock := newTestServer(t, nil)
	dc, _ := startDevice(t, s, secretID)

	wantOAuthError(t, pollDevice(t, s, dc), 400, "authorization_pending", 1002)
	clock.Advance(time.Second)
	wantOAuthError(t, pollDevice(t, s, dc), 400, "slow_down", 0)
	// The interval is now 2 + 5 seconds, for good.
	clock.Advance(7 * time.Second)
	wantOAuthError(t, pollDevice(t, s, dc), 400, "authorization_pending", 1002)
	clock.Advance(6 * time.Second)
	wantOAuthError(t, pollDevice(t, s, dc), 400, "slow_down", 0)
	// And now 12.
	clock.Advance(11 * time.Second)
	wantOAuthError(t, pollDevice(t, s, dc), 400, "slow_down", 0)
	clock.Advance(17 * time.Second)
	wantOAuthError(t, pollDevice(t, s, dc), 400, "authorization_pending", 1002)
}

func TestApproveAndDenyErrors(t *testing.T) {
	s, clock := newTestServer(t, nil)
	_, uc := startDevice(t, s, secretID)
	if err := s.ApproveDevice("ZZZZZ", User{ID: 1}); err != ErrUnknownUserCode {
		t.Errorf("unknown code: %v", err)
	}
	if err := s.ApproveDevice(uc, User{}); err != ErrInvalidSpec {
		t.Errorf("no user: %v", err)
	}
	if err := s.DenyDevice(uc); err != nil {
		t.Errorf("deny: %v", err)
	}
	if err := s.ApproveDevice(uc, User{ID: 1}); err != ErrDeviceNotLive {
		t.Errorf("approve after deny: %v", err)
	}
	_, uc2 := startDevice(t, s, secretID)
	clock.Advance(DefaultDeviceCodeLifetime)
	if err := s.ApproveDevice(uc2, User{ID: 1}); err != ErrDeviceNotLive {
		t.Errorf("approve after expiry: %v", err)
	}
}
