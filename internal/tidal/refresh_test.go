package tidal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenErrorJSON is an error body of TIDAL's token endpoint whose description carries a
// canary, as a server echoing request data would.
func tokenErrorJSON(status int, code string, subStatus int) string {
	b := `{"status":` + strconv.Itoa(status) + `,"error":"` + code + `"`
	if subStatus != 0 {
		b += `,"sub_status":` + strconv.Itoa(subStatus)
	}
	return b + `,"error_description":"The token has expired. (Expired on time) ` + canaryBody + ` ` +
		canaryRefresh + `"}`
}

// huge is a body beyond maxBodyBytes whose canary sits beyond and before the bound.
func huge(prefix, suffix string) string {
	return prefix + canaryBody + strings.Repeat("A", maxBodyBytes+10) + canaryBody + suffix
}

func TestRefreshErrorAnswers(t *testing.T) {
	clk := newFakeClock()
	retryDate := testNow.Add(90 * time.Second).Format(http.TimeFormat)
	const revoked = `{"status":400,"error":"invalid_grant","sub_status":11003,` +
		`"error_description":"The token has expired. (Bad subject token version)"}`

	tests := []struct {
		name           string
		answer         answer
		wantKind       Kind
		wantCode       string
		wantSubStatus  int
		wantRetryAfter time.Duration
		wantCause      bool
	}{
		// TIDAL.md's table.
		{name: "invalid_grant expired", answer: answer{400, jsonHeader(), tokenErrorJSON(400, "invalid_grant", 11003)},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantSubStatus: 11003},
		{name: "invalid_grant revoked", answer: answer{400, jsonHeader(), revoked},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantSubStatus: 11003},
		{name: "invalid_client", answer: answer{401, jsonHeader(), tokenErrorJSON(401, "invalid_client", 1005)},
			wantKind: ClientInvalid, wantCode: CodeInvalidClient, wantSubStatus: 1005},
		{name: "unauthorized_client", answer: answer{400, jsonHeader(), tokenErrorJSON(400, "unauthorized_client", 0)},
			wantKind: ClientInvalid, wantCode: CodeUnauthorizedClient},
		// The error field decides, not the status.
		{name: "invalid_grant with 401", answer: answer{401, jsonHeader(), tokenErrorJSON(401, "invalid_grant", 11003)},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantSubStatus: 11003},
		{name: "invalid_grant with 404", answer: answer{404, jsonHeader(), tokenErrorJSON(404, "invalid_grant", 0)},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant},
		{name: "invalid_grant with 500", answer: answer{500, jsonHeader(), tokenErrorJSON(500, "invalid_grant", 0)},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant},
		{name: "invalid_grant with 200", answer: answer{200, jsonHeader(), tokenErrorJSON(200, "invalid_grant", 0)},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant},
		{name: "revocation text without error field",
			answer:   answer{400, jsonHeader(), `{"status":400,"error_description":"(Bad subject token version)"}`},
			wantKind: GrantInvalid, wantCause: true},
		// The JSON error field decides whatever the Content-Type says.
		{name: "invalid_grant labelled text/plain",
			answer:   answer{400, map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}}, revoked},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantSubStatus: 11003},
		{name: "invalid_client labelled text/html",
			answer:   answer{401, map[string][]string{"Content-Type": {"text/html"}}, tokenErrorJSON(401, "invalid_client", 1005)},
			wantKind: ClientInvalid, wantCode: CodeInvalidClient, wantSubStatus: 1005},
		{name: "invalid_grant without Content-Type",
			answer:   answer{400, map[string][]string{"Content-Type": nil}, tokenErrorJSON(400, "invalid_grant", 11003)},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant, wantSubStatus: 11003},
		{name: "form-encoded invalid_grant",
			answer: answer{400, map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}},
				"error=invalid_grant&error_description=" + canaryBody},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant},
		// Known codes that are not final.
		{name: "invalid_request", answer: answer{400, jsonHeader(), tokenErrorJSON(400, "invalid_request", 0)},
			wantKind: Transient, wantCode: "invalid_request"},
		{name: "authorization_pending", answer: answer{400, jsonHeader(), tokenErrorJSON(400, "authorization_pending", 1002)},
			wantKind: Transient, wantCode: CodeAuthorizationPending, wantSubStatus: 1002},
		{name: "server_error", answer: answer{500, jsonHeader(), tokenErrorJSON(500, "server_error", 0)},
			wantKind: Transient, wantCode: "server_error"},
		// An unknown code never travels on.
		{name: "unknown code", answer: answer{400, jsonHeader(), tokenErrorJSON(400, canaryBody, 0)},
			wantKind: Transient, wantCode: "other"},
		{name: "sub_status as string",
			answer:   answer{400, jsonHeader(), `{"error":"invalid_grant","sub_status":"11003"}`},
			wantKind: GrantInvalid, wantCode: CodeInvalidGrant},
		// Outages.
		{name: "500 without body", answer: answer{500, nil, ""}, wantKind: Transient, wantCause: true},
		{name: "502 html", answer: answer{502, map[string][]string{"Content-Type": {"text/html"}},
			"<html><body>Bad Gateway " + canaryBody + "</body></html>"}, wantKind: Transient, wantCause: true},
		{name: "503 with Retry-After", answer: answer{503, map[string][]string{"Retry-After": {"120"}}, ""},
			wantKind: Transient, wantRetryAfter: 2 * time.Minute, wantCause: true},
		{name: "400 empty body", answer: answer{400, jsonHeader(), ""}, wantKind: Transient, wantCause: true},
		{name: "400 empty object", answer: answer{400, jsonHeader(), "{}"}, wantKind: Transient, wantCause: true},
		{name: "400 truncated JSON", answer: answer{400, jsonHeader(), `{"error":"invalid_gr`},
			wantKind: Transient, wantCause: true},
		{name: "400 error not a string", answer: answer{400, jsonHeader(), `{"error":12,"sub_status":1005}`},
			wantKind: Transient, wantSubStatus: 1005, wantCause: true},
		{name: "401 without body", answer: answer{401, nil, ""}, wantKind: Transient, wantCause: true},
		// Rate limits.
		{name: "429 without Retry-After", answer: answer{429, nil, ""}, wantKind: Transient, wantCause: true},
		{name: "429 Retry-After seconds", answer: answer{429, map[string][]string{"Retry-After": {"30"}}, ""},
			wantKind: Transient, wantRetryAfter: 30 * time.Second, wantCause: true},
		{name: "429 Retry-After date", answer: answer{429, map[string][]string{"Retry-After": {retryDate}, "Date": nil}, ""},
			wantKind: Transient, wantRetryAfter: 90 * time.Second, wantCause: true},
		{name: "429 Retry-After past date",
			answer:   answer{429, map[string][]string{"Retry-After": {testNow.Add(-time.Hour).Format(http.TimeFormat)}}, ""},
			wantKind: Transient, wantCause: true},
		{name: "429 Retry-After garbage", answer: answer{429, map[string][]string{"Retry-After": {canaryBody}}, ""},
			wantKind: Transient, wantCause: true},
		{name: "429 Retry-After overflowing", answer: answer{429, map[string][]string{"Retry-After": {"10000000000"}}, ""},
			wantKind: Transient, wantRetryAfter: maxRetryAfter, wantCause: true},
		{name: "429 with JSON body", answer: answer{429, jsonHeader("Retry-After", "5"),
			`{"status":429,"error":"temporarily_unavailable","error_description":"` + canaryBody + `"}`},
			wantKind: Transient, wantCode: "temporarily_unavailable", wantRetryAfter: 5 * time.Second},
		// Bodies beyond the bound: oauth2 reads 1 MiB, the rest is never seen.
		{name: "huge error body", answer: answer{400, jsonHeader(), huge(`{"error":"invalid_grant","error_description":"`, `"}`)},
			wantKind: Transient, wantCause: true},
		// Answers that are not errors to oauth2 but still fail: 3xx is not followed.
		{name: "redirect", answer: answer{307, map[string][]string{"Location": {"/elsewhere"}}, ""},
			wantKind: Transient, wantCause: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientFor(serve(t, tt.answer), clk, nil)
			tok, err := c.Refresh(context.Background(), testCreds())
			if tok != nil {
				t.Fatalf("Refresh returned a token with error %v", err)
			}
			assertNoCanary(t, err)
			te := asError(t, err)
			if te.Kind != tt.wantKind || te.Code != tt.wantCode || te.HTTPStatus != tt.answer.status ||
				te.SubStatus != tt.wantSubStatus || te.RetryAfter != tt.wantRetryAfter {
				t.Errorf("got Kind=%s Code=%q HTTP=%d Sub=%d RetryAfter=%v, want %s %q %d %d %v",
					te.Kind, te.Code, te.HTTPStatus, te.SubStatus, te.RetryAfter,
					tt.wantKind, tt.wantCode, tt.answer.status, tt.wantSubStatus, tt.wantRetryAfter)
			}
			if (te.Cause != "") != tt.wantCause {
				t.Errorf("Cause = %q, want one: %v", te.Cause, tt.wantCause)
			}
			if te.Op != "refresh token" {
				t.Errorf("Op = %q", te.Op)
			}
			if KindOf(err) != tt.wantKind {
				t.Errorf("KindOf = %s, want %s", KindOf(err), tt.wantKind)
			}
		})
	}
}

