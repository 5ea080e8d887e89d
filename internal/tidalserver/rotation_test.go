package tidalserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rotation Rotation
		// reuseAfter is how long after the rotation the retired token is used again.
		reuseAfter time.Duration
		// reuseOK says whether that use answers; when it does, it must carry the current token.
		reuseOK bool
		// currentRevoked says whether the grant's current token is dead afterwards.
		currentRevoked bool
	}{
		{name: "no grace", rotation: Rotation{Enabled: true}, reuseAfter: 0},
		{name: "within grace", rotation: Rotation{Enabled: true, Grace: time.Minute},
			reuseAfter: 59 * time.Second, reuseOK: true},
		{name: "after grace", rotation: Rotation{Enabled: true, Grace: time.Minute},
			reuseAfter: time.Minute},
		{name: "reuse revokes", rotation: Rotation{Enabled: true, RevokeOnReuse: true},
			reuseAfter: time.Second, currentRevoked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := newTestServer(t, nil)
			s.SetRotation(tc.rotation)
			old := mustGrant(t, s, secretID)

			first := refresh(t, s, old)
			current := first.str("refresh_token")
			if first.status != http.StatusOK || current == "" || current == old {
				t.Fatalf("first refresh under rotation: status %d, new refresh token %t", first.status,
					current != "" && current != old)
			}
			clock.Advance(tc.reuseAfter)
			reuse := refresh(t, s, old)
			switch {
			case tc.reuseOK && (reuse.status != http.StatusOK || reuse.str("refresh_token") != current):
				t.Errorf("retired token within grace: status %d, answered the current refresh token %t",
					reuse.status, reuse.str("refresh_token") == current)
			case !tc.reuseOK:
				wantOAuthError(t, reuse, http.StatusBadRequest, "invalid_grant", 11003)
			}
			next := refresh(t, s, current)
			if got := next.status != http.StatusOK; got != tc.currentRevoked {
				t.Errorf("current token after the reuse: status %d, want revoked %t", next.status,
					tc.currentRevoked)
			}
		})
	}
}

// TestDropAnswer: TIDAL does the work, the client gets no answer, and the rotation it
// never saw has happened.
func TestDropAnswer(t *testing.T) {
	s, _ := newTestServer(t, nil)
	s.SetRotation(Rotation{Enabled: true})
	old := mustGrant(t, s, secretID)
	if err := s.InjectFault(Fault{Endpoint: EndpointToken, DropAnswer: true}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()

	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old},
		"client_id": {secretID}, "client_secret": {secret}}
	resp, err := http.Post(srv.URL+"/v1/oauth2/token", "application/x-www-form-urlencoded",
		strings.NewReader(form.Encode()))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the dropped answer arrived: status %d", resp.StatusCode)
	}
	if got := s.Stats().Outcomes["token/dropped"]; got != 1 {
		t.Errorf("dropped answers counted = %d, want 1 (outcomes %v)", got, s.Stats().Outcomes)
	}
	// The old token was retired by the refresh whose answer was lost.
	wantOAuthError(t, refresh(t, s, old), http.StatusBadRequest, "invalid_grant", 11003)

	if err := s.InjectFault(Fault{Endpoint: EndpointToken, DropAnswer: true, Status: 500}); err == nil {
		t.Error("a fault with a status and a dropped answer was accepted")
	}
}
