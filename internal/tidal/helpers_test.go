package tidal

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// Canary values: none of them may ever appear in an error's text. Every one starts with
// canaryMark, which is what the checks look for, so a leak of any of them is found.
const (
	canaryMark    = "CANARY-"
	canaryAccess  = "CANARY-AT-5d0c1e"
	canaryRefresh = "CANARY-RT-7a93f2"
	canaryRotated = "CANARY-RT-ROTATED-41b8"
	canarySecret  = "CANARY-CS-c2f6a0"
	canaryBody    = "CANARY-BODY-e81d"
	canaryClient  = "CANARY-CLIENT-ID"
)

// testNow is the fake clock's start: far from the real time, so a computation that reads
// the real clock instead of the injected one gives a visibly wrong answer.
var testNow = time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)

func newFakeClock() *clocktesting.FakeClock { return clocktesting.NewFakeClock(testNow) }

// testCreds are credentials full of canaries.
func testCreds() Credentials {
	return Credentials{ClientID: canaryClient, ClientSecret: canarySecret, RefreshToken: canaryRefresh}
}

// assertNoCanary fails when err, in any of the ways a caller may print it, carries a canary.
func assertNoCanary(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		if s := fmt.Sprintf(format, err); strings.Contains(s, canaryMark) {
			t.Errorf("error formatted with %s leaks a canary: %s", format, s)
		}
	}
	if s := err.Error(); strings.Contains(s, canaryMark) {
		t.Errorf("Error() leaks a canary: %s", s)
	}
	var te *Error
	if errors.As(err, &te) {
		if s := fmt.Sprintf("%#v", *te); strings.Contains(s, canaryMark) {
			t.Errorf("Error fields leak a canary: %s", s)
		}
	}
}

// asError returns err as an *Error or fails the test.
func asError(t testing.TB, err error) *Error {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *tidal.Error", err, err)
	}
	return te
}

// answer is a raw HTTP answer a test server gives.
type answer struct {
	status int
	// header is set on the answer; a nil value suppresses a header the server would add,
	// such as Date.
	header map[string][]string
	body   string
}

// serve starts a loopback server that answers every request with a, and returns its URL.
func serve(t *testing.T, a answer) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// clientFor returns a client whose auth and API base URLs both point at base.
func clientFor(base string, clk *clocktesting.FakeClock, hc *http.Client) *Client {
	return NewClient(Endpoints{AuthBaseURL: base + "/oauth2", APIBaseURL: base + "/v1/"}, hc, clk)
}

// refusedURL returns an http URL on loopback where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// hangingServer returns the URL of a loopback server that answers nothing until the client
// gives up.
func hangingServer(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return srv.URL
}

// noDate is the header of a JSON answer without the Date header Go's server would add.
func noDate() map[string][]string {
	return map[string][]string{"Content-Type": {"application/json"}, "Date": nil}
}

// jsonHeader is the Content-Type header of a JSON answer.
func jsonHeader(extra ...string) map[string][]string {
	h := map[string][]string{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = []string{extra[i+1]}
	}
	return h
}
