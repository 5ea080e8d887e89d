package controller

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

func TestValidateSpec(t *testing.T) {
	dur := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	pct := func(p int32) *int32 { return &p }
	keys := func(rt, id, secret string) func(*sessionsv1alpha1.TidalSession) {
		return func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.CredentialsSecretRef.RefreshTokenKey = rt
			s.Spec.CredentialsSecretRef.ClientIDKey = id
			s.Spec.CredentialsSecretRef.ClientSecretKey = secret
		}
	}
	tests := []struct {
		name   string
		modify func(*sessionsv1alpha1.TidalSession)
		want   []string // parts of the message, each required; none means valid
	}{
		{"valid", func(*sessionsv1alpha1.TidalSession) {}, nil},
		{"name of 63 characters", func(s *sessionsv1alpha1.TidalSession) { s.Name = strings.Repeat("a", 63) }, nil},
		{"name of 64 characters", func(s *sessionsv1alpha1.TidalSession) { s.Name = strings.Repeat("a", 64) },
			[]string{"metadata.name", "at most 63 characters"}},

		{"output is the credentials Secret", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.OutputSecret.Name = s.Spec.CredentialsSecretRef.Name
		}, []string{"spec.outputSecret.name", "must differ from spec.credentialsSecretRef.name"}},
		{"no credentials Secret name", func(s *sessionsv1alpha1.TidalSession) { s.Spec.CredentialsSecretRef.Name = "" },
			[]string{"spec.credentialsSecretRef.name: Required value"}},
		{"no output Secret name", func(s *sessionsv1alpha1.TidalSession) { s.Spec.OutputSecret.Name = "" },
			[]string{"spec.outputSecret.name: Required value"}},
		{"credentials Secret name with capitals", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.CredentialsSecretRef.Name = "Alice_Creds"
		}, []string{`spec.credentialsSecretRef.name: Invalid value: "Alice_Creds"`, "RFC 1123 subdomain"}},
		{"output Secret name of 254 characters", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.OutputSecret.Name = strings.Repeat("o", 254)
		}, []string{"spec.outputSecret.name", "no more than 253 characters"}},
		{"dotted Secret names", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.CredentialsSecretRef.Name, s.Spec.OutputSecret.Name = "tidal.creds", "tidal.token"
		}, nil},

		{"keys of other names", keys("tidal.refresh-token", "ID", "_secret"), nil},
		{"refresh token key with a slash", keys("tidal/refresh", "", ""),
			[]string{`spec.credentialsSecretRef.refreshTokenKey: Invalid value: "tidal/refresh"`}},
		{"client id key '..'", keys("", "..", ""), []string{`spec.credentialsSecretRef.clientIDKey: Invalid value: ".."`}},
		{"session file key '.'", func(s *sessionsv1alpha1.TidalSession) { s.Spec.CredentialsSecretRef.SessionFileKey = "." },
			[]string{`spec.credentialsSecretRef.sessionFileKey: Invalid value: "."`}},
		{"client secret key of 254 characters", keys("", "", strings.Repeat("k", 254)),
			[]string{"spec.credentialsSecretRef.clientSecretKey", "no more than 253 characters"}},
		{"refresh token key is the default client id key", keys("client_id", "", ""),
			[]string{"spec.credentialsSecretRef.refreshTokenKey", "must differ from clientIDKey"}},
		{"client secret key is the default refresh token key", keys("", "", "refresh_token"),
			[]string{"spec.credentialsSecretRef.refreshTokenKey", "must differ from clientSecretKey"}},
		{"client id and secret share a key, which only TIDAL can judge", keys("", "id", "id"), nil},
		{"session file under the refresh token key", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.CredentialsSecretRef.SessionFileKey = "refresh_token"
		}, []string{"spec.credentialsSecretRef.sessionFileKey", "must differ from refreshTokenKey"}},
		{"session file beside the refresh token", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.CredentialsSecretRef.SessionFileKey = "session.json"
		}, nil},

		{"both refresh policies", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.Refresh = sessionsv1alpha1.RefreshPolicy{BeforeExpiry: dur(time.Hour), BeforeExpiryPercent: pct(10)}
		}, []string{"spec.refresh", "at most one"}},
		{"negative beforeExpiry", func(s *sessionsv1alpha1.TidalSession) { s.Spec.Refresh.BeforeExpiry = dur(-5 * time.Minute) },
			[]string{"spec.refresh.beforeExpiry", "positive duration"}},
		{"zero beforeExpiry", func(s *sessionsv1alpha1.TidalSession) { s.Spec.Refresh.BeforeExpiry = dur(0) },
			[]string{"spec.refresh.beforeExpiry", "positive duration"}},
		{"beforeExpiry of a nanosecond", func(s *sessionsv1alpha1.TidalSession) { s.Spec.Refresh.BeforeExpiry = dur(1) }, nil},
		{"beforeExpiry of 24h", func(s *sessionsv1alpha1.TidalSession) { s.Spec.Refresh.BeforeExpiry = dur(24 * time.Hour) }, nil},
		{"beforeExpiry above 24h", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.Refresh.BeforeExpiry = dur(24*time.Hour + time.Second)
		}, []string{`spec.refresh.beforeExpiry: Invalid value: "24h0m1s"`, "at most 24h"}},
		{"percentage of 1", func(s *sessionsv1alpha1.TidalSession) { s.Spec.Refresh.BeforeExpiryPercent = pct(1) }, nil},
		{"percentage of 50", func(s *sessionsv1alpha1.TidalSession) { s.Spec.Refresh.BeforeExpiryPercent = pct(50) }, nil},
		{"percentage of 0", func(s *sessionsv1alpha1.TidalSession) { s.Spec.Refresh.BeforeExpiryPercent = pct(0) },
			[]string{"spec.refresh.beforeExpiryPercent: Invalid value: 0", "from 1 to 50"}},
		{"percentage of 51", func(s *sessionsv1alpha1.TidalSession) { s.Spec.Refresh.BeforeExpiryPercent = pct(51) },
			[]string{"spec.refresh.beforeExpiryPercent: Invalid value: 51", "from 1 to 50"}},

		{"health check every minute", func(s *sessionsv1alpha1.TidalSession) { s.Spec.HealthCheck.Interval = dur(time.Minute) }, nil},
		{"daily health check against users/me", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.HealthCheck = sessionsv1alpha1.HealthCheckPolicy{Interval: dur(24 * time.Hour),
				Endpoint: sessionsv1alpha1.HealthCheckUsersMe}
		}, nil},
		{"health check below 1m", func(s *sessionsv1alpha1.TidalSession) { s.Spec.HealthCheck.Interval = dur(59 * time.Second) },
			[]string{`spec.healthCheck.interval: Invalid value: "59s"`, "between 1m and 24h"}},
		{"health check above 24h", func(s *sessionsv1alpha1.TidalSession) { s.Spec.HealthCheck.Interval = dur(25 * time.Hour) },
			[]string{"spec.healthCheck.interval", "between 1m and 24h"}},
		{"unknown health check endpoint", func(s *sessionsv1alpha1.TidalSession) { s.Spec.HealthCheck.Endpoint = "Graph" },
			[]string{`spec.healthCheck.endpoint: Unsupported value: "Graph"`, `"Sessions", "UsersMe"`}},

		{"every problem at once", func(s *sessionsv1alpha1.TidalSession) {
			s.Spec.OutputSecret.Name = s.Spec.CredentialsSecretRef.Name
			s.Spec.Refresh.BeforeExpiryPercent = pct(80)
			s.Spec.HealthCheck.Interval = dur(time.Second)
		}, []string{"spec.outputSecret.name", "spec.refresh.beforeExpiryPercent", "spec.healthCheck.interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession()
			tt.modify(s)
			err := validateSpec(s)
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("validateSpec = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validateSpec = nil, want an error naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("validateSpec = %v, want it to contain %q", err, w)
				}
			}
			te, ok := asTerminal(err)
			if !ok {
				t.Fatalf("validateSpec error %v is not terminal: retrying cannot fix a spec", err)
			}
			if te.phase != sessionsv1alpha1.PhaseError || te.reason != sessionsv1alpha1.ReasonInvalidSpec {
				t.Errorf("validateSpec error has phase %s, reason %s; want %s, %s",
					te.phase, te.reason, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec)
			}
		})
	}
}

