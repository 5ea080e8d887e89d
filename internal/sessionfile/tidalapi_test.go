package sessionfile

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTidalapiMarshal(t *testing.T) {
	expiry := time.Date(2026, 12, 4, 14, 5, 6, 0, time.FixedZone("CET", 3600))
	b, err := Tidalapi{TokenType: "Bearer", SessionID: "s-1", AccessToken: "at", ExpiryTime: expiry}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	want := map[string]any{
		"token_type":    "Bearer",
		"session_id":    "s-1",
		"access_token":  "at",
		"refresh_token": nil,
		"is_pkce":       false,
		"expiry_time":   "2026-12-04 13:05:06.000000",
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		w, ok := got[k]
		if !ok {
			t.Errorf("key %q missing", k)
			continue
		}
		if w["data"] != v {
			t.Errorf("%s.data = %v, want %v", k, w["data"], v)
		}
	}
}
