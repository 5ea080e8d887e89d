package tidal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// Clients of the TIDAL-compatible server.
const (
	publicID = "publicClient0001"
	secretID = "secretClient0001"
	devAppID = "devAppClient0001"
	userID   = 4242
)

// fixture is a TIDAL-compatible server on loopback and a client of it.
type fixture struct {
	srv *tidalserver.Server
	// serverClock is TIDAL's clock, 5 minutes ahead of ours.
	serverClock *clocktesting.FakeClock
	clock       *clocktesting.FakeClock
	client      *Client
}

const serverSkew = 5 * time.Minute

func newFixture(t *testing.T, hc *http.Client) *fixture {
	t.Helper()
	f := &fixture{serverClock: clocktesting.NewFakeClock(testNow.Add(serverSkew)), clock: newFakeClock()}
	f.srv = tidalserver.New(tidalserver.Config{
		Clients: []tidalserver.Client{
			{ID: publicID, Name: "Public Test Client"},
			{ID: secretID, Secret: canarySecret, Name: "Secret Test Client", NumericID: 77,
				AccessTokenLifetime: 24 * time.Hour},
			{ID: devAppID, Secret: canarySecret, Name: "Developer App", DeveloperApp: true},
		},
		Now: f.serverClock.Now,
	})
	ts := httptest.NewServer(f.srv)
	t.Cleanup(ts.Close)
	f.client = NewClient(Endpoints{AuthBaseURL: ts.URL + "/v1/oauth2/", APIBaseURL: ts.URL + "/v1/"}, hc, f.clock)
	return f
}

// grant logs a user in to a client and returns credentials whose refresh token is refresh.
func (f *fixture) grant(t *testing.T, clientID, secret, refresh string) Credentials {
	t.Helper()
	if _, err := f.srv.IssueGrant(tidalserver.GrantSpec{ClientID: clientID, UserID: userID,
		CountryCode: "NO", RefreshToken: refresh}); err != nil {
		t.Fatalf("IssueGrant: %v", err)
	}
	return Credentials{ClientID: clientID, ClientSecret: secret, RefreshToken: refresh}
}

// advance moves both clocks.
func (f *fixture) advance(d time.Duration) {
	f.clock.Step(d)
	f.serverClock.Step(d)
}

func TestTIDALServerRefreshAndSession(t *testing.T) {
	tests := []struct {
		name     string
		clientID string
		secret   string
		lifetime time.Duration
		wantName string
		wantNum  string
	}{
		{"confidential client", secretID, canarySecret, 24 * time.Hour, "Secret Test Client", "77"},
		{"public client", publicID, "", tidalserver.DefaultAccessTokenLifetime, "Public Test Client", "1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			creds := f.grant(t, tt.clientID, tt.secret, canaryRefresh)

			tok, err := f.client.Refresh(context.Background(), creds)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.RefreshToken != "" {
				t.Errorf("token present %v, type %q, rotated %v: want a bearer token and no rotation",
					tok.AccessToken != "", tok.TokenType, tok.RefreshToken != "")
			}
			// Expiry from our clock; TIDAL's Date only reported.
			if !tok.ReceivedAt.Equal(testNow) || tok.Lifetime != tt.lifetime || !tok.ExpiresAt.Equal(testNow.Add(tt.lifetime)) {
				t.Errorf("ReceivedAt %v Lifetime %v ExpiresAt %v", tok.ReceivedAt, tok.Lifetime, tok.ExpiresAt)
			}
			if !tok.ServerDate.Equal(testNow.Add(serverSkew)) {
				t.Errorf("ServerDate %v, want the server's clock %v", tok.ServerDate, testNow.Add(serverSkew))
			}
			if tok.UserID != "4242" || tok.ClientName != tt.wantName || tok.Scope != "r_usr w_usr w_sub" {
				t.Errorf("UserID %q ClientName %q Scope %q", tok.UserID, tok.ClientName, tok.Scope)
			}

			info, err := f.client.Session(context.Background(), tok.AccessToken)
			if err != nil {
				t.Fatalf("Session: %v", err)
			}
			if info.UserID != "4242" || info.CountryCode != "NO" || info.SessionID == "" ||
				info.ClientID != tt.wantNum || info.ClientName != tt.wantName {
				t.Errorf("Session() = %+v", *info)
			}

			// The old refresh token is kept: it works again.
			if _, err := f.client.Refresh(context.Background(), creds); err != nil {
				t.Errorf("second Refresh: %v", err)
			}
		})
	}
}

