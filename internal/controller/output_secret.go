package controller

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionfile"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// refreshedAtAnnotation records on the output Secret when the token in it arrived. With the
// expiry in the Secret's data it makes the Secret the record of the schedule: an operator
// that restarts, or a status write that was lost, does not cause an early refresh.
const refreshedAtAnnotation = "sessions.tidal-mcp.dev/refreshed-at"

// tokenState is what the output Secret says about the token it holds.
type tokenState struct {
	present     bool
	refreshedAt time.Time
	expiresAt   time.Time
}

// tokenStateOf reads the token state of a managed output Secret; nil means no Secret.
// Anything unreadable counts as no token, which makes the next step refresh.
func tokenStateOf(secret *corev1.Secret) tokenState {
	if secret == nil || len(secret.Data[sessionsv1alpha1.KeyAccessToken]) == 0 {
		return tokenState{}
	}
	expires, err1 := time.Parse(time.RFC3339, string(secret.Data[sessionsv1alpha1.KeyExpiresAt]))
	refreshed, err2 := time.Parse(time.RFC3339, secret.Annotations[refreshedAtAnnotation])
	if err1 != nil || err2 != nil || !expires.After(refreshed) {
		return tokenState{}
	}
	return tokenState{present: true, refreshedAt: refreshed, expiresAt: expires}
}

// isManaged says whether the operator manages secret on behalf of session: it carries the
// managed-by label and the session is its controller.
func isManaged(secret *corev1.Secret, session *sessionsv1alpha1.TidalSession) bool {
	return secret.Labels[sessionsv1alpha1.ManagedByLabel] == sessionsv1alpha1.ManagedByValue &&
		metav1.IsControlledBy(secret, session)
}

// getOutputSecret returns the session's output Secret, or nil when there is none.
// The cache holds only Secrets with the managed-by label, so when it has none of that name
// an uncached read tells "absent" from "someone else's Secret"; the latter is a waitError,
// because the operator must never overwrite it and cannot watch it go away.
func (r *TidalSessionReconciler) getOutputSecret(ctx context.Context, session *sessionsv1alpha1.TidalSession) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, outputSecretKey(session), secret)
	if apierrors.IsNotFound(err) {
		return r.readOutputSecret(ctx, session)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get output Secret %s: %w", session.Spec.OutputSecret.Name, err)
	}
	if !isManaged(secret, session) {
		return nil, outputConflict(r.RecheckInterval, secret.Name)
	}
	return secret, nil
}

// readOutputSecret is getOutputSecret without the cache.
func (r *TidalSessionReconciler) readOutputSecret(ctx context.Context, session *sessionsv1alpha1.TidalSession) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, outputSecretKey(session), secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("failed to get output Secret %s: %w", session.Spec.OutputSecret.Name, err)
	case !isManaged(secret, session):
		return nil, outputConflict(r.RecheckInterval, secret.Name)
	}
	return secret, nil
}

func outputSecretKey(session *sessionsv1alpha1.TidalSession) types.NamespacedName {
	return types.NamespacedName{Namespace: session.Namespace, Name: session.Spec.OutputSecret.Name}
}

func outputConflict(after time.Duration, name string) error {
	return waitf(after, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonOutputSecretConflict,
		"Secret %s exists and is not managed by this TidalSession; it is left untouched. "+
			"Delete it or choose another spec.outputSecret.name", name)
}

// outputSecretData is what the output Secret holds for a token. It never holds the refresh
// token: the operator is the only party that refreshes, so consumers cannot race it.
func outputSecretData(tok *tidal.Token, info sessionInfo) (map[string][]byte, error) {
	expires := tok.ExpiresAt.UTC().Truncate(time.Second)
	file, err := sessionfile.Tidalapi{
		TokenType:   tok.TokenType,
		SessionID:   info.SessionID,
		AccessToken: tok.AccessToken,
		ExpiryTime:  expires,
	}.Marshal()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		sessionsv1alpha1.KeyAccessToken: []byte(tok.AccessToken),
		sessionsv1alpha1.KeyTokenType:   []byte(tok.TokenType),
		sessionsv1alpha1.KeyExpiresAt:   []byte(expires.Format(time.RFC3339)),
		sessionsv1alpha1.KeyUserID:      []byte(info.UserID),
		sessionsv1alpha1.KeyCountryCode: []byte(info.CountryCode),
		sessionsv1alpha1.KeySessionID:   []byte(info.SessionID),
		sessionsv1alpha1.KeySessionFile: file,
		sessionsv1alpha1.KeyTokenStatus: []byte(sessionsv1alpha1.TokenStatusValid),
	}, nil
}

