package v1alpha1

// Phase is a one-word summary of a TidalSession for people; conditions carry the detail.
// +kubebuilder:validation:Enum=Pending;Active;Degraded;Expired;ReauthRequired;Suspended;Error;Quarantined
type Phase string

const (
	// PhasePending: the operator has not yet written a token for the session.
	PhasePending Phase = "Pending"
	// PhaseActive: the output Secret holds a valid access token and refreshes succeed.
	PhaseActive Phase = "Active"
	// PhaseDegraded: the last refresh failed for a reason that may pass (TIDAL outage, rate
	// limit); the token in the output Secret is still valid and the operator retries.
	PhaseDegraded Phase = "Degraded"
	// PhaseExpired: refreshes kept failing until the access token expired.
	PhaseExpired Phase = "Expired"
	// PhaseReauthRequired: TIDAL rejected the refresh token; only a new login helps.
	PhaseReauthRequired Phase = "ReauthRequired"
	// PhaseSuspended: spec.suspend is true.
	PhaseSuspended Phase = "Suspended"
	// PhaseError: the session cannot be served until a person fixes its spec or Secrets.
	PhaseError Phase = "Error"
	// PhaseQuarantined: in binding mode Enforce, a consumer did not match; the output Secret
	// holds no access token until a person approves (BindingApprovalAnnotation).
	PhaseQuarantined Phase = "Quarantined"
)

// Condition types of a TidalSession.
const (
	// ConditionReady is True when the output Secret holds a valid access token that the
	// operator keeps fresh. True is good. Its reason is one of the Reason constants.
	ConditionReady = "Ready"
	// ConditionHealthy is True when the last check found that TIDAL knows the session, False
	// when TIDAL said it is gone, and Unknown when the check could not tell. True is good.
	ConditionHealthy = "Healthy"
	// ConditionBound is present while spec.binding is set: True when every current consumer
	// of the output Secret matches the binding, False when one does not or the session is
	// quarantined. True is good.
	ConditionBound = "Bound"
	// ConditionAnomaly is present while spec.binding is set: True when an anomaly rule fired
	// (a burst of new consumers, repeated violations) since the last approval. False is good.
	ConditionAnomaly = "Anomaly"
)