// TestRefreshUnusableSuccess covers 200 answers that carry no usable token.
func TestRefreshUnusableSuccess(t *testing.T) {
	clk := newFakeClock()
	tok := func(extra string) string {
		return `{"access_token":"` + canaryAccess + `","refresh_token":"` + canaryRotated + `"` + extra + `}`
	}
	tests := []struct {
		name   string
		answer answer
	}{
		{"empty body", answer{200, jsonHeader(), ""}},
		{"html", answer{200, map[string][]string{"Content-Type": {"text/html"}}, "<html>" + canaryBody + "</html>"}},
		{"not an object", answer{200, jsonHeader(), `["` + canaryAccess + `"]`}},
		{"truncated", answer{200, jsonHeader(), `{"access_token":"` + canaryAccess}},
		{"no access_token", answer{200, jsonHeader(), `{"token_type":"Bearer","expires_in":14400}`}},
		{"no expires_in", answer{200, jsonHeader(), tok(`,"token_type":"Bearer"`)}},
		{"zero expires_in", answer{200, jsonHeader(), tok(`,"token_type":"Bearer","expires_in":0`)}},
		{"negative expires_in", answer{200, jsonHeader(), tok(`,"token_type":"Bearer","expires_in":-5`)}},
		{"fractional expires_in", answer{200, jsonHeader(), tok(`,"token_type":"Bearer","expires_in":1.5`)}},
		{"expires_in not a number", answer{200, jsonHeader(), tok(`,"token_type":"Bearer","expires_in":"soon"`)}},
		{"token_type mac", answer{200, jsonHeader(), tok(`,"token_type":"mac","expires_in":14400`)}},
		{"JSON labelled text/plain", answer{200, map[string][]string{"Content-Type": {"text/plain"}},
			tok(`,"token_type":"Bearer","expires_in":14400`)}},
		{"huge", answer{200, jsonHeader(), huge(`{"access_token":"`, `","expires_in":14400}`)}},
		// oauth2 fills ExpiresIn from JSON answers only; TIDAL answers JSON.
		{"form-encoded", answer{200, map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}},
			"access_token=" + canaryAccess + "&token_type=Bearer&expires_in=14400&refresh_token=" + canaryRotated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientFor(serve(t, tt.answer), clk, nil)
			got, err := c.Refresh(context.Background(), testCreds())
			if err == nil {
				t.Fatal("Refresh() gave no error")
			}
			// Only a rotated refresh token comes back, so the caller can store it; the
			// test says so without printing it.
			if got != nil && (got.RefreshToken != canaryRotated || got.AccessToken != "" || !got.ExpiresAt.IsZero()) {
				t.Fatal("Refresh() returned more than the rotated refresh token")
			}
			assertNoCanary(t, err)
			te := asError(t, err)
			if te.Kind != Transient || te.HTTPStatus != 200 || te.Cause == "" || te.Code != "" {
				t.Errorf("got %+v, want a Transient error with HTTP 200 and a cause", *te)
			}
		})
	}
}

