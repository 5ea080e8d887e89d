package tidal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

const canaryDevice = "CANARY-DC-0b5e77"

func deviceJSON(fields string) string {
	return `{"deviceCode":"` + canaryDevice + `","userCode":"ABCDE"` + fields + `}`
}

func TestStartDeviceLoginAnswers(t *testing.T) {
	tests := []struct {
		name         string
		answer       answer
		wantLink     string
		wantInterval time.Duration
		wantLifetime time.Duration
		wantKind     Kind
		wantCode     string
	}{
		{name: "scheme added to the complete link", wantInterval: 2 * time.Second, wantLifetime: 300 * time.Second,
			answer: answer{200, jsonHeader(), deviceJSON(`,"verificationUri":"link.tidal.com",` +
				`"verificationUriComplete":"link.tidal.com/ABCDE","expiresIn":300,"interval":2`)},
			wantLink: "https://link.tidal.com/ABCDE"},
		{name: "plain link without a complete one", wantInterval: 5 * time.Second, wantLifetime: 300 * time.Second,
			answer:   answer{200, jsonHeader(), deviceJSON(`,"verificationUri":"link.tidal.com","expiresIn":300`)},
			wantLink: "https://link.tidal.com"},
		{name: "a scheme is kept; a bad complete link falls back", wantInterval: time.Minute, wantLifetime: time.Hour,
			answer: answer{200, jsonHeader(), deviceJSON(`,"verificationUri":"http://127.0.0.1:1/link",` +
				`"verificationUriComplete":"javascript://x","expiresIn":99999,"interval":3600`)},
			wantLink: "http://127.0.0.1:1/link"},
		{name: "zero interval is one second", wantInterval: time.Second, wantLifetime: 10 * time.Second,
			answer:   answer{200, jsonHeader(), deviceJSON(`,"verificationUri":"link.tidal.com","expiresIn":10,"interval":0`)},
			wantLink: "https://link.tidal.com"},
		{name: "no link", wantKind: Transient,
			answer: answer{200, jsonHeader(), deviceJSON(`,"expiresIn":300`)}},
		{name: "link with a user", wantKind: Transient,
			answer: answer{200, jsonHeader(), deviceJSON(`,"verificationUri":"https://` + canaryBody + `@x","expiresIn":300`)}},
		{name: "link with spaces", wantKind: Transient,
			answer: answer{200, jsonHeader(), deviceJSON(`,"verificationUri":"link tidal","expiresIn":300`)}},
		{name: "no expiry", wantKind: Transient,
			answer: answer{200, jsonHeader(), deviceJSON(`,"verificationUri":"link.tidal.com"`)}},
		{name: "negative interval", wantKind: Transient,
			answer: answer{200, jsonHeader(), deviceJSON(`,"verificationUri":"link.tidal.com","expiresIn":300,"interval":-1`)}},
		{name: "user code with markup", wantKind: Transient,
			answer: answer{200, jsonHeader(), `{"deviceCode":"x","userCode":"<b>` + canaryBody + `","verificationUri":"l.t","expiresIn":3}`}},
		{name: "no device code", wantKind: Transient,
			answer: answer{200, jsonHeader(), `{"userCode":"ABCDE","verificationUri":"l.t","expiresIn":3}`}},
		{name: "not JSON", wantKind: Transient, answer: answer{200, jsonHeader(), canaryBody}},
		{name: "invalid_client", wantKind: ClientInvalid, wantCode: CodeInvalidClient,
			answer: answer{401, jsonHeader(), tokenErrorJSON(401, "invalid_client", 1005)}},
		{name: "outage", wantKind: Transient, answer: answer{503, nil, canaryBody}},
		{name: "too large", wantKind: Transient, answer: answer{200, jsonHeader(), huge(`{"x":"`, `"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := clientFor(serve(t, tt.answer), clk, nil)
			got, err := c.StartDeviceLogin(context.Background(), testCreds())
			assertNoCanary(t, err)
			if tt.wantKind != "" {
				te := asError(t, err)
				if te.Kind != tt.wantKind || te.Code != tt.wantCode || got != nil {
					t.Fatalf("got %v (kind %s, code %q), %v; want kind %s, code %q", err, te.Kind, te.Code, got,
						tt.wantKind, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DeviceCode != canaryDevice || got.UserCode != "ABCDE" || got.VerificationURI != tt.wantLink ||
				got.Interval != tt.wantInterval || !got.ReceivedAt.Equal(testNow) ||
				!got.ExpiresAt.Equal(testNow.Add(tt.wantLifetime)) {
				t.Fatalf("got %+v; want link %s, interval %v, lifetime %v", got, tt.wantLink, tt.wantInterval, tt.wantLifetime)
			}
		})
	}
}

func TestStartDeviceLoginRequest(t *testing.T) {
	var form url.Values
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form, path = r.PostForm, r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(deviceJSON(`,"verificationUri":"link.tidal.com","expiresIn":300,"interval":2`)))
	}))
	t.Cleanup(srv.Close)
	c := clientFor(srv.URL, newFakeClock(), nil)
	if _, err := c.StartDeviceLogin(context.Background(), testCreds()); err != nil {
		t.Fatal(err)
	}
	if path != "/oauth2/device_authorization" || form.Get("client_id") != canaryClient ||
		form.Get("client_secret") != canarySecret || form.Get("scope") != DeviceScope || form.Has("refresh_token") {
		t.Fatalf("request to %s with form keys %v", path, keys(form))
	}

	// A public client sends no secret; no client id is not sent at all.
	pub := Credentials{ClientID: canaryClient}
	if _, err := c.StartDeviceLogin(context.Background(), pub); err != nil || form.Has("client_secret") {
		t.Fatalf("public client: %v, form keys %v", err, keys(form))
	}
	_, err := c.StartDeviceLogin(context.Background(), Credentials{})
	if te := asError(t, err); te.Kind != ClientInvalid || te.HTTPStatus != 0 {
		t.Fatalf("empty client id: %v", err)
	}
}

func keys(v url.Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	return out
}

func TestPollDeviceLoginAnswers(t *testing.T) {
	tests := []struct {
		name     string
		answer   answer
		wantKind Kind
		wantCode string
	}{
		{name: "pending", wantKind: Transient, wantCode: CodeAuthorizationPending,
			answer: answer{400, jsonHeader(), tokenErrorJSON(400, "authorization_pending", 1002)}},
		{name: "slow_down", wantKind: Transient, wantCode: CodeSlowDown,
			answer: answer{400, jsonHeader(), tokenErrorJSON(400, "slow_down", 0)}},
		{name: "expired", wantKind: Transient, wantCode: CodeExpiredToken,
			answer: answer{400, jsonHeader(), tokenErrorJSON(400, "expired_token", 0)}},
		{name: "denied", wantKind: Transient, wantCode: CodeAccessDenied,
			answer: answer{400, jsonHeader(), tokenErrorJSON(400, "access_denied", 0)}},
		{name: "unknown code", wantKind: GrantInvalid, wantCode: CodeInvalidGrant,
			answer: answer{400, jsonHeader(), tokenErrorJSON(400, "invalid_grant", 0)}},
		{name: "error labelled text/plain", wantKind: Transient, wantCode: CodeSlowDown,
			answer: answer{400, map[string][]string{"Content-Type": {"text/plain"}}, tokenErrorJSON(400, "slow_down", 0)}},
		{name: "outage", wantKind: Transient, answer: answer{502, nil, canaryBody}},
		{name: "no refresh token", wantKind: Transient,
			answer: answer{200, jsonHeader(), `{"access_token":"` + canaryAccess + `","token_type":"Bearer","expires_in":60}`}},
		{name: "no access token", wantKind: Transient,
			answer: answer{200, jsonHeader(), `{"refresh_token":"` + canaryRotated + `","expires_in":60}`}},
		{name: "no lifetime", wantKind: Transient,
			answer: answer{200, jsonHeader(), `{"access_token":"` + canaryAccess + `","refresh_token":"` + canaryRotated + `"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientFor(serve(t, tt.answer), newFakeClock(), nil)
			tok, err := c.PollDeviceLogin(context.Background(), testCreds(), canaryDevice)
			assertNoCanary(t, err)
			te := asError(t, err)
			if te.Kind != tt.wantKind || te.Code != tt.wantCode {
				t.Fatalf("got %v (kind %s, code %q); want kind %s, code %q", err, te.Kind, te.Code, tt.wantKind, tt.wantCode)
			}
			if tt.name == "no lifetime" {
				// The new refresh token is handed back all the same, as a refresh does.
				if tok == nil || tok.RefreshToken != canaryRotated || tok.AccessToken != "" {
					t.Fatalf("partial token %+v", tok)
				}
			} else if tok != nil {
				t.Fatalf("token %+v with an error", tok)
			}
		})
	}

	c := clientFor(serve(t, answer{200, jsonHeader(), ""}), newFakeClock(), nil)
	_, err := c.PollDeviceLogin(context.Background(), testCreds(), "")
	if te := asError(t, err); te.Kind != GrantInvalid || te.HTTPStatus != 0 {
		t.Fatalf("empty device code: %v", err)
	}
}

func TestPollDeviceLoginSuccess(t *testing.T) {
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Date", testNow.Add(time.Hour).Format(http.TimeFormat))
		_, _ = w.Write([]byte(`{"access_token":"` + canaryAccess + `","token_type":"Bearer","expires_in":3600,` +
			`"refresh_token":"` + canaryRotated + `","user_id":4711,"clientName":"Device","scope":"r_usr",` +
			`"user":{"userId":4711,"countryCode":"NO"}}`))
	}))
	t.Cleanup(srv.Close)
	c := clientFor(srv.URL, newFakeClock(), nil)
	tok, err := c.PollDeviceLogin(context.Background(), testCreds(), canaryDevice)
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("grant_type") != deviceCodeGrant || form.Get("device_code") != canaryDevice ||
		form.Get("client_id") != canaryClient || form.Get("client_secret") != canarySecret || form.Has("refresh_token") {
		t.Fatalf("form keys %v, grant %s", keys(form), form.Get("grant_type"))
	}
	want := Token{AccessToken: canaryAccess, TokenType: "Bearer", RefreshToken: canaryRotated, ReceivedAt: testNow,
		Lifetime: time.Hour, ExpiresAt: testNow.Add(time.Hour), ServerDate: testNow.Add(time.Hour), UserID: "4711",
		ClientName: "Device", Scope: "r_usr"}
	if *tok != want {
		t.Fatalf("got %+v, want %+v", *tok, want)
	}
}