func TestTIDALServerRotation(t *testing.T) {
	f := newFixture(t, nil)
	creds := f.grant(t, secretID, canarySecret, canaryRefresh)
	f.srv.SetRotation(tidalserver.Rotation{Enabled: true, Grace: time.Minute})

	tok, err := f.client.Refresh(context.Background(), creds)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok.RefreshToken == "" || tok.RefreshToken == canaryRefresh {
		t.Fatalf("rotation not reported: RefreshToken %q", tok.RefreshToken)
	}

	// The new refresh token works and rotates again.
	next, err := f.client.Refresh(context.Background(), Credentials{ClientID: secretID,
		ClientSecret: canarySecret, RefreshToken: tok.RefreshToken})
	if err != nil || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("Refresh with the rotated token: %v, rotated %v", err, next != nil && next.RefreshToken != "")
	}

	// The retired one, after its grace period, is rejected for good.
	f.advance(2 * time.Minute)
	_, err = f.client.Refresh(context.Background(), creds)
	assertNoCanary(t, err)
	if te := asError(t, err); te.Kind != GrantInvalid || te.Code != CodeInvalidGrant {
		t.Errorf("retired token: %+v, want GrantInvalid", *te)
	}
}

// TestTIDALServerErrors drives the server into each failure it knows and checks the class.
func TestTIDALServerErrors(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the server and returns the credentials to refresh with.
		setup          func(t *testing.T, f *fixture) Credentials
		wantKind       Kind
		wantCode       string
		wantStatus     int
		wantSubStatus  int
		wantRetryAfter time.Duration
		wantCause      string
	}{
		{
			name: "unknown refresh token",
			setup: func(t *testing.T, f *fixture) Credentials {
				return Credentials{ClientID: secretID, ClientSecret: canarySecret, RefreshToken: canaryRefresh}
			},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantStatus: 400, wantSubStatus: 11002,
		},
		{
			name: "revoked grant",
			setup: func(t *testing.T, f *fixture) Credentials {
				creds := f.grant(t, secretID, canarySecret, canaryRefresh)
				if err := f.srv.RevokeGrant(canaryRefresh); err != nil {
					t.Fatal(err)
				}
				return creds
			},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantStatus: 400, wantSubStatus: 11003,
		},
		{
			name: "token of another client",
			setup: func(t *testing.T, f *fixture) Credentials {
				f.grant(t, publicID, "", canaryRefresh)
				return Credentials{ClientID: secretID, ClientSecret: canarySecret, RefreshToken: canaryRefresh}
			},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantStatus: 400, wantSubStatus: 11002,
		},
		{
			name: "revoked client",
			setup: func(t *testing.T, f *fixture) Credentials {
				creds := f.grant(t, secretID, canarySecret, canaryRefresh)
				if err := f.srv.RevokeClient(secretID); err != nil {
					t.Fatal(err)
				}
				return creds
			},
			wantKind: ClientInvalid, wantCode: CodeInvalidClient, wantStatus: 401, wantSubStatus: 1005,
		},
		{
			name: "unknown client",
			setup: func(t *testing.T, f *fixture) Credentials {
				return Credentials{ClientID: canaryClient, ClientSecret: canarySecret, RefreshToken: canaryRefresh}
			},
			wantKind: ClientInvalid, wantCode: CodeInvalidClient, wantStatus: 401, wantSubStatus: 1005,
		},
		{
			name: "wrong secret",
			setup: func(t *testing.T, f *fixture) Credentials {
				creds := f.grant(t, secretID, canarySecret, canaryRefresh)
				creds.ClientSecret = "CANARY-CS-wrong"
				return creds
			},
			wantKind: ClientInvalid, wantCode: CodeInvalidClient, wantStatus: 401, wantSubStatus: 1005,
		},
		{
			name: "missing secret",
			setup: func(t *testing.T, f *fixture) Credentials {
				creds := f.grant(t, secretID, canarySecret, canaryRefresh)
				creds.ClientSecret = ""
				return creds
			},
			wantKind: ClientInvalid, wantCode: CodeInvalidClient, wantStatus: 401, wantSubStatus: 1005,
		},
		{
			name: "outage with Retry-After",
			setup: func(t *testing.T, f *fixture) Credentials {
				inject(t, f, tidalserver.Fault{Endpoint: tidalserver.EndpointToken, Status: 503,
					Body:    `{"status":503,"error_description":"` + canaryBody + `"}`,
					Headers: map[string]string{"Retry-After": "17"}})
				return f.grant(t, secretID, canarySecret, canaryRefresh)
			},
			wantKind: Transient, wantStatus: 503, wantRetryAfter: 17 * time.Second,
			wantCause: "answer is not a TIDAL error object",
		},
		{
			name: "rate limit without Retry-After",
			setup: func(t *testing.T, f *fixture) Credentials {
				inject(t, f, tidalserver.Fault{Endpoint: tidalserver.EndpointToken, Status: 429})
				return f.grant(t, secretID, canarySecret, canaryRefresh)
			},
			wantKind: Transient, wantStatus: 429, wantCause: "answer is not a TIDAL error object",
		},
		{
			name: "rate limit with Retry-After date by TIDAL's clock",
			setup: func(t *testing.T, f *fixture) Credentials {
				// Our clock is 5 minutes behind TIDAL's; a date 1 minute after TIDAL's now is a
				// minute's wait, read against TIDAL's Date header, not six.
				at := testNow.Add(serverSkew + time.Minute).Format(http.TimeFormat)
				inject(t, f, tidalserver.Fault{Endpoint: tidalserver.EndpointToken, Status: 429,
					Headers: map[string]string{"Retry-After": at}})
				return f.grant(t, secretID, canarySecret, canaryRefresh)
			},
			wantKind: Transient, wantStatus: 429, wantRetryAfter: time.Minute,
			wantCause: "answer is not a TIDAL error object",
		},
		{
			name: "invalid_grant sent with 500",
			setup: func(t *testing.T, f *fixture) Credentials {
				inject(t, f, tidalserver.Fault{Endpoint: tidalserver.EndpointToken, Status: 500,
					Body: `{"status":500,"error":"invalid_grant","sub_status":11003,"error_description":"` +
						canaryBody + `"}`})
				return f.grant(t, secretID, canarySecret, canaryRefresh)
			},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantStatus: 500, wantSubStatus: 11003,
		},
		{
			name: "html from a proxy",
			setup: func(t *testing.T, f *fixture) Credentials {
				inject(t, f, tidalserver.Fault{Endpoint: tidalserver.EndpointToken, Status: 502,
					Body: "<html>" + canaryBody + "</html>", Headers: map[string]string{"Content-Type": "text/html"}})
				return f.grant(t, secretID, canarySecret, canaryRefresh)
			},
			wantKind: Transient, wantStatus: 502, wantCause: "answer is not a TIDAL error object",
		},
		{
			name: "slow answer",
			setup: func(t *testing.T, f *fixture) Credentials {
				inject(t, f, tidalserver.Fault{Endpoint: tidalserver.EndpointToken, Delay: 5 * time.Second})
				return f.grant(t, secretID, canarySecret, canaryRefresh)
			},
			wantKind: Transient, wantCause: "timed out",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, &http.Client{Timeout: 200 * time.Millisecond})
			creds := tt.setup(t, f)
			tok, err := f.client.Refresh(context.Background(), creds)
			if tok != nil {
				t.Fatalf("Refresh returned a token, error %v", err)
			}
			assertNoCanary(t, err)
			te := asError(t, err)
			if te.Kind != tt.wantKind || te.Code != tt.wantCode || te.HTTPStatus != tt.wantStatus ||
				te.SubStatus != tt.wantSubStatus || te.RetryAfter != tt.wantRetryAfter || te.Cause != tt.wantCause {
				t.Errorf("got %+v\nwant Kind=%s Code=%q HTTP=%d Sub=%d RetryAfter=%v Cause=%q", *te, tt.wantKind,
					tt.wantCode, tt.wantStatus, tt.wantSubStatus, tt.wantRetryAfter, tt.wantCause)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func inject(t *testing.T, f *fixture, fault tidalserver.Fault) {
	t.Helper()
	if err := f.srv.InjectFault(fault); err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
}

// TestTIDALServerSessionErrors checks Session against the server's own answers for tokens
// that expired, were revoked, belong to a revoked client or to a developer app.
func TestTIDALServerSessionErrors(t *testing.T) {
	tests := []struct {
		name     string
		clientID string
		after    func(t *testing.T, f *fixture)
		// replace, when set, is the access token sent instead of the refreshed one.
		replace        *string
		wantKind       Kind
		wantStatus     int
		wantSubStatus  int
		wantRetryAfter time.Duration
	}{
		{name: "expired access token", clientID: secretID,
			after:    func(t *testing.T, f *fixture) { f.advance(25 * time.Hour) },
			wantKind: Transient, wantStatus: 401, wantSubStatus: 11003},
		{name: "revoked grant", clientID: secretID,
			after: func(t *testing.T, f *fixture) {
				if err := f.srv.RevokeGrant(canaryRefresh); err != nil {
					t.Fatal(err)
				}
			},
			wantKind: GrantInvalid, wantStatus: 401, wantSubStatus: 11003},
		{name: "revoked client", clientID: secretID,
			after: func(t *testing.T, f *fixture) {
				if err := f.srv.RevokeClient(secretID); err != nil {
					t.Fatal(err)
				}
			},
			wantKind: ClientInvalid, wantStatus: 401, wantSubStatus: 8003},
		{name: "developer app", clientID: devAppID,
			wantKind: Transient, wantStatus: 403, wantSubStatus: 6001},
		{name: "unknown token", clientID: secretID, replace: ptr(canaryAccess),
			wantKind: Transient, wantStatus: 401, wantSubStatus: 11002},
		{name: "empty token", clientID: secretID, replace: ptr(""),
			wantKind: Transient, wantStatus: 401, wantSubStatus: 6004},
		{name: "rate limited", clientID: secretID,
			after: func(t *testing.T, f *fixture) {
				inject(t, f, tidalserver.Fault{Endpoint: tidalserver.EndpointSessions, Status: 429,
					Body:    `{"status":429,"subStatus":0,"userMessage":"` + canaryBody + `"}`,
					Headers: map[string]string{"Retry-After": "3"}})
			},
			wantKind: Transient, wantStatus: 429, wantRetryAfter: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			creds := f.grant(t, tt.clientID, canarySecret, canaryRefresh)
			if tt.clientID == publicID {
				creds.ClientSecret = ""
			}
			tok, err := f.client.Refresh(context.Background(), creds)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tt.after != nil {
				tt.after(t, f)
			}
			access := tok.AccessToken
			if tt.replace != nil {
				access = *tt.replace
			}
			info, err := f.client.Session(context.Background(), access)
			if info != nil {
				t.Fatalf("Session() = %+v, want an error", *info)
			}
			assertNoCanary(t, err)
			te := asError(t, err)
			if te.Kind != tt.wantKind || te.HTTPStatus != tt.wantStatus || te.SubStatus != tt.wantSubStatus ||
				te.RetryAfter != tt.wantRetryAfter {
				t.Errorf("got %+v, want Kind=%s HTTP=%d Sub=%d RetryAfter=%v", *te, tt.wantKind, tt.wantStatus,
					tt.wantSubStatus, tt.wantRetryAfter)
			}
		})
	}
}