func TestRefreshTransportFailures(t *testing.T) {
	clk := newFakeClock()
	tests := []struct {
		name      string
		base      func(t *testing.T) string
		hc        *http.Client
		ctx       func() (context.Context, context.CancelFunc)
		wantCause string
	}{
		{name: "connection refused", base: refusedURL, wantCause: "connection failed"},
		{name: "client timeout", base: hangingServer, hc: &http.Client{Timeout: 100 * time.Millisecond},
			wantCause: "timed out"},
		{name: "context deadline", base: hangingServer, wantCause: "timed out",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			}},
		{name: "context canceled", base: hangingServer, wantCause: "canceled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			}},
		{name: "connection closed mid-body", base: truncatingServer,
			wantCause: "answer could not be read as a token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			c := clientFor(tt.base(t), clk, tt.hc)
			_, err := c.Refresh(ctx, testCreds())
			assertNoCanary(t, err)
			te := asError(t, err)
			if te.Kind != Transient || te.Cause != tt.wantCause || te.Code != "" || te.RetryAfter != 0 {
				t.Errorf("got %+v, want Transient with cause %q", *te, tt.wantCause)
			}
		})
	}
}

// truncatingServer answers 200 with a Content-Length it does not honour, then hangs up.
func truncatingServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "500")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"access_token":"` + canaryAccess))
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRefreshEmptyCredentials(t *testing.T) {
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
	}))
	defer srv.Close()
	c := clientFor(srv.URL, newFakeClock(), nil)
	for _, creds := range []Credentials{
		{},
		{ClientID: canaryClient, ClientSecret: canarySecret},
		{ClientSecret: canarySecret, RefreshToken: canaryRefresh},
	} {
		_, err := c.Refresh(context.Background(), creds)
		assertNoCanary(t, err)
		if te := asError(t, err); te.Kind != GrantInvalid || te.HTTPStatus != 0 {
			t.Errorf("Refresh(%+v) = %+v, want GrantInvalid without a request", creds, *te)
		}
	}
	if calls != 0 {
		t.Errorf("server got %d requests, want none", calls)
	}
}