// Reasons of conditions. Events use the same strings as their reasons, so a person can
// match an Event to the condition it changed.
const (
	// ReasonRefreshed: TIDAL issued a new access token and the output Secret holds it.
	ReasonRefreshed = "Refreshed"
	// ReasonTokenValid: the access token in the output Secret is valid; no refresh was due.
	ReasonTokenValid = "TokenValid"
	// ReasonRefreshRetrying: a refresh failed for a reason that may pass; the operator
	// retries with backoff.
	ReasonRefreshRetrying = "RefreshRetrying"
	// ReasonTokenExpired: the access token expired while refreshes failed.
	ReasonTokenExpired = "TokenExpired"
	// ReasonReauthRequired: TIDAL rejected the refresh token (invalid_grant or a revoked
	// grant); only a new login helps.
	ReasonReauthRequired = "ReauthRequired"
	// ReasonRefreshTokenLost: TIDAL rejected the stored refresh token after the answer to an
	// earlier refresh was lost; TIDAL most likely rotated the refresh token in that answer.
	// Only a new login helps.
	ReasonRefreshTokenLost = "RefreshTokenLost"
	// ReasonHealthCheckPassed: TIDAL knows the session and accepted its token (Healthy).
	ReasonHealthCheckPassed = "HealthCheckPassed"
	// ReasonSessionGone: TIDAL no longer knows the session or its grant was revoked
	// (Healthy False; Ready False with ReauthRequired).
	ReasonSessionGone = "SessionGone"
	// ReasonHealthCheckFailed: the check failed for a reason that may pass (Healthy Unknown).
	ReasonHealthCheckFailed = "HealthCheckFailed"
	// ReasonIdentityChanged: another user, country or client is behind the session than at
	// the check before (a Warning Event; status.health.lastIdentityChangeTime; under a
	// binding also Anomaly True, and in Enforce mode a quarantine).
	ReasonIdentityChanged = "IdentityChanged"
	// ReasonClientRejected: TIDAL rejected the client id or secret (invalid_client).
	ReasonClientRejected = "ClientRejected"
	// ReasonTokenRotated: TIDAL returned a new refresh token, now stored in the
	// credentials Secret.
	ReasonTokenRotated = "TokenRotated"
	// ReasonCredentialsMissing: the credentials Secret, or a key the spec names, is absent.
	ReasonCredentialsMissing = "CredentialsMissing"
	// ReasonCredentialsInvalid: the credentials Secret holds a value that cannot be used.
	ReasonCredentialsInvalid = "CredentialsInvalid"
	// ReasonCredentialsInUse: the credentials Secret belongs to another TidalSession (see
	// CredentialsClaimAnnotation); a refresh token serves one session.
	ReasonCredentialsInUse = "CredentialsInUse"
	// ReasonOutputSecretConflict: a Secret with the output name exists and the operator
	// does not manage it; it is left untouched.
	ReasonOutputSecretConflict = "OutputSecretConflict"
	// ReasonOutputSecretCreated: the operator created (or re-created) the output Secret.
	ReasonOutputSecretCreated = "OutputSecretCreated"
	// ReasonOutputSecretMoved: spec.outputSecret.name changed and the token moved to the new
	// Secret; the old one is deleted (an Event reason only).
	ReasonOutputSecretMoved = "OutputSecretMoved"
	// ReasonInvalidSpec: the spec breaks a rule admission could not check.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSuspended: spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonClockSkew: TIDAL's clock and the operator's differ by a minute or more (an Event
	// reason only; status.clockSkewSeconds says by how much).
	ReasonClockSkew = "ClockSkew"
	// ReasonRefreshRequested: a person asked for a refresh with RefreshRequestAnnotation and
	// the operator refreshed (an Event reason only).
	ReasonRefreshRequested = "RefreshRequested"
	// ReasonRefreshRequestInvalid: RefreshRequestAnnotation holds no RFC 3339 time; the
	// request is ignored (an Event reason only).
	ReasonRefreshRequestInvalid = "RefreshRequestInvalid"
	// ReasonDeviceLoginStarted: the operator started a device login; the Event names the link
	// and the code (an Event reason only; status.deviceLogin).
	ReasonDeviceLoginStarted = "DeviceLoginStarted"
	// ReasonDeviceLoginApproved: a person approved the device login; the new refresh token is
	// stored in the credentials Secret (an Event reason only).
	ReasonDeviceLoginApproved = "DeviceLoginApproved"
	// ReasonDeviceLoginExpired: nobody approved the device login's code in time (an Event
	// reason only; status.deviceLogin.state Expired).
	ReasonDeviceLoginExpired = "DeviceLoginExpired"
	// ReasonDeviceLoginDenied: the person who opened the link refused the login (an Event
	// reason only; status.deviceLogin.state Denied).
	ReasonDeviceLoginDenied = "DeviceLoginDenied"
	// ReasonDeviceLoginFailed: TIDAL refused to start or finish the device login for a reason
	// a retry would not change (an Event reason only; status.deviceLogin.state Failed).
	ReasonDeviceLoginFailed = "DeviceLoginFailed"
	// ReasonConsumersMatch: every current consumer of the output Secret matches the binding
	// (Bound True).
	ReasonConsumersMatch = "ConsumersMatch"
	// ReasonConsumerBound: a new consumer was bound, learned on first use or allowed by
	// spec.binding.allowed (an Event reason only; status.binding.bound).
	ReasonConsumerBound = "ConsumerBound"
	// ReasonConsumerMismatch: a workload the binding does not know consumes the output Secret
	// (Bound False; a Warning Event names the pod and its fingerprint).
	ReasonConsumerMismatch = "ConsumerMismatch"
	// ReasonFingerprintChanged: a bound workload consumes the output Secret under another
	// fingerprint, e.g. another ServiceAccount (Bound False; a Warning Event).
	ReasonFingerprintChanged = "FingerprintChanged"
	// ReasonQuarantined: binding mode Enforce found a violation; the output Secret holds no
	// access token until a person approves (Ready False, Bound False, phase Quarantined).
	ReasonQuarantined = "Quarantined"
	// ReasonBindingApproved: a person approved the current consumers with
	// BindingApprovalAnnotation; a quarantine is lifted (an Event reason; Anomaly False).
	ReasonBindingApproved = "BindingApproved"
	// ReasonNoAnomaly: no anomaly rule fired since the last approval (Anomaly False).
	ReasonNoAnomaly = "NoAnomaly"
	// ReasonConsumerBurst: more new fingerprints than the operator's threshold appeared
	// within its window (Anomaly True; a Warning Event).
	ReasonConsumerBurst = "ConsumerBurst"
	// ReasonRepeatedViolations: the operator's threshold of binding violations was reached
	// within its window (Anomaly True; a Warning Event).
	ReasonRepeatedViolations = "RepeatedViolations"
	// ReasonRefreshTokenReused: TIDAL rejected a refresh token that it had issued to the
	// operator in its last answer and that nobody changed since: someone else most likely
	// used it first, or the grant was revoked (Ready False, phase ReauthRequired; Anomaly
	// True under a binding; a Warning Event).
	ReasonRefreshTokenReused = "RefreshTokenReused"
	// ReasonTokenRequestRefused: the token endpoint refused a caller that asked for the
	// session's access token (a Warning Event naming the caller, never its token).
	ReasonTokenRequestRefused = "TokenRequestRefused"
)

