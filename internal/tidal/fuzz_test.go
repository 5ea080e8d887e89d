package tidal

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// cannedTransport answers every request in process with one response: the fuzz target
// needs no sockets, so it runs fast enough to fuzz.
type cannedTransport struct {
	status int
	header http.Header
	body   []byte
}

func (c cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: c.status, Status: http.StatusText(c.status), Header: c.header.Clone(),
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: -1, Request: req,
		ProtoMajor: 1, ProtoMinor: 1}, nil
}

// FuzzAnswers feeds arbitrary answers of TIDAL's hosts to Refresh and Session. Neither may
// panic, every error must be a classified *Error carrying no canary, and a token must have
// its expiry computed from the injected clock.
func FuzzAnswers(f *testing.F) {
	seeds := []struct {
		status                       int
		contentType, retryAfter, day string
		body                         string
	}{
		{200, "application/json", "", testNow.Format(http.TimeFormat),
			`{"access_token":"` + canaryAccess + `","token_type":"Bearer","expires_in":14400,"user_id":4242,` +
				`"refresh_token":"` + canaryRotated + `","scope":"r_usr","clientName":"x"}`},
		{200, "application/json", "", "", `{"sessionId":"s","userId":4242,"countryCode":"NO","client":{"id":1,"name":"n"}}`},
		{400, "application/json", "", "", tokenErrorJSON(400, "invalid_grant", 11003)},
		{400, "text/plain", "", "", `{"error":"invalid_grant","error_description":"(Bad subject token version)"}`},
		{401, "application/json", "", "", tokenErrorJSON(401, "invalid_client", 1005)},
		{401, "application/json", "", "", apiErrorJSON(401, 8003, "Client not found")},
		{404, "application/json", "", "", apiErrorJSON(404, 6001, "Session does not exist")},
		{429, "", "30", "", ""},
		{429, "", testNow.Add(time.Minute).Format(http.TimeFormat), "", ""},
		{429, "", "10000000000", "", ""},
		{503, "text/html", "-1", "garbage", "<html>" + canaryBody + "</html>"},
		{200, "application/x-www-form-urlencoded", "", "", "access_token=" + canaryAccess + "&expires_in=60"},
		{400, "application/x-www-form-urlencoded", "", "", "error=invalid_grant;%zz&error_description=" + canaryBody},
		{200, "application/json", "", "", `{"access_token":"a","expires_in":1e3}`},
		{200, "application/json", "", "", `{"access_token":"a","expires_in":"-4294952896"}`},
		{500, "", "", "", `{"error":"invalid_gr`},
		{302, "", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.status, s.contentType, s.retryAfter, s.day, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, contentType, retry, date string, body []byte) {
		if status < 200 || status > 599 {
			t.Skip()
		}
		h := http.Header{}
		for k, v := range map[string]string{"Content-Type": contentType, "Retry-After": retry, "Date": date} {
			if v != "" {
				h.Set(k, v)
			}
		}
		clk := newFakeClock()
		c := NewClient(Endpoints{AuthBaseURL: "http://127.0.0.1:9/", APIBaseURL: "http://127.0.0.1:9/"},
			&http.Client{Transport: cannedTransport{status, h, body}}, clk)

		tok, err := c.Refresh(context.Background(), testCreds())
		checkFuzzError(t, err)
		if err == nil {
			if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.Lifetime <= 0 ||
				!tok.ReceivedAt.Equal(testNow) || !tok.ExpiresAt.Equal(testNow.Add(tok.Lifetime)) {
				t.Errorf("inconsistent token: %+v", *tok)
			}
			if tok.RefreshToken == canaryRefresh {
				t.Error("the old refresh token is reported as a rotation")
			}
		}

		info, err := c.Session(context.Background(), canaryAccess)
		checkFuzzError(t, err)
		if err == nil && (status != http.StatusOK || info.UserID == "") {
			t.Errorf("session %+v from HTTP %d", *info, status)
		}
	})
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	assertNoCanary(t, err)
	te := asError(t, err)
	switch te.Kind {
	case Transient, GrantInvalid, ClientInvalid:
	default:
		t.Errorf("unknown Kind %q", te.Kind)
	}
	// Code is a documented OAuth code or "other", and only the token endpoint has one.
	if te.Code != "" && (!knownCodes[te.Code] && te.Code != "other" || te.Op != "refresh token") {
		t.Errorf("Code %q from %q is not one TIDAL documents", te.Code, te.Op)
	}
	if te.RetryAfter < 0 || te.RetryAfter > maxRetryAfter {
		t.Errorf("RetryAfter %v out of bounds", te.RetryAfter)
	}
}
