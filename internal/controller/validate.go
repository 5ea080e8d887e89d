package controller

import (
	"k8s.io/apimachinery/pkg/util/validation"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// validateSpec re-checks what admission checks too, for objects admitted before a rule
// existed or written past the CRD's schema. Its errors are terminal: the spec must change.
func validateSpec(session *sessionsv1alpha1.TidalSession) error {
	if len(session.Name) > validation.LabelValueMaxLength {
		return terminalf(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec,
			"metadata.name must be at most %d characters: the output Secret carries it as a label value",
			validation.LabelValueMaxLength)
	}
	if session.Spec.OutputSecret.Name == session.Spec.CredentialsSecretRef.Name {
		return terminalf(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec,
			"spec.outputSecret.name must differ from spec.credentialsSecretRef.name")
	}
	p := session.Spec.Refresh
	if p.BeforeExpiry != nil && p.BeforeExpiryPercent != nil {
		return terminalf(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec,
			"set at most one of spec.refresh.beforeExpiry and spec.refresh.beforeExpiryPercent")
	}
	if p.BeforeExpiry != nil && p.BeforeExpiry.Duration <= 0 {
		return terminalf(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec,
			"spec.refresh.beforeExpiry must be a positive duration such as 30m")
	}
	return nil
}
