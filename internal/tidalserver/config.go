package tidalserver

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults of Config, taken from what TIDAL answers today.
const (
	// DefaultAccessTokenLifetime is TIDAL's expires_in for recent sessions and developer apps.
	DefaultAccessTokenLifetime = 4 * time.Hour
	// DefaultDeviceCodeLifetime is the expiresIn of a device authorization.
	DefaultDeviceCodeLifetime = 300 * time.Second
	// DefaultDevicePollInterval is the interval of a device authorization.
	DefaultDevicePollInterval = 2 * time.Second
	// DefaultVerificationURI is where the user enters a user code, without a scheme, as TIDAL
	// returns it.
	DefaultVerificationURI = "link.tidal.com"
	// DefaultMaxBodyBytes bounds request bodies; TIDAL's clients send a few hundred bytes.
	DefaultMaxBodyBytes = 64 << 10
)

// DefaultScopes are the scopes TIDAL's device clients (tidalapi and the like) ask for, and
// what a Client without Scopes may be granted.
var DefaultScopes = []string{"r_usr", "w_usr", "w_sub"}

// Client is an OAuth client registered with the server.
type Client struct {
	// ID is the OAuth client_id.
	ID string
	// Secret is the client_secret; empty for a public client, which must then send none.
	Secret string
	// Name is answered as clientName by the token endpoint and as client.name by /v1/sessions.
	Name string
	// Scopes are what the client may be granted; nil means DefaultScopes.
	Scopes []string
	// NumericID is TIDAL's number for the client, answered as client.id by /v1/sessions;
	// 0 means one is assigned.
	NumericID int64
	// AccessTokenLifetime overrides Config.AccessTokenLifetime for this client: TIDAL's
	// lifetimes differ per client (7 days, 1 day, 4 hours). 0 means the Config's.
	AccessTokenLifetime time.Duration
	// DeveloperApp marks a client of TIDAL's developer portal: its tokens get 403 from
	// /v1/sessions and are checked with /v2/users/me instead.
	DeveloperApp bool
}

// Rotation says whether a refresh answers with a new refresh token. TIDAL usually does not
// rotate; one client reports that it sometimes does and then rejects the old token.
type Rotation struct {
	// Enabled makes every refresh return a new refresh token and retire the one used.
	Enabled bool `json:"enabled"`
	// Grace is how long a retired refresh token is still accepted; a refresh with it within
	// the grace period answers the grant's current refresh token again.
	Grace time.Duration `json:"-"`
	// RevokeOnReuse revokes the whole grant when a retired token is used after its grace
	// period, as OAuth servers with reuse detection do.
	RevokeOnReuse bool `json:"revoke_on_reuse"`
}

// Config configures a Server. The zero value of every field but Clients has a default.
type Config struct {
	// Clients are the registered OAuth clients.
	Clients []Client
	// AccessTokenLifetime is the expires_in of access tokens, in whole seconds.
	AccessTokenLifetime time.Duration
	// DeviceCodeLifetime is how long a device code can be approved and polled.
	DeviceCodeLifetime time.Duration
	// DevicePollInterval is the interval a device client must wait between polls, in whole
	// seconds; a poll sooner than that answers slow_down and adds 5 seconds for good.
	DevicePollInterval time.Duration
	// VerificationURI is answered as verificationUri, without a scheme.
	VerificationURI string
	// Rotation is the initial refresh-token rotation mode; see Server.SetRotation.
	Rotation Rotation
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SigningKey is the HMAC key of the JWT-shaped tokens; nil means a random key.
	SigningKey []byte
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Validate reports the first problem of the configuration, if any.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for _, cl := range c.Clients {
		if cl.ID == "" || strings.ContainsAny(cl.ID, ": \t\r\n") {
			return errors.New("a client id is empty or has a colon or white space")
		}
		if seen[cl.ID] {
			return fmt.Errorf("client id %q is registered twice", cl.ID)
		}
		seen[cl.ID] = true
		if err := validScopes(cl.Scopes); err != nil {
			return fmt.Errorf("client %q: %w", cl.ID, err)
		}
		if err := wholeSeconds("access token lifetime", cl.AccessTokenLifetime, true); err != nil {
			return fmt.Errorf("client %q: %w", cl.ID, err)
		}
	}
	if err := wholeSeconds("access token lifetime", c.AccessTokenLifetime, true); err != nil {
		return err
	}
	if err := wholeSeconds("device code lifetime", c.DeviceCodeLifetime, true); err != nil {
		return err
	}
	if err := wholeSeconds("device poll interval", c.DevicePollInterval, true); err != nil {
		return err
	}
	if c.Rotation.Grace < 0 || c.MaxBodyBytes < 0 {
		return errors.New("rotation grace and body limit must not be negative")
	}
	return nil
}

// wholeSeconds checks a duration that TIDAL answers as a number of seconds.
func wholeSeconds(what string, d time.Duration, zeroOK bool) error {
	if d == 0 && zeroOK {
		return nil
	}
	if d < time.Second || d%time.Second != 0 {
		return fmt.Errorf("%s %v is not a positive whole number of seconds", what, d)
	}
	return nil
}

func validScopes(scopes []string) error {
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return errors.New("a scope is empty or has white space")
		}
	}
	return nil
}

// withDefaults fills in the zero fields of a valid Config.
func (c Config) withDefaults() Config {
	if c.AccessTokenLifetime == 0 {
		c.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if c.DeviceCodeLifetime == 0 {
		c.DeviceCodeLifetime = DefaultDeviceCodeLifetime
	}
	if c.DevicePollInterval == 0 {
		c.DevicePollInterval = DefaultDevicePollInterval
	}
	if c.VerificationURI == "" {
		c.VerificationURI = DefaultVerificationURI
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return c
}
