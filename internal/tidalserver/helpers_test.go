package tidalserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixtures shared by the tests.
const (
	publicID     = "publicClient0001"
	secretID     = "secretClient0001"
	secret       = "c2VjcmV0K3NlY3JldC9zZWNyZXQ=" // has '+', '/' and '=' like TIDAL's
	devAppID     = "devAppClient0001"
	testUserID   = 4242
	canaryPrefix = "CANARY-refresh-"
)

// fakeClock is a settable clock, truncated to seconds.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestServer returns a server with a public client, a confidential client and a
// developer app on a fake clock; mutate may change the Config first.
func newTestServer(t *testing.T, mutate func(*Config)) (*Server, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg := Config{
		Clients: []Client{
			{ID: publicID, Name: "Public Test Client"},
			{ID: secretID, Secret: secret, Name: "Secret Test Client", NumericID: 77,
				AccessTokenLifetime: 24 * time.Hour},
			{ID: devAppID, Secret: secret, Name: "Developer App", DeveloperApp: true,
				Scopes: []string{"user.read"}},
		},
		DevicePollInterval: 2 * time.Second,
		Now:                clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return New(cfg), clock
}

// result is an answer, decoded.
type result struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// num reads a JSON number field as an int.
func (r result) num(key string) int {
	f, _ := r.body[key].(float64)
	return int(f)
}

func (r result) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// serve sends a request to h from a loopback address and decodes the JSON answer.
func serve(t *testing.T, h http.Handler, r *http.Request) result {
	t.Helper()
	r.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	out := result{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if out.raw != "" {
		if err := json.Unmarshal(rec.Body.Bytes(), &out.body); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object (status %d)", r.Method, r.URL.Path,
				rec.Code)
		}
	}
	return out
}

// postForm posts a form to path; basic, when not nil, is sent as Basic auth.
func postForm(t *testing.T, h http.Handler, path string, form url.Values, basic *[2]string) result {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	if basic != nil {
		r.SetBasicAuth(basic[0], basic[1])
	}
	return serve(t, h, r)
}

func getBearer(t *testing.T, h http.Handler, path, token string) result {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return serve(t, h, r)
}

// refresh posts a refresh grant for the confidential client.
func refresh(t *testing.T, s *Server, token string) result {
	t.Helper()
	return postForm(t, s, "/v1/oauth2/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {token},
		"client_id": {secretID}, "client_secret": {secret},
	}, nil)
}

// mustGrant issues a grant for the test user and returns its refresh token.
func mustGrant(t *testing.T, s *Server, clientID string) string {
	t.Helper()
	token, err := s.IssueGrant(GrantSpec{ClientID: clientID, UserID: testUserID,
		CountryCode: "NO", Username: "listener"})
	if err != nil {
		t.Fatalf("IssueGrant: %v", err)
	}
	return token
}

// accessToken refreshes and returns the new access token, failing the test otherwise.
func accessToken(t *testing.T, s *Server, refreshToken string) string {
	t.Helper()
	res := refresh(t, s, refreshToken)
	if res.status != http.StatusOK || res.str("access_token") == "" {
		t.Fatalf("refresh: status %d, error %q", res.status, res.str("error"))
	}
	return res.str("access_token")
}

// wantOAuthError checks an auth host error answer.
func wantOAuthError(t *testing.T, res result, status int, code string, subStatus int) {
	t.Helper()
	if res.status != status || res.str("error") != code || res.num("sub_status") != subStatus ||
		res.num("status") != status || res.str("error_description") == "" {
		t.Errorf("answer = %d %s, want %d {status:%d error:%s sub_status:%d error_description}",
			res.status, res.raw, status, status, code, subStatus)
	}
}

// wantAPIError checks a v1 API host error answer.
func wantAPIError(t *testing.T, res result, status, subStatus int, message string) {
	t.Helper()
	if res.status != status || res.num("status") != status || res.num("subStatus") != subStatus ||
		res.str("userMessage") != message {
		t.Errorf("answer = %d %s, want %d {subStatus:%d userMessage:%q}", res.status, res.raw,
			status, subStatus, message)
	}
}
