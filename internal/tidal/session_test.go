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

// apiErrorJSON is an error body of TIDAL's v1 API whose message also carries a canary.
func apiErrorJSON(status, subStatus int, message string) string {
	return `{"status":` + strconv.Itoa(status) + `,"subStatus":` + strconv.Itoa(subStatus) +
		`,"userMessage":"` + message + ` ` + canaryBody + ` ` + canaryAccess + `"}`
}

func TestSessionErrorAnswers(t *testing.T) {
	clk := newFakeClock()
	const (
		expired = "The token has expired. (Expired on time)"
		revoked = "The token has expired. (Bad subject token version)"
	)
	tests := []struct {
		name           string
		answer         answer
		wantKind       Kind
		wantSubStatus  int
		wantRetryAfter time.Duration
		wantCause      bool
	}{
		// TIDAL.md's sub-statuses.
		{name: "11001 temporary auth error", answer: answer{500, jsonHeader(), apiErrorJSON(500, 11001, "Temporary error")},
			wantKind: Transient, wantSubStatus: 11001},
		// 11002 is also seen during TIDAL outages: not proof the token is bad.
		{name: "11002 invalid payload", answer: answer{401, jsonHeader(), apiErrorJSON(401, 11002, "Token has invalid payload")},
			wantKind: Transient, wantSubStatus: 11002},
		// An expired access token is what a refresh fixes, not the end of the grant.
		{name: "11003 expired on time", answer: answer{401, jsonHeader(), apiErrorJSON(401, 11003, expired)},
			wantKind: Transient, wantSubStatus: 11003},
		{name: "11003 bad subject token version", answer: answer{401, jsonHeader(), apiErrorJSON(401, 11003, revoked)},
			wantKind: GrantInvalid, wantSubStatus: 11003},
		{name: "revocation message with another status", answer: answer{403, jsonHeader(), apiErrorJSON(403, 0, revoked)},
			wantKind: GrantInvalid},
		{name: "6001 session gone", answer: answer{404, jsonHeader(), apiErrorJSON(404, 6001, "Session does not exist")},
			wantKind: GrantInvalid, wantSubStatus: 6001},
		// Developer apps' tokens get 403 from /v1/sessions: their grant is fine.
		{name: "403 developer app", answer: answer{403, jsonHeader(), apiErrorJSON(403, 6001, "Session does not exist")},
			wantKind: Transient, wantSubStatus: 6001},
		{name: "403 without body", answer: answer{403, nil, ""}, wantKind: Transient},
		{name: "6004 invalid token", answer: answer{401, jsonHeader(), apiErrorJSON(401, 6004, "Invalid token")},
			wantKind: Transient, wantSubStatus: 6004},
		{name: "8003 client not found", answer: answer{401, jsonHeader(), apiErrorJSON(401, 8003, "Client not found")},
			wantKind: ClientInvalid, wantSubStatus: 8003},
		{name: "8003 with 5xx is an outage", answer: answer{503, jsonHeader(), apiErrorJSON(503, 8003, "Client not found")},
			wantKind: Transient, wantSubStatus: 8003},
		// 1002 on the API host means "countryCode missing", nothing about the grant.
		{name: "1002 on the API host", answer: answer{400, jsonHeader(), apiErrorJSON(400, 1002, "countryCode parameter missing")},
			wantKind: Transient, wantSubStatus: 1002},
		// Outages and rate limits.
		{name: "503 without body", answer: answer{503, nil, ""}, wantKind: Transient},
		{name: "500 html", answer: answer{500, map[string][]string{"Content-Type": {"text/html"}},
			"<html>" + canaryBody + "</html>"}, wantKind: Transient},
		{name: "429 without Retry-After", answer: answer{429, nil, ""}, wantKind: Transient},
		{name: "429 Retry-After seconds", answer: answer{429, map[string][]string{"Retry-After": {"7"}}, ""},
			wantKind: Transient, wantRetryAfter: 7 * time.Second},
		// Without a Date header the date is read against the injected clock, which is years
		// from the real one.
		{name: "429 Retry-After date",
			answer: answer{429, map[string][]string{"Retry-After": {testNow.Add(2 * time.Minute).Format(http.TimeFormat)},
				"Date": nil}, ""},
			wantKind: Transient, wantRetryAfter: 2 * time.Minute},
		// With one, against TIDAL's own clock, however far from ours.
		{name: "429 Retry-After date and Date",
			answer: answer{429, map[string][]string{
				"Retry-After": {testNow.Add(time.Hour + 2*time.Minute).Format(http.TimeFormat)},
				"Date":        {testNow.Add(time.Hour).Format(http.TimeFormat)}}, ""},
			wantKind: Transient, wantRetryAfter: 2 * time.Minute},
		{name: "429 Retry-After overflowing", answer: answer{429, map[string][]string{"Retry-After": {"10000000000"}}, ""},
			wantKind: Transient, wantRetryAfter: maxRetryAfter},
		{name: "401 truncated JSON", answer: answer{401, jsonHeader(), `{"status":401,"subStatus":110`},
			wantKind: Transient},
		{name: "401 subStatus as string", answer: answer{401, jsonHeader(), `{"status":401,"subStatus":"8003"}`},
			wantKind: Transient},
		{name: "redirect is not followed", answer: answer{302, map[string][]string{"Location": {"/v1/sessions2"}}, ""},
			wantKind: Transient},
		{name: "huge error body", answer: answer{401, jsonHeader(), huge(`{"subStatus":8003,"userMessage":"`, `"}`)},
			wantKind: Transient, wantCause: true},
		// 200 answers that are not a session.
		{name: "200 empty", answer: answer{200, jsonHeader(), ""}, wantKind: Transient, wantCause: true},
		{name: "200 html", answer: answer{200, map[string][]string{"Content-Type": {"text/html"}}, "<p>" + canaryBody},
			wantKind: Transient, wantCause: true},
		{name: "200 without userId", answer: answer{200, jsonHeader(), `{"sessionId":"` + canaryBody + `"}`},
			wantKind: Transient, wantCause: true},
		{name: "200 userId not a number", answer: answer{200, jsonHeader(), `{"userId":"` + canaryBody + `"}`},
			wantKind: Transient, wantCause: true},
		{name: "200 truncated", answer: answer{200, jsonHeader(), `{"userId":4242,"sessionId":"`},
			wantKind: Transient, wantCause: true},
		{name: "200 huge", answer: answer{200, jsonHeader(), huge(`{"userId":4242,"sessionId":"`, `"}`)},
			wantKind: Transient, wantCause: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientFor(serve(t, tt.answer), clk, nil)
			info, err := c.Session(context.Background(), canaryAccess)
			if info != nil {
				t.Fatalf("Session returned %+v with error %v", info, err)
			}
			assertNoCanary(t, err)
			te := asError(t, err)
			if te.Kind != tt.wantKind || te.HTTPStatus != tt.answer.status || te.SubStatus != tt.wantSubStatus ||
				te.RetryAfter != tt.wantRetryAfter || te.Code != "" {
				t.Errorf("got Kind=%s HTTP=%d Sub=%d RetryAfter=%v Code=%q, want %s %d %d %v",
					te.Kind, te.HTTPStatus, te.SubStatus, te.RetryAfter, te.Code,
					tt.wantKind, tt.answer.status, tt.wantSubStatus, tt.wantRetryAfter)
			}
			if (te.Cause != "") != tt.wantCause {
				t.Errorf("Cause = %q, want one: %v", te.Cause, tt.wantCause)
			}
			if te.Op != "get session" {
				t.Errorf("Op = %q", te.Op)
			}
		})
	}
}

