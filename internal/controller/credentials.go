package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionfile"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidal"
)

// maxCredentialBytes bounds each credential value. TIDAL's refresh tokens are JWTs of well
// under a kilobyte; anything far larger is not one.
const maxCredentialBytes = 16 << 10

// loadCredentials reads the session's credentials Secret and returns them with the
// Secret's resourceVersion. It reads without the cache: the operator caches only the
// Secrets it manages, and reads others only when it needs them. A missing Secret or key is
// a waitError: the operator cannot watch unmanaged Secrets, so it looks again after
// RecheckInterval.
func (r *TidalSessionReconciler) loadCredentials(ctx context.Context, session *sessionsv1alpha1.TidalSession) (tidal.Credentials, string, error) {
	ref := session.Spec.CredentialsSecretRef
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: session.Namespace, Name: ref.Name}, secret)
	if apierrors.IsNotFound(err) {
		return tidal.Credentials{}, "", waitf(r.RecheckInterval, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsMissing,
			"credentials Secret %s not found in namespace %s; create it with the keys %s and %s",
			ref.Name, session.Namespace, refreshTokenKey(ref), clientIDKey(ref))
	}
	if err != nil {
		return tidal.Credentials{}, "", fmt.Errorf("failed to get credentials Secret %s: %w", ref.Name, err)
	}
	if err := r.claimCredentials(ctx, session, secret); err != nil {
		return tidal.Credentials{}, "", err
	}
	creds, err := credentialsFrom(secret, ref, r.RecheckInterval)
	return creds, secret.ResourceVersion, err
}

// claimCredentials makes secret the credentials of session alone (see
// CredentialsClaimAnnotation): it claims an unclaimed Secret, or one whose claiming session is
// gone, and refuses one that another existing session claimed. A claim races another only
// through the resourceVersion of the update: the loser's conflict is retried by the
// controller, which then finds the winner's claim.
func (r *TidalSessionReconciler) claimCredentials(ctx context.Context, session *sessionsv1alpha1.TidalSession, secret *corev1.Secret) error {
	owner := secret.Annotations[sessionsv1alpha1.CredentialsClaimAnnotation]
	if owner == string(session.UID) {
		return nil
	}
	if owner != "" {
		name, err := r.sessionWithUID(ctx, session.Namespace, types.UID(owner))
		if err != nil {
			return err
		}
		if name != "" {
			return waitf(r.RecheckInterval, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsInUse,
				"credentials Secret %s belongs to TidalSession %s; a refresh token serves one session, so give "+
					"this session a Secret of its own (a new login)", secret.Name, name)
		}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[sessionsv1alpha1.CredentialsClaimAnnotation] = string(session.UID)
	if err := r.Update(ctx, secret); err != nil {
		return fmt.Errorf("failed to claim credentials Secret %s: %w", secret.Name, err)
	}
	return nil
}

// sessionWithUID returns the name of the TidalSession of namespace with uid, or "" when there
// is none.
func (r *TidalSessionReconciler) sessionWithUID(ctx context.Context, namespace string, uid types.UID) (string, error) {
	var list sessionsv1alpha1.TidalSessionList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return "", fmt.Errorf("failed to list TidalSessions: %w", err)
	}
	for _, s := range list.Items {
		if s.UID == uid {
			return s.Name, nil
		}
	}
	return "", nil
}

// awaitNewCredentials keeps a session whose refresh token TIDAL rejected from asking TIDAL
// again with the same token: only a new login can help, and the operator cannot watch the
// credentials Secret, so it looks again after recheck. The Secret counts as unchanged when
// its resourceVersion is the one last used, or when sameToken says that the token in it is
// the one TIDAL rejected (the Secret changed elsewhere, e.g. a label). A token TIDAL rejected
// is never sent again, also when another state came between (a quarantine, approved since).
func awaitNewCredentials(session *sessionsv1alpha1.TidalSession, version string, sameToken bool, recheck time.Duration) error {
	ready := meta.FindStatusCondition(session.Status.Conditions, sessionsv1alpha1.ConditionReady)
	if ready != nil && session.Status.Phase == sessionsv1alpha1.PhaseReauthRequired {
		if session.Status.CredentialsVersion != version && !sameToken {
			return nil
		}
		return waitf(recheck, sessionsv1alpha1.PhaseReauthRequired, ready.Reason, "%s", ready.Message)
	}
	if sameToken {
		return waitf(recheck, sessionsv1alpha1.PhaseReauthRequired, sessionsv1alpha1.ReasonReauthRequired,
			"TIDAL rejected the refresh token in the credentials Secret before. %s", logInAgain)
	}
	return nil
}

