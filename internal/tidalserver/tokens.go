package tidalserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// issuer is the iss claim of every token. It names no real host: the server is not TIDAL.
const issuer = "tidalserver"

// Tokens look like TIDAL's: JWTs whose claims carry the user (uid), TIDAL's number of the
// client (cid), the scopes and the session (sid); access tokens expire (exp), refresh tokens
// do not. A random jti makes every token unguessable and unique. The server remembers what it
// issued and looks tokens up; it never trusts a token's claims.

func (s *Server) mintAccess(c *clientState, g *grant, scopes []string,
	now, expires time.Time) string {
	claims := map[string]any{
		"type":  "o2_access",
		"scope": strings.Join(scopes, " "),
		"cid":   c.NumericID,
		"gVer":  0,
		"sVer":  0,
		"iat":   now.Unix(),
		"exp":   expires.Unix(),
		"iss":   issuer,
	}
	if g != nil {
		claims["uid"] = g.user.ID
		claims["sid"] = g.sessionID
	}
	return s.mintJWT(claims)
}

func (s *Server) mintRefresh(c *clientState, g *grant) string {
	return s.mintJWT(map[string]any{
		"type":  "o2_refresh",
		"uid":   g.user.ID,
		"scope": strings.Join(g.scopes, " "),
		"cid":   c.NumericID,
		"gVer":  0,
		"sVer":  0,
		"iat":   s.cfg.Now().Unix(),
		"iss":   issuer,
	})
}

var jwtHeader = b64([]byte(`{"alg":"HS256","typ":"JWT"}`))

func (s *Server) mintJWT(claims map[string]any) string {
	claims["jti"] = randomHex(16)
	payload, _ := json.Marshal(claims) // maps of strings and numbers always marshal
	signing := jwtHeader + "." + b64(payload)
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(signing))
	return signing + "." + b64(mac.Sum(nil))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// newUUID returns a random (version 4) UUID, the shape of TIDAL's device codes and
// session ids.
func newUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// userCodeAlphabet leaves out letters a user confuses with digits or each other.
const userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ"

// newUserCode returns five letters, the shape of TIDAL's user codes (link.tidal.com/ABCDE).
func newUserCode() string {
	b := randomBytes(5)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}