// TestRefreshRequest checks what the client sends: TIDAL's refresh grant, form-encoded, with
// the client's credentials as form fields and not as Basic auth.
func TestRefreshRequest(t *testing.T) {
	tests := []struct {
		name  string
		creds Credentials
	}{
		{"confidential", testCreds()},
		{"public", Credentials{ClientID: canaryClient, RefreshToken: canaryRefresh}},
		{"secret with reserved characters", Credentials{ClientID: canaryClient,
			ClientSecret: "CANARY-CS-a+b/c=d&e", RefreshToken: canaryRefresh}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				got = r
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":60}`))
			}))
			defer srv.Close()
			c := NewClient(Endpoints{AuthBaseURL: srv.URL + "/v1/oauth2", APIBaseURL: srv.URL + "/v1/"},
				nil, newFakeClock())
			if _, err := c.Refresh(context.Background(), tt.creds); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got.Method != http.MethodPost || got.URL.Path != "/v1/oauth2/token" {
				t.Errorf("request %s %s, want POST /v1/oauth2/token", got.Method, got.URL.Path)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type %q", ct)
			}
			if _, _, ok := got.BasicAuth(); ok {
				t.Error("credentials sent as Basic auth too")
			}
			if len(got.URL.RawQuery) != 0 {
				t.Errorf("query %q: credentials must not travel in the URL", got.URL.RawQuery)
			}
			want := map[string]string{
				"grant_type":    "refresh_token",
				"refresh_token": tt.creds.RefreshToken,
				"client_id":     tt.creds.ClientID,
				"client_secret": tt.creds.ClientSecret,
			}
			for k, v := range want {
				if got.PostForm.Get(k) != v {
					t.Errorf("form %s = %q, want %q", k, got.PostForm.Get(k), v)
				}
			}
			if _, sent := got.PostForm["client_secret"]; sent && tt.creds.ClientSecret == "" {
				t.Error("a public client sent a client_secret field")
			}
		})
	}
}

