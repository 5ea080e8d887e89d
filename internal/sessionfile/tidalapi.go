// Package sessionfile reads and writes the session files TIDAL consumers keep today.
package sessionfile

import (
	"encoding/json"
	"fmt"
	"time"
)

// Tidalapi is a session in the shape of tidalapi's save_session_to_file: each value is
// wrapped in {"data": ...}. tidalapi's load_session_from_file reads token_type,
// access_token, refresh_token and is_pkce, then validates the session against TIDAL.
type Tidalapi struct {
	TokenType    string
	SessionID    string
	AccessToken  string
	RefreshToken string // empty is written as null: consumers of the operator never refresh
	IsPKCE       bool
	ExpiryTime   time.Time
}

type wrapped[T any] struct {
	Data T `json:"data"`
}

type tidalapiJSON struct {
	TokenType    wrapped[string]  `json:"token_type"`
	SessionID    wrapped[*string] `json:"session_id"`
	AccessToken  wrapped[string]  `json:"access_token"`
	RefreshToken wrapped[*string] `json:"refresh_token"`
	IsPKCE       wrapped[bool]    `json:"is_pkce"`
	ExpiryTime   wrapped[*string] `json:"expiry_time"`
}

// tidalapiTimeLayout is how tidalapi prints a naive UTC datetime with str().
const tidalapiTimeLayout = "2006-01-02 15:04:05.000000"

// Marshal encodes s as a tidalapi session file.
func (s Tidalapi) Marshal() ([]byte, error) {
	out := tidalapiJSON{
		TokenType:    wrapped[string]{s.TokenType},
		SessionID:    wrapped[*string]{nonEmpty(s.SessionID)},
		AccessToken:  wrapped[string]{s.AccessToken},
		RefreshToken: wrapped[*string]{nonEmpty(s.RefreshToken)},
		IsPKCE:       wrapped[bool]{s.IsPKCE},
	}
	if !s.ExpiryTime.IsZero() {
		t := s.ExpiryTime.UTC().Format(tidalapiTimeLayout)
		out.ExpiryTime.Data = &t
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("failed to encode tidalapi session file: %w", err)
	}
	return b, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
