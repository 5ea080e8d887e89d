package main

import (
	"strings"
	"testing"
)

func TestValidateTokenEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name, healthAPI, audience string
		wantErr                   bool
	}{
		{name: "both off", healthAPI: "0"},
		{name: "health endpoint only", healthAPI: ":8444"},
		{name: "both on", healthAPI: ":8444", audience: "tidal-session-operator"},
		{name: "audience without the health endpoint", healthAPI: "0", audience: "tidal-session-operator", wantErr: true},
		{name: "audience with an empty address", audience: "tidal-session-operator", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateTokenEndpoint(options{healthAPIAddr: tc.healthAPI, tokenAudience: tc.audience})
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want one: %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--health-api-bind-address") {
				t.Errorf("error does not say what to set: %v", err)
			}
		})
	}
}