func TestDeviceLoginTransportFailures(t *testing.T) {
	for name, base := range map[string]string{"refused": refusedURL(t), "timeout": hangingServer(t)} {
		t.Run(name, func(t *testing.T) {
			c := clientFor(base, newFakeClock(), &http.Client{Timeout: 200 * time.Millisecond})
			_, err := c.StartDeviceLogin(context.Background(), testCreds())
			if te := asError(t, err); te.Kind != Transient || te.HTTPStatus != 0 {
				t.Fatalf("start: %v", err)
			}
			_, err = c.PollDeviceLogin(context.Background(), testCreds(), canaryDevice)
			if te := asError(t, err); te.Kind != Transient || te.HTTPStatus != 0 {
				t.Fatalf("poll: %v", err)
			}
			assertNoCanary(t, err)
		})
	}
	c := clientFor("http://127.0.0.1:1/\x7f", newFakeClock(), nil)
	if _, err := c.PollDeviceLogin(context.Background(), testCreds(), canaryDevice); asError(t, err).Cause != "cannot build request" {
		t.Fatalf("bad URL: %v", err)
	}
}

// TestDeviceLoginAgainstServer runs the whole flow against the TIDAL-compatible server:
// pending, slow_down, approval, and the refresh token working afterwards; then denial.
func TestDeviceLoginAgainstServer(t *testing.T) {
	f := newFixture(t, nil)
	creds := Credentials{ClientID: secretID, ClientSecret: canarySecret}
	ctx := context.Background()

	da, err := f.client.StartDeviceLogin(ctx, creds)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(da.VerificationURI, "https://link.tidal.com/") || !strings.HasSuffix(da.VerificationURI, da.UserCode) ||
		da.Interval != tidalserver.DefaultDevicePollInterval {
		t.Fatalf("authorization %+v", da)
	}
	if _, err := f.client.PollDeviceLogin(ctx, creds, da.DeviceCode); asError(t, err).Code != CodeAuthorizationPending {
		t.Fatalf("first poll: %v", err)
	}
	if _, err := f.client.PollDeviceLogin(ctx, creds, da.DeviceCode); asError(t, err).Code != CodeSlowDown {
		t.Fatalf("immediate second poll: %v", err)
	}
	if err := f.srv.ApproveDevice(da.UserCode, tidalserver.User{ID: userID, CountryCode: "NO"}); err != nil {
		t.Fatal(err)
	}
	f.serverClock.Step(da.Interval + 5*time.Second)
	tok, err := f.client.PollDeviceLogin(ctx, creds, da.DeviceCode)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.UserID != "4242" {
		t.Fatalf("token %+v", tok)
	}
	if _, err := f.client.Refresh(ctx, Credentials{ClientID: secretID, ClientSecret: canarySecret,
		RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatalf("the device login's refresh token does not refresh: %v", err)
	}

	da, err = f.client.StartDeviceLogin(ctx, creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.DenyDevice(da.UserCode); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.PollDeviceLogin(ctx, creds, da.DeviceCode); asError(t, err).Code != CodeAccessDenied {
		t.Fatalf("denied: %v", err)
	}
	f.serverClock.Step(tidalserver.DefaultDeviceCodeLifetime)
	if _, err := f.client.PollDeviceLogin(ctx, creds, da.DeviceCode); asError(t, err).Code != CodeExpiredToken {
		t.Fatalf("expired: %v", err)
	}
}