// credentialsFrom extracts and checks the credentials in secret. Its errors name the
// Secret and the key, never a value.
func credentialsFrom(secret *corev1.Secret, ref sessionsv1alpha1.CredentialsSecretReference, recheck time.Duration) (tidal.Credentials, error) {
	get := func(key string, required bool) (string, error) {
		raw, ok := secret.Data[key]
		v := strings.TrimSpace(string(raw))
		switch {
		case (!ok || v == "") && required:
			return "", waitf(recheck, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsMissing,
				"credentials Secret %s has no key %q or it is empty", secret.Name, key)
		case len(raw) > maxCredentialBytes:
			return "", waitf(recheck, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsInvalid,
				"key %q of credentials Secret %s is larger than %d bytes", key, secret.Name, maxCredentialBytes)
		case strings.ContainsAny(v, " \t\r\n"):
			return "", waitf(recheck, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsInvalid,
				"key %q of credentials Secret %s contains white space inside the value", key, secret.Name)
		case !printableASCII(v):
			return "", waitf(recheck, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsInvalid,
				"key %q of credentials Secret %s holds characters other than printable ASCII", key, secret.Name)
		}
		return v, nil
	}
	var creds tidal.Credentials
	var err error
	if creds.RefreshToken, err = get(refreshTokenKey(ref), ref.SessionFileKey == ""); err != nil {
		return tidal.Credentials{}, err
	}
	var file sessionfile.Session
	if creds.RefreshToken == "" {
		if file, err = adoptSessionFile(secret, ref, recheck); err != nil {
			return tidal.Credentials{}, err
		}
		creds.RefreshToken = file.RefreshToken
	}
	if creds.ClientID, err = get(clientIDKey(ref), file.ClientID == ""); err != nil {
		return tidal.Credentials{}, err
	}
	if creds.ClientID == "" {
		creds.ClientID = file.ClientID
	}
	if creds.ClientSecret, err = get(clientSecretKey(ref), false); err != nil {
		return tidal.Credentials{}, err
	}
	return creds, nil
}

// adoptSessionFile reads the session file under ref.SessionFileKey, for a Secret that has no
// refresh token key yet. The parser's errors name the format and the field, never a value.
func adoptSessionFile(secret *corev1.Secret, ref sessionsv1alpha1.CredentialsSecretReference, recheck time.Duration) (sessionfile.Session, error) {
	raw, ok := secret.Data[ref.SessionFileKey]
	if !ok || len(bytes.TrimSpace(raw)) == 0 {
		return sessionfile.Session{}, waitf(recheck, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsMissing,
			"credentials Secret %s has neither key %q nor a session file under key %q", secret.Name,
			refreshTokenKey(ref), ref.SessionFileKey)
	}
	file, err := sessionfile.Parse(raw)
	if err != nil {
		return sessionfile.Session{}, waitf(recheck, sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonCredentialsInvalid,
			"key %q of credentials Secret %s holds no session file the operator can adopt: %v", ref.SessionFileKey,
			secret.Name, err)
	}
	return file, nil
}

// rejectedTokens remembers, per session, a digest of the refresh token TIDAL rejected,
// so that a credentials Secret changed in some other way does not send it again. It is
// memory only: a digest in status would be a fingerprint of a secret, and after a restart
// the resourceVersion check still holds.
type rejectedTokens struct{ m sync.Map }

func tokenDigest(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

func (t *rejectedTokens) remember(session types.NamespacedName, token string) {
	t.m.Store(session, tokenDigest(token))
}

func (t *rejectedTokens) forget(session types.NamespacedName) { t.m.Delete(session) }

func (t *rejectedTokens) rejected(session types.NamespacedName, token string) bool {
	d, ok := t.m.Load(session)
	return ok && d.([sha256.Size]byte) == tokenDigest(token)
}

// printableASCII says whether v is printable ASCII, as TIDAL's tokens and client ids are.
func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// storeRefreshToken writes a refresh token TIDAL issued (rotated in a refresh, or from a
// device login) into the credentials Secret. It runs before anything else is done with
// TIDAL's answer: if the operator stopped after using the new token but before storing it,
// the session would be lost. Conflicts are retried on a fresh read so the new token is never
// dropped. The Secret's new resourceVersion is recorded in status.issuedTokenVersion: while
// the Secret keeps it, only the operator should hold the token (see reusedTokenError).
func (r *TidalSessionReconciler) storeRefreshToken(ctx context.Context, session *sessionsv1alpha1.TidalSession, refreshToken string) error {
	ref := session.Spec.CredentialsSecretRef
	key := types.NamespacedName{Namespace: session.Namespace, Name: ref.Name}
	secret := &corev1.Secret{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := r.APIReader.Get(ctx, key, secret); err != nil {
			return err
		}
		if secret.Data == nil {
			secret.Data = map[string][]byte{}
		}
		secret.Data[refreshTokenKey(ref)] = []byte(refreshToken)
		return r.Update(ctx, secret)
	})
	if err != nil {
		return fmt.Errorf("failed to store the new refresh token in Secret %s: %w", ref.Name, err)
	}
	session.Status.IssuedTokenVersion = secret.ResourceVersion
	return nil
}

// The keys default in the CRD; these defaults also cover objects written before a default
// existed, and the fake client in unit tests, which applies no CRD defaults.
func refreshTokenKey(ref sessionsv1alpha1.CredentialsSecretReference) string {
	return orDefault(ref.RefreshTokenKey, "refresh_token")
}

func clientIDKey(ref sessionsv1alpha1.CredentialsSecretReference) string {
	return orDefault(ref.ClientIDKey, "client_id")
}

func clientSecretKey(ref sessionsv1alpha1.CredentialsSecretReference) string {
	return orDefault(ref.ClientSecretKey, "client_secret")
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
