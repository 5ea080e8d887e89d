package tidal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func usersMeClient(t *testing.T, status int, body string) (*Client, *http.Request) {
	t.Helper()
	var got http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = *r
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return NewClient(Endpoints{AuthBaseURL: srv.URL, APIBaseURL: srv.URL, OpenAPIBaseURL: srv.URL + "/v2"}, nil, nil), &got
}

func TestUsersMe(t *testing.T) {
	c, got := usersMeClient(t, http.StatusOK,
		`{"data":{"id":"4242","type":"users","attributes":{"username":"listener","country":"NO"}},"links":{"self":"/users/me"}}`)
	info, err := c.UsersMe(context.Background(), canaryAccess)
	if err != nil {
		t.Fatal(err)
	}
	if *info != (SessionInfo{UserID: "4242", CountryCode: "NO"}) {
		t.Errorf("info = %+v", *info)
	}
	if got.URL.Path != "/v2/users/me" || got.Header.Get("Authorization") != "Bearer "+canaryAccess ||
		got.Header.Get("Accept") != "application/vnd.api+json" {
		t.Errorf("request %s with Accept %q; want GET /v2/users/me with the bearer token", got.URL.Path, got.Header.Get("Accept"))
	}
}

func TestUsersMeFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		wantKind Kind
		wantHTTP int
	}{
		{"unauthorized", 401, `{"errors":[{"status":"401","code":"UNAUTHORIZED","detail":"` + canaryBody + `"}]}`, Transient, 401},
		{"not a user", 200, `{"data":{"id":"1","type":"tracks"}}`, Transient, 200},
		{"user id not a number", 200, `{"data":{"id":"x1","type":"users"}}`, Transient, 200},
		{"HTML", 200, `<html>` + canaryBody + `</html>`, Transient, 200},
		{"outage", 503, `oops ` + canaryBody, Transient, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := usersMeClient(t, tc.status, tc.body)
			_, err := c.UsersMe(context.Background(), canaryAccess)
			te, ok := err.(*Error)
			if !ok || te.Kind != tc.wantKind || te.HTTPStatus != tc.wantHTTP {
				t.Fatalf("err = %#v, want kind %s, HTTP %d", err, tc.wantKind, tc.wantHTTP)
			}
			if msg := err.Error(); strings.Contains(msg, canaryBody) || strings.Contains(msg, canaryAccess) {
				t.Errorf("error %q carries the body or the token", msg)
			}
		})
	}
}

func TestUsersMeNotConfigured(t *testing.T) {
	c := NewClient(Endpoints{AuthBaseURL: "http://127.0.0.1:1/", APIBaseURL: "http://127.0.0.1:1/"}, nil, nil)
	_, err := c.UsersMe(context.Background(), canaryAccess)
	if err == nil || !strings.Contains(err.Error(), "users/me") {
		t.Errorf("err = %v, want an error naming the call", err)
	}
}