// The message becomes the Ready condition's; a message that changed between reconciles of
// the same spec would rewrite the condition each time.
func TestValidateSpecMessageIsStable(t *testing.T) {
	s := newSession()
	s.Spec.CredentialsSecretRef.Name = "Bad_Creds"
	s.Spec.OutputSecret.Name = "Bad_Token"
	s.Spec.CredentialsSecretRef.ClientIDKey = "x/y"
	s.Spec.CredentialsSecretRef.ClientSecretKey = "a/b"
	first := validateSpec(s).Error()
	for range 20 {
		if got := validateSpec(s).Error(); got != first {
			t.Fatalf("validateSpec message changed between calls:\n%s\n%s", first, got)
		}
	}
}

// The operator decodes durations with Go's parser, so a duration it cannot parse fails the
// decode of the whole object before validateSpec could report it: admission's duration
// syntax rule is the only guard there is. This pins that down, so that whoever changes the
// type learns that the rule may then be relaxed, or must be kept.
func TestValidateSpecNeverSeesMalformedDurations(t *testing.T) {
	for _, d := range []string{"1d", "1w", "PT1H", "1 hour"} {
		for _, field := range []string{`"refresh":{"beforeExpiry":%q}`, `"healthCheck":{"interval":%q}`} {
			doc := `{"spec":{` + strings.Replace(field, "%q", `"`+d+`"`, 1) + `}}`
			var s sessionsv1alpha1.TidalSession
			if err := json.Unmarshal([]byte(doc), &s); err == nil {
				t.Errorf("%s decoded; admission's duration syntax rule would no longer be the only guard", doc)
			}
		}
	}
}