// markOutputExpired sets the output Secret's token_status to expired when the token in it
// has expired, so that consumers reading it during an outage are not misled. The token
// stays: TIDAL rejects it anyway, and a consumer may want to show when it expired. A
// failure is logged and left to the next attempt, which comes soon.
func (r *TidalSessionReconciler) markOutputExpired(ctx context.Context, existing *corev1.Secret) {
	st := tokenStateOf(existing)
	if !st.present || r.Clock.Now().Before(st.expiresAt) ||
		string(existing.Data[sessionsv1alpha1.KeyTokenStatus]) == sessionsv1alpha1.TokenStatusExpired {
		return
	}
	marked := existing.DeepCopy()
	marked.Data[sessionsv1alpha1.KeyTokenStatus] = []byte(sessionsv1alpha1.TokenStatusExpired)
	// An update, not a patch: it fails on a Secret changed since it was read, and needs no
	// permission beyond those the operator has.
	if err := r.Update(ctx, marked); err != nil {
		logf.FromContext(ctx).Error(err, "Failed to mark the output Secret's token expired", "secret", klog.KObj(existing))
	}
}

// writeOutputSecret creates or updates the output Secret with data; existing is what
// getOutputSecret returned. When the cache was behind or another writer came first, it
// reads the Secret again without the cache and retries, so the new token is not lost.
func (r *TidalSessionReconciler) writeOutputSecret(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	existing *corev1.Secret, data map[string][]byte, receivedAt time.Time) (created bool, err error) {
	retrying := false
	err = retry.OnError(retry.DefaultRetry, isStaleWrite, func() error {
		if retrying {
			fresh, err := r.readOutputSecret(ctx, session)
			if err != nil {
				return err
			}
			existing = fresh
		}
		retrying = true

		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: session.Namespace, Name: session.Spec.OutputSecret.Name}}
		if existing != nil {
			secret = existing.DeepCopy()
		}
		if err := r.fillOutputSecret(session, secret, data, receivedAt); err != nil {
			return err
		}
		if existing != nil {
			return r.Update(ctx, secret)
		}
		if err := r.Create(ctx, secret); err != nil {
			return err
		}
		created = true
		return nil
	})
	if _, ok := asWait(err); ok || err == nil {
		return created, err
	}
	return false, fmt.Errorf("failed to write output Secret %s: %w", session.Spec.OutputSecret.Name, err)
}

// isStaleWrite says whether a write failed because what the operator read was out of date.
func isStaleWrite(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err)
}

func (r *TidalSessionReconciler) fillOutputSecret(session *sessionsv1alpha1.TidalSession, secret *corev1.Secret,
	data map[string][]byte, receivedAt time.Time) error {
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Labels[sessionsv1alpha1.ManagedByLabel] = sessionsv1alpha1.ManagedByValue
	secret.Labels[sessionsv1alpha1.SessionLabel] = session.Name
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[refreshedAtAnnotation] = receivedAt.UTC().Truncate(time.Second).Format(time.RFC3339)
	secret.Type = corev1.SecretTypeOpaque
	secret.Data = data
	return controllerutil.SetControllerReference(session, secret, r.Scheme)
}

// moveOutputSecret carries the token to a renamed output Secret (spec.outputSecret.name no
// longer status.outputSecretName). The Secret under the new name is written first, from the
// old one's data, and the old one is deleted only afterwards, so that consumers find a token
// under one name or the other at every moment. existing is the Secret under the new name, as
// getOutputSecret returned it; the result is what is there after the move. A Secret under the
// old name that the session does not manage is left alone.
func (r *TidalSessionReconciler) moveOutputSecret(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	existing *corev1.Secret) (*corev1.Secret, error) {
	oldName, newName := session.Status.OutputSecretName, session.Spec.OutputSecret.Name
	if oldName == "" || oldName == newName {
		return existing, nil
	}
	old := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: session.Namespace, Name: oldName}, old)
	switch {
	case apierrors.IsNotFound(err):
		return existing, nil
	case err != nil:
		return nil, fmt.Errorf("failed to get the previous output Secret %s: %w", oldName, err)
	case !isManaged(old, session):
		return existing, nil
	}
	if st := tokenStateOf(old); existing == nil && st.present {
		if _, err := r.writeOutputSecret(ctx, session, nil, maps.Clone(old.Data), st.refreshedAt); err != nil {
			return nil, err
		}
		if existing, err = r.readOutputSecret(ctx, session); err != nil {
			return nil, err
		}
	}
	if err := r.Delete(ctx, old, client.Preconditions{UID: &old.UID}); client.IgnoreNotFound(err) != nil {
		return nil, fmt.Errorf("failed to delete the previous output Secret %s: %w", oldName, err)
	}
	r.event(session, corev1.EventTypeNormal, sessionsv1alpha1.ReasonOutputSecretMoved, "Move",
		fmt.Sprintf("spec.outputSecret.name changed: the token moved from Secret %s to %s, and %s is deleted; "+
			"workloads that mount %s must mount %s", oldName, newName, oldName, oldName, newName))
	logf.FromContext(ctx).Info("Output Secret moved", "session", klog.KObj(session), "from", oldName, "to", newName)
	session.Status.OutputSecretName = newName
	return existing, nil
}