// TestSessionRetryAfterUsesClock: without a Date header, a Retry-After date is read against
// the client's clock at the moment the answer arrived, never the real one.
func TestSessionRetryAfterUsesClock(t *testing.T) {
	clk := newFakeClock()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clk.Step(10 * time.Second) // the answer arrives 10 s after the request left
		w.Header().Set("Retry-After", testNow.Add(time.Minute).Format(http.TimeFormat))
		w.Header()["Date"] = nil // net/http adds the real time otherwise
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, err := clientFor(srv.URL, clk, nil).Session(context.Background(), canaryAccess)
	if got := asError(t, err).RetryAfter; got != 50*time.Second {
		t.Errorf("RetryAfter = %v, want 50s", got)
	}
}

func TestSessionTransportFailures(t *testing.T) {
	clk := newFakeClock()
	tests := []struct {
		name      string
		base      func(t *testing.T) string
		hc        *http.Client
		timeout   time.Duration
		wantCause string
	}{
		{name: "connection refused", base: refusedURL, wantCause: "connection failed"},
		{name: "client timeout", base: hangingServer, hc: &http.Client{Timeout: 100 * time.Millisecond},
			wantCause: "timed out"},
		{name: "context deadline", base: hangingServer, timeout: 100 * time.Millisecond, wantCause: "timed out"},
		{name: "connection closed mid-body", base: truncatingServer,
			wantCause: "answer could not be read within the size limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, err := clientFor(tt.base(t), clk, tt.hc).Session(ctx, canaryAccess)
			assertNoCanary(t, err)
			if te := asError(t, err); te.Kind != Transient || te.Cause != tt.wantCause {
				t.Errorf("got %+v, want Transient with cause %q", *te, tt.wantCause)
			}
		})
	}
}

