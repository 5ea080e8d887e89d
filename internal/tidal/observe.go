package tidal

import (
	"net/http"
	"time"
)

// observation records, for one call, when the answer arrived and what Date TIDAL gave it.
// oauth2 hides the response of a successful token request, so a RoundTripper collects them.
type observation struct {
	receivedAt time.Time
	serverDate time.Time
	status     int
}

type observingTransport struct {
	next  http.RoundTripper
	clock func() time.Time
	obs   *observation
}

func (t *observingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	t.obs.receivedAt = t.clock()
	if resp != nil {
		t.obs.status = resp.StatusCode
		if d, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			t.obs.serverDate = d
		}
	}
	return resp, err
}

// observingClient returns a copy of c's HTTP client whose transport fills obs.
func (c *Client) observingClient(obs *observation) *http.Client {
	next := c.http.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc := *c.http
	hc.Transport = &observingTransport{next: next, clock: c.clock.Now, obs: obs}
	return &hc
}
