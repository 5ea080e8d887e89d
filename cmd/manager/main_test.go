package main

import (
	"errors"
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

// Every flag mistake is reported at once, as a flagError that main prints in one line, before
// the operator connects to anything.
func TestRunRejectsBadFlagsTogether(t *testing.T) {
	err := run(options{authURL: "ftp://127.0.0.1/", healthAPIAddr: "0", tokenAudience: "tso"})
	var bad *flagError
	if !errors.As(err, &bad) {
		t.Fatalf("err %v, want a flagError", err)
	}
	for _, want := range []string{"--health-api-bind-address", "anomaly"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