// TestRefreshRefusesRedirect: a redirect must not carry the refresh token and client secret
// to where it points; Go's client would post them again on a 307 or 308.
func TestRefreshRefusesRedirect(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var mu sync.Mutex
			var leaked []string
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				mu.Lock()
				leaked = append(leaked, r.Method+" "+r.PostForm.Get("refresh_token")+r.PostForm.Get("client_secret"))
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"x","token_type":"Bearer","expires_in":60}`))
			}))
			defer target.Close()
			base := serve(t, answer{status, map[string][]string{"Location": {target.URL + "/collect"}}, ""})
			_, err := clientFor(base, newFakeClock(), nil).Refresh(context.Background(), testCreds())
			assertNoCanary(t, err)
			if te := asError(t, err); te.Kind != Transient || te.HTTPStatus != status {
				t.Errorf("got %+v, want Transient with HTTP %d", *te, status)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(leaked) != 0 {
				t.Errorf("redirect followed: target got %q", leaked)
			}
		})
	}
}

func TestRefreshSuccess(t *testing.T) {
	serverDate := testNow.Add(-7 * time.Minute) // TIDAL's clock, skewed against ours
	tests := []struct {
		name   string
		header map[string][]string
		body   string
		creds  Credentials
		want   Token
	}{
		{
			name:   "TIDAL answer without refresh token",
			header: jsonHeader("Date", serverDate.Format(http.TimeFormat)),
			body: `{"scope":"r_usr w_usr w_sub","user":{"userId":193000123,"countryCode":"NO"},` +
				`"clientName":"TIDAL_Android","token_type":"Bearer","access_token":"` + canaryAccess +
				`","expires_in":14400,"user_id":193000123}`,
			creds: testCreds(),
			want: Token{AccessToken: canaryAccess, TokenType: "Bearer", ReceivedAt: testNow,
				Lifetime: 4 * time.Hour, ExpiresAt: testNow.Add(4 * time.Hour), ServerDate: serverDate,
				UserID: "193000123", ClientName: "TIDAL_Android", Scope: "r_usr w_usr w_sub"},
		},
		{
			name:   "rotated refresh token",
			header: jsonHeader("Date", serverDate.Format(http.TimeFormat)),
			body: `{"token_type":"Bearer","access_token":"` + canaryAccess + `","refresh_token":"` +
				canaryRotated + `","expires_in":604800,"user_id":4242}`,
			creds: testCreds(),
			want: Token{AccessToken: canaryAccess, TokenType: "Bearer", RefreshToken: canaryRotated,
				ReceivedAt: testNow, Lifetime: 7 * 24 * time.Hour, ExpiresAt: testNow.Add(7 * 24 * time.Hour),
				ServerDate: serverDate, UserID: "4242"},
		},
		{
			name:   "same refresh token sent back is no rotation",
			header: noDate(),
			body: `{"token_type":"Bearer","access_token":"` + canaryAccess + `","refresh_token":"` +
				canaryRefresh + `","expires_in":86400}`,
			creds: testCreds(),
			want: Token{AccessToken: canaryAccess, TokenType: "Bearer", ReceivedAt: testNow,
				Lifetime: 24 * time.Hour, ExpiresAt: testNow.Add(24 * time.Hour)},
		},
		{
			name:   "no Date header, lower-case token type, user_id as string",
			header: map[string][]string{"Content-Type": {"application/json"}, "Date": nil},
			body: `{"token_type":"bearer","access_token":"` + canaryAccess +
				`","expires_in":"3600","user_id":"4242"}`,
			creds: testCreds(),
			want: Token{AccessToken: canaryAccess, TokenType: "Bearer", ReceivedAt: testNow,
				Lifetime: time.Hour, ExpiresAt: testNow.Add(time.Hour), UserID: "4242"},
		},
		{
			name:   "no token type, unparseable Date",
			header: jsonHeader("Date", "yesterday"),
			body:   `{"access_token":"` + canaryAccess + `","expires_in":14400}`,
			creds:  testCreds(),
			want: Token{AccessToken: canaryAccess, TokenType: "Bearer", ReceivedAt: testNow,
				Lifetime: 4 * time.Hour, ExpiresAt: testNow.Add(4 * time.Hour)},
		},
		{
			name:   "public client, huge expires_in is clamped by oauth2",
			header: noDate(),
			body:   `{"token_type":"Bearer","access_token":"` + canaryAccess + `","expires_in":99999999999}`,
			creds:  Credentials{ClientID: canaryClient, RefreshToken: canaryRefresh},
			want: Token{AccessToken: canaryAccess, TokenType: "Bearer", ReceivedAt: testNow,
				Lifetime: (1<<31 - 1) * time.Second, ExpiresAt: testNow.Add((1<<31 - 1) * time.Second)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := clientFor(serve(t, answer{200, tt.header, tt.body}), clk, nil)
			got, err := c.Refresh(context.Background(), tt.creds)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if *got != tt.want {
				t.Errorf("Refresh() =\n%+v\nwant\n%+v", *got, tt.want)
			}
		})
	}
}