// RefreshRequestAnnotation on a TidalSession asks for one immediate refresh. Its value is
// the time of the request in RFC 3339, e.g.
//
//	kubectl annotate tidalsession NAME --overwrite \
//	  sessions.tidal-mcp.dev/refresh-requested-at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
//
// A refresh in a later second than the requested time satisfies it, so requests made while a
// refresh is in flight coalesce into that one. Refreshes stay at least 30 seconds apart.
const RefreshRequestAnnotation = "sessions.tidal-mcp.dev/refresh-requested-at"

// LoginRequestAnnotation on a TidalSession asks for a new device login after one expired,
// was denied or failed (status.deviceLogin.state). Any value the operator has not handled
// yet (status.lastLoginRequest) is a new request; the tools write the time of the request
// in RFC 3339, e.g.
//
//	kubectl annotate tidalsession NAME --overwrite \
//	  sessions.tidal-mcp.dev/login-requested-at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
//
// It needs spec.reauth.deviceLogin and a session in phase ReauthRequired; a request while a
// login is pending is answered by that login.
const LoginRequestAnnotation = "sessions.tidal-mcp.dev/login-requested-at"

// BindingApprovalAnnotation on a TidalSession approves its current consumers: any value the
// operator has not handled yet (status.binding.lastApproval) replaces the bound fingerprints
// with those of the pods consuming the output Secret now, clears the violations and the
// Anomaly condition, and lifts a quarantine, after which the operator writes a fresh token.
//
//	kubectl annotate tidalsession NAME --overwrite \
//	  sessions.tidal-mcp.dev/approve-binding="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
const BindingApprovalAnnotation = "sessions.tidal-mcp.dev/approve-binding"

// CredentialsClaimAnnotation on a credentials Secret holds the UID of the TidalSession that
// uses it. The operator sets it on a session's first use of the Secret and refuses the Secret
// to any other session while that one exists: otherwise anyone allowed to create a
// TidalSession, though not to read Secrets, could point one at another session's credentials
// and read the access tokens made from them in an output Secret of their own, or make both
// sessions refresh with one rotating refresh token until TIDAL revokes the login.
const CredentialsClaimAnnotation = "sessions.tidal-mcp.dev/claimed-by"
