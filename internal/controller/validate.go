package controller

import (
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// The bounds the CRD's rules enforce at admission (api/v1alpha1/tidalsession_types.go);
// a change there must be made here too.
const (
	maxBeforeExpiry        = 24 * time.Hour
	minBeforeExpiryPercent = 1
	maxBeforeExpiryPercent = 50
	minHealthCheckInterval = time.Minute
	maxHealthCheckInterval = 24 * time.Hour
)

// validateSpec re-checks what admission checks too, for objects admitted before a rule
// existed, unchanged since (the API server lets an update keep a field that a newer rule
// rejects), or written past the CRD's schema. It reports every problem at once, each named
// by its field path, so that one round of edits can fix them all. Its errors are terminal:
// the spec must change.
//
// Two rules cannot be re-checked here. The operator decodes durations with Go's parser, so
// a malformed one ("1d") never reaches this function: the object fails to decode, and only
// admission can keep it out. And the rule that credentialsSecretRef.refreshTokenKey keeps its
// value compares against the previous spec, which the operator does not have.
func validateSpec(session *sessionsv1alpha1.TidalSession) error {
	var errs field.ErrorList
	if len(session.Name) > validation.LabelValueMaxLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), session.Name,
			"must be at most 63 characters: the output Secret carries it as a label value"))
	}
	spec := field.NewPath("spec")
	errs = append(errs, validateSecretNames(session.Spec, spec)...)
	errs = append(errs, validateCredentialKeys(session.Spec.CredentialsSecretRef, spec.Child("credentialsSecretRef"))...)
	errs = append(errs, validateRefresh(session.Spec.Refresh, spec.Child("refresh"))...)
	errs = append(errs, validateHealthCheck(session.Spec.HealthCheck, spec.Child("healthCheck"))...)
	if len(errs) == 0 {
		return nil
	}
	return terminalf(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec, "invalid spec: %s",
		errs.ToAggregate().Error())
}

// validateSecretNames checks that both Secret names are Secret names and name two Secrets:
// the operator rewrites the output Secret on every refresh, which would destroy the
// credentials.
func validateSecretNames(spec sessionsv1alpha1.TidalSessionSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	output := path.Child("outputSecret", "name")
	for _, n := range []struct {
		path *field.Path
		name string
	}{
		{path.Child("credentialsSecretRef", "name"), spec.CredentialsSecretRef.Name},
		{output, spec.OutputSecret.Name},
	} {
		if n.name == "" {
			errs = append(errs, field.Required(n.path, "a Secret name"))
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(n.name) {
			errs = append(errs, field.Invalid(n.path, n.name, msg))
		}
	}
	if spec.OutputSecret.Name != "" && spec.OutputSecret.Name == spec.CredentialsSecretRef.Name {
		errs = append(errs, field.Invalid(output, spec.OutputSecret.Name,
			"must differ from spec.credentialsSecretRef.name: the operator rewrites the output Secret on every refresh"))
	}
	return errs
}

// validateCredentialKeys checks the data keys the credentials are read from. An empty key
// stands for its default (objects written before the CRD defaulted it).
func validateCredentialKeys(ref sessionsv1alpha1.CredentialsSecretReference, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range []struct {
		field, value string
	}{
		{"refreshTokenKey", ref.RefreshTokenKey},
		{"clientIDKey", ref.ClientIDKey},
		{"clientSecretKey", ref.ClientSecretKey},
		{"sessionFileKey", ref.SessionFileKey},
	} {
		if k.value == "" {
			continue
		}
		for _, msg := range validation.IsConfigMapKey(k.value) {
			errs = append(errs, field.Invalid(path.Child(k.field), k.value, msg))
		}
	}
	// A rotated refresh token is written under refreshTokenKey: sharing it with the client id
	// or secret would overwrite them.
	rt, id, secret := refreshTokenKey(ref), clientIDKey(ref), clientSecretKey(ref)
	if rt == id {
		errs = append(errs, field.Invalid(path.Child("refreshTokenKey"), rt,
			"must differ from clientIDKey: rotated refresh tokens are written under refreshTokenKey"))
	}
	if rt == secret {
		errs = append(errs, field.Invalid(path.Child("refreshTokenKey"), rt,
			"must differ from clientSecretKey: rotated refresh tokens are written under refreshTokenKey"))
	}
	if ref.SessionFileKey == rt {
		errs = append(errs, field.Invalid(path.Child("sessionFileKey"), rt,
			"must differ from refreshTokenKey: rotated refresh tokens are written under refreshTokenKey, "+
				"and the session file is never changed"))
	}
	return errs
}

// validateRefresh checks the refresh policy: one of its two forms, each within bounds.
func validateRefresh(p sessionsv1alpha1.RefreshPolicy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p.BeforeExpiry != nil && p.BeforeExpiryPercent != nil {
		errs = append(errs, field.Invalid(path, "beforeExpiry and beforeExpiryPercent",
			"set at most one of spec.refresh.beforeExpiry and spec.refresh.beforeExpiryPercent"))
	}
	if p.BeforeExpiry != nil {
		switch d := p.BeforeExpiry.Duration; {
		case d <= 0:
			errs = append(errs, field.Invalid(path.Child("beforeExpiry"), d.String(),
				"must be a positive duration such as 30m"))
		case d > maxBeforeExpiry:
			errs = append(errs, field.Invalid(path.Child("beforeExpiry"), d.String(),
				"must be at most 24h; beforeExpiryPercent suits longer-lived tokens"))
		}
	}
	if pct := p.BeforeExpiryPercent; pct != nil && (*pct < minBeforeExpiryPercent || *pct > maxBeforeExpiryPercent) {
		errs = append(errs, field.Invalid(path.Child("beforeExpiryPercent"), *pct, "must be from 1 to 50"))
	}
	return errs
}

// validateHealthCheck checks the health check's interval and endpoint. Both may be unset:
// the operator then uses its defaults.
func validateHealthCheck(h sessionsv1alpha1.HealthCheckPolicy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h.Interval != nil {
		if d := h.Interval.Duration; d < minHealthCheckInterval || d > maxHealthCheckInterval {
			errs = append(errs, field.Invalid(path.Child("interval"), d.String(), "must be between 1m and 24h"))
		}
	}
	switch h.Endpoint {
	case "", sessionsv1alpha1.HealthCheckSessions, sessionsv1alpha1.HealthCheckUsersMe:
	default:
		errs = append(errs, field.NotSupported(path.Child("endpoint"), h.Endpoint,
			[]sessionsv1alpha1.HealthCheckEndpoint{sessionsv1alpha1.HealthCheckSessions, sessionsv1alpha1.HealthCheckUsersMe}))
	}
	return errs
}