// TestRefreshExpiryFromArrival: expiry counts from when the answer arrived by the injected
// clock, not from the server's Date and not from when the request was sent.
func TestRefreshExpiryFromArrival(t *testing.T) {
	clk := newFakeClock()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clk.Step(3 * time.Second) // the request takes 3 s, by our clock
		w.Header().Set("Date", testNow.Add(time.Hour).Format(http.TimeFormat))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"a","token_type":"Bearer","expires_in":14400}`))
	}))
	defer srv.Close()
	got, err := clientFor(srv.URL, clk, nil).Refresh(context.Background(), testCreds())
	if err != nil {
		t.Fatal(err)
	}
	arrived := testNow.Add(3 * time.Second)
	if !got.ReceivedAt.Equal(arrived) || !got.ExpiresAt.Equal(arrived.Add(4*time.Hour)) {
		t.Errorf("ReceivedAt %v ExpiresAt %v, want %v and 4h later", got.ReceivedAt, got.ExpiresAt, arrived)
	}
	if !got.ServerDate.Equal(testNow.Add(time.Hour)) {
		t.Errorf("ServerDate %v, want the Date header", got.ServerDate)
	}
}

func TestRefreshConcurrent(t *testing.T) {
	clk := newFakeClock()
	base := serve(t, answer{200, jsonHeader(), `{"access_token":"a","token_type":"Bearer","expires_in":60}`})
	c := clientFor(base, clk, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Refresh(context.Background(), testCreds()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// TestRefreshKeepsRotatedTokenOfUnusableAnswer: a rotated refresh token in an answer that is
// otherwise unusable comes back with the error, for the caller to store; without one,
// nothing does.
func TestRefreshKeepsRotatedTokenOfUnusableAnswer(t *testing.T) {
	body := `{"access_token":"` + canaryAccess + `","token_type":"Bearer","expires_in":0,"refresh_token":"` + canaryRotated + `"}`
	got, err := clientFor(serve(t, answer{200, jsonHeader(), body}), newFakeClock(), nil).Refresh(context.Background(), testCreds())
	if err == nil || got == nil || got.RefreshToken != canaryRotated {
		t.Fatal("the rotated refresh token of an unusable answer was not handed back")
	}
	body = `{"access_token":"` + canaryAccess + `","token_type":"Bearer","expires_in":0}`
	got, err = clientFor(serve(t, answer{200, jsonHeader(), body}), newFakeClock(), nil).Refresh(context.Background(), testCreds())
	if err == nil || got != nil {
		t.Fatal("an unusable answer without a rotated token returned a Token")
	}
}