func TestSessionBadBaseURL(t *testing.T) {
	c := NewClient(Endpoints{AuthBaseURL: "http://127.0.0.1:1/", APIBaseURL: "http://[::1"}, nil, newFakeClock())
	_, err := c.Session(context.Background(), canaryAccess)
	assertNoCanary(t, err)
	if te := asError(t, err); te.Kind != Transient || te.Cause != "cannot build request" {
		t.Errorf("got %+v", *te)
	}
}

// TestSessionAuthorizationNotForwarded: a redirect to another host must not receive the
// bearer token.
func TestSessionAuthorizationNotForwarded(t *testing.T) {
	var mu sync.Mutex
	var got []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer target.Close()
	base := serve(t, answer{307, map[string][]string{"Location": {target.URL + "/v1/sessions"}}, ""})
	_, err := clientFor(base, newFakeClock(), nil).Session(context.Background(), canaryAccess)
	assertNoCanary(t, err)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Errorf("redirect followed %d times", len(got))
	}
}

func TestSessionSuccess(t *testing.T) {
	tests := []struct {
		name string
		body string
		want SessionInfo
	}{
		{
			name: "TIDAL answer",
			body: `{"sessionId":"0b0c1d2e-3f40-5162-7384-95a6b7c8d9e0","userId":193000123,"countryCode":"NO",` +
				`"channelId":1,"partnerId":1,"client":{"id":77,"name":"TIDAL_Android",` +
				`"authorizedForOffline":true,"authorizedForOfflineDate":null}}`,
			want: SessionInfo{SessionID: "0b0c1d2e-3f40-5162-7384-95a6b7c8d9e0", UserID: "193000123",
				CountryCode: "NO", ClientID: "77", ClientName: "TIDAL_Android"},
		},
		{
			name: "ids as strings, no client",
			body: `{"sessionId":"s","userId":"4242","countryCode":"US"}`,
			want: SessionInfo{SessionID: "s", UserID: "4242", CountryCode: "US"},
		},
		{
			// These values reach status, the output Secret and kubectl's columns.
			name: "values of the wrong form are dropped",
			body: `{"sessionId":"a\nb\u001b]0;title\u0007","userId":5,"countryCode":"\u001b[31mNO",` +
				`"client":{"id":"` + strings.Repeat("9", 65) + `","name":"n"}}`,
			want: SessionInfo{UserID: "5", ClientName: "n"},
		},
		{
			name: "unknown fields ignored",
			body: `{"userId":1,"extra":{"deep":[1,2,3]},"client":{"id":"9","name":"n","more":true}}`,
			want: SessionInfo{UserID: "1", ClientID: "9", ClientName: "n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req = r
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := NewClient(Endpoints{AuthBaseURL: srv.URL + "/v1/oauth2/", APIBaseURL: srv.URL + "/v1"}, nil,
				newFakeClock())
			got, err := c.Session(context.Background(), canaryAccess)
			if err != nil {
				t.Fatalf("Session: %v", err)
			}
			if *got != tt.want {
				t.Errorf("Session() = %+v, want %+v", *got, tt.want)
			}
			if req.Method != http.MethodGet || req.URL.Path != "/v1/sessions" {
				t.Errorf("request %s %s, want GET /v1/sessions", req.Method, req.URL.Path)
			}
			if a := req.Header.Get("Authorization"); a != "Bearer "+canaryAccess {
				t.Errorf("Authorization %q", a)
			}
			if req.URL.RawQuery != "" {
				t.Errorf("query %q: the token must not travel in the URL", req.URL.RawQuery)
			}
		})
	}
}

// TestSessionRejectsNonNumericUserID: a user id the operator would
// have to write into status or a Secret in a form no TIDAL answer takes is an error.
func TestSessionRejectsNonNumericUserID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"sessionId":"s","userId":-1.5e3,"countryCode":"NO"}`))
	}))
	defer srv.Close()
	c := NewClient(Endpoints{AuthBaseURL: srv.URL + "/v1/oauth2/", APIBaseURL: srv.URL + "/v1/"}, nil, newFakeClock())
	_, err := c.Session(context.Background(), canaryAccess)
	if e := asError(t, err); e.Kind != Transient || !strings.Contains(e.Error(), "userId that is not a number") {
		t.Errorf("Session() error = %v, want a Transient error naming the userId", err)
	}
}
