package controller

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// probeTimeout is how long the one session let through to probe a paused client holds the
// gate closed for the others; long enough for TIDAL to answer (the client's timeout is
// 15 s by default), short enough that a probe lost to a crash does not stall the client.
const probeTimeout = 30 * time.Second

// clientGates pauses all sessions of a TIDAL client together. TIDAL rate-limits per client
// id, and revokes client ids: after a 429 or an invalid_client, every session of that client
// would get the same answer, so they wait together, and when the pause ends one session
// probes for all of them. TIDAL thus sees a bounded number of requests per client, not one
// per session per retry. The state is in memory: a restarted operator learns it again from
// one answer.
//
// A gate is keyed by the client id and a digest of the client secret (see gateKey), not by
// the id alone: client ids are not secret, and a session in any namespace could otherwise
// pause every other session of that client with a wrong secret. Sessions that share the
// real credentials share the gate, which is what the pause is for.
type clientGates struct {
	mu    sync.Mutex
	gates map[string]*clientGate
}

// clientGate is one paused client.
type clientGate struct {
	// until is when the next session may ask TIDAL.
	until time.Time
	// cause is the answer that paused the client.
	cause *tidal.Error
	// failures counts the client's consecutive pausing answers, for the backoff.
	failures int32
}

// gateKey is the key of the gate of creds' client: its id and a digest of its secret. The
// digest stays in memory, like rejectedTokens'.
func gateKey(creds tidal.Credentials) string {
	d := tokenDigest(creds.ClientSecret)
	return creds.ClientID + "/" + hex.EncodeToString(d[:])
}

// clientPaused is the error of a session whose client is paused. It wraps TIDAL's answer,
// so the session's outcome is that of the answer; asked says whether this session's own
// request got it, or whether it did not ask TIDAL at all.
type clientPaused struct {
	until time.Time
	cause *tidal.Error
	asked bool
}

func (e *clientPaused) Error() string {
	if e.asked {
		return fmt.Sprintf("%v; every session with these client credentials waits until %s",
			e.cause, e.until.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("not asked: another session with these client credentials got %v; every "+
		"session with them waits until %s", e.cause, e.until.UTC().Format(time.RFC3339))
}

func (e *clientPaused) Unwrap() error { return e.cause }

func asClientPaused(err error) (*clientPaused, bool) {
	var p *clientPaused
	return p, errors.As(err, &p)
}

// pausesClient says whether a TIDAL answer pauses every session of its client.
func pausesClient(err error) (*tidal.Error, bool) {
	te, ok := tidalError(err)
	if !ok {
		return nil, false
	}
	return te, te.Kind == tidal.ClientInvalid || te.HTTPStatus == http.StatusTooManyRequests
}

// admit returns nil when a session of clientID may ask TIDAL at now, and otherwise the
// error that says until when it waits. When a pause has just ended, it admits one session
// and holds the others back for probeTimeout, so one request probes for all of them.
func (g *clientGates) admit(clientID string, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	gate := g.gates[clientID]
	if gate == nil {
		return nil
	}
	if now.Before(gate.until) {
		return &clientPaused{until: gate.until, cause: gate.cause}
	}
	gate.until = now.Add(probeTimeout)
	return nil
}

// observe records TIDAL's answer to a refresh of a session of clientID, and returns err,
// wrapped when it paused the client; base is the backoff's first pause. Success reopens
// the client for every session.
func (g *clientGates) observe(clientID string, err error, now time.Time, base time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		delete(g.gates, clientID)
		return nil
	}
	te, pauses := pausesClient(err)
	if !pauses {
		return err
	}
	if g.gates == nil {
		g.gates = map[string]*clientGate{}
	}
	gate := g.gates[clientID]
	if gate == nil {
		gate = &clientGate{}
		g.gates[clientID] = gate
	}
	gate.failures++
	gate.cause = te
	gate.until = now.Add(retryDelay(te, gate.failures, 0, base))
	return &clientPaused{until: gate.until, cause: te, asked: true}
}
