package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TidalSessionSpec says where a session's credentials live, where its tokens go and when
// they are refreshed.
//
// +kubebuilder:validation:XValidation:rule="self.credentialsSecretRef.name != self.outputSecret.name",message="outputSecret.name must differ from credentialsSecretRef.name: the operator rewrites the output Secret on every refresh",fieldPath=".outputSecret.name"
type TidalSessionSpec struct {
	// credentialsSecretRef names the Secret, in the TidalSession's own namespace, that holds
	// the session's refresh token and the TIDAL client id (and client secret, when the client
	// has one). The operator reads it only when it refreshes and writes it back only when
	// TIDAL rotates the refresh token.
	// +required
	CredentialsSecretRef CredentialsSecretReference `json:"credentialsSecretRef"`

	// outputSecret describes the Secret the operator writes the current access token to.
	// MCP server pods mount it.
	// +required
	OutputSecret OutputSecretSpec `json:"outputSecret"`

	// refresh says when the access token is refreshed. The defaults leave room for the
	// kubelet to propagate a changed Secret to mounted volumes.
	// +optional
	Refresh RefreshPolicy `json:"refresh,omitempty"`

	// healthCheck says how often, and against which TIDAL endpoint, the operator checks
	// between refreshes that TIDAL still knows the session.
	// +optional
	// +kubebuilder:default={}
	HealthCheck HealthCheckPolicy `json:"healthCheck,omitempty"`

	// suspend stops all refreshes while true. The output Secret keeps its last token.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// reauth says what the operator may do on its own when only a new login can save the
	// session (phase ReauthRequired).
	// +optional
	Reauth ReauthPolicy `json:"reauth,omitempty"`

	// binding binds the session to the workloads allowed to consume its output Secret, and
	// says whether another consumer is only reported (Observe) or also cut off (Enforce).
	// Absent, the operator does not look at consumers. See docs/binding.md.
	// +optional
	Binding *BindingPolicy `json:"binding,omitempty"`
}

// ReauthPolicy says how a session that needs a new login gets one.
type ReauthPolicy struct {
	// deviceLogin lets the operator start TIDAL's device login when the session needs a new
	// login: status.deviceLogin then shows a link and a code for a person to approve, and the
	// refresh token TIDAL issues is stored in the credentials Secret. False by default: a
	// login that anyone can approve binds the session to whichever TIDAL account approves
	// it, so the session's owner opts in. See docs/device-login.md.
	// +optional
	DeviceLogin bool `json:"deviceLogin,omitempty"`
}

// HealthCheckEndpoint is the TIDAL endpoint a session is checked against.
// +kubebuilder:validation:Enum=Sessions;UsersMe
type HealthCheckEndpoint string

const (
	// HealthCheckSessions checks with GET /v1/sessions, as TIDAL's own clients validate a
	// stored session.
	HealthCheckSessions HealthCheckEndpoint = "Sessions"
	// HealthCheckUsersMe checks with the official API's GET /v2/users/me: tokens of
	// developer apps get 403 from /v1/sessions.
	HealthCheckUsersMe HealthCheckEndpoint = "UsersMe"
)

// HealthCheckPolicy says how a session is validated against TIDAL.
type HealthCheckPolicy struct {
	// interval is the time between checks, from 1m to 24h; "15m" by default. A refresh counts
	// as a check: the operator looks the new token's session up at TIDAL. It is written as
	// 90s, 15m or 1h30m; days ("1d") and ISO 8601 ("PT1H") are not durations the operator
	// can read.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="healthCheck.interval must be a duration such as 15m or 1h30m (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="healthCheck.interval must be between 1m and 24h"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// endpoint is Sessions (GET /v1/sessions, the default) or UsersMe (GET /v2/users/me of
	// the official API, for sessions of developer apps).
	// +optional
	// +kubebuilder:default=Sessions
	Endpoint HealthCheckEndpoint `json:"endpoint,omitempty"`
}

// CredentialsSecretReference names a Secret of the TidalSession's namespace and the keys
// of its data that hold the session's credentials.
//
// refreshTokenKey must differ from the other two keys: the operator writes a rotated refresh
// token under it, which would overwrite the client id or secret sharing its key. The client
// id and secret keys may coincide: the operator only reads them, so nothing is lost, and
// TIDAL's answer to the refresh says what is wrong.
//
// refreshTokenKey is the one place where the operator stores data nobody else holds: after
// TIDAL rotates the refresh token, the only valid copy is under that key. Changing the key
// while the Secret stays the same would leave that token behind and make the operator send
// whatever older token the new key holds, which TIDAL may treat as reuse and revoke the
// grant. So the key may change only together with name: pointing the session at another
// Secret hands it a login of its own and strands nothing in the Secret it reads. name alone
// stays mutable for the same reason: that is how a person hands a session a new login.
// Both sides of the transition rule always exist (the reference is required and the key is
// defaulted), so a plain oldSelf rule is enough; optionalOldSelf would only add the create
// case, where there is nothing to compare.
//
// +kubebuilder:validation:XValidation:rule="self.refreshTokenKey != self.clientIDKey",message="credentialsSecretRef.refreshTokenKey and clientIDKey must name different keys: rotated refresh tokens are written under refreshTokenKey",fieldPath=".refreshTokenKey"
// +kubebuilder:validation:XValidation:rule="!has(self.sessionFileKey) || self.sessionFileKey != self.refreshTokenKey",message="credentialsSecretRef.sessionFileKey and refreshTokenKey must name different keys: rotated refresh tokens are written under refreshTokenKey, and the session file is never changed",fieldPath=".sessionFileKey"
// +kubebuilder:validation:XValidation:rule="self.refreshTokenKey != self.clientSecretKey",message="credentialsSecretRef.refreshTokenKey and clientSecretKey must name different keys: rotated refresh tokens are written under refreshTokenKey",fieldPath=".refreshTokenKey"
// +kubebuilder:validation:XValidation:rule="self.name != oldSelf.name || self.refreshTokenKey == oldSelf.refreshTokenKey",message="credentialsSecretRef.refreshTokenKey cannot change while credentialsSecretRef.name stays the same: the operator stores rotated refresh tokens under it; copy the Secret with the new key and change both",fieldPath=".refreshTokenKey"
type CredentialsSecretReference struct {
	// name is the Secret's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// refreshTokenKey is the data key of the refresh token.
	// +optional
	// +kubebuilder:default=refresh_token
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="credentialsSecretRef.refreshTokenKey must not be '.' or '..', which are not Secret data keys"
	RefreshTokenKey string `json:"refreshTokenKey,omitempty"`

	// clientIDKey is the data key of the TIDAL client id.
	// +optional
	// +kubebuilder:default=client_id
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="credentialsSecretRef.clientIDKey must not be '.' or '..', which are not Secret data keys"
	ClientIDKey string `json:"clientIDKey,omitempty"`

	// clientSecretKey is the data key of the TIDAL client secret. A missing key means the
	// client has no secret, as TIDAL's public device-login clients do not.
	// +optional
	// +kubebuilder:default=client_secret
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="credentialsSecretRef.clientSecretKey must not be '.' or '..', which are not Secret data keys"
	ClientSecretKey string `json:"clientSecretKey,omitempty"`

	// sessionFileKey names a data key holding a session file of the kind TIDAL consumers keep
	// today (tidalapi's session file, tidal-dl-ng's token.json, or the flat JSON of MCP
	// servers), for adopting such a session without a new login: while the Secret has no
	// refreshTokenKey, the operator reads the refresh token, and the client id when the file
	// names one, from that file. A refresh token TIDAL rotates is stored under
	// refreshTokenKey, which wins from then on. The file itself is never changed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="credentialsSecretRef.sessionFileKey must not be '.' or '..', which are not Secret data keys"
	SessionFileKey string `json:"sessionFileKey,omitempty"`
}

// OutputSecretSpec describes the Secret that receives the session's access token.
type OutputSecretSpec struct {
	// name is the output Secret's name, in the TidalSession's namespace. The operator
	// creates and owns it, and never overwrites a Secret of that name that it does not
	// manage.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// RefreshPolicy says how long before its expiry an access token is refreshed. At most one
// of beforeExpiry and beforeExpiryPercent is set; with neither, a quarter of the token's
// lifetime is used. Whatever is chosen, the operator refreshes at least two minutes before
// expiry (room for Secret propagation) and no earlier than half-way through the lifetime.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.beforeExpiry) && has(self.beforeExpiryPercent))",message="set at most one of refresh.beforeExpiry and refresh.beforeExpiryPercent"
type RefreshPolicy struct {
	// beforeExpiry refreshes this long before the access token expires, from more than 0s
	// to 24h, written as 30m or 1h30m. TIDAL's tokens live 4 hours to 7 days, and the
	// operator never refreshes before half the lifetime has passed, so a longer lead could
	// only ever be cut back; beforeExpiryPercent scales with the lifetime instead.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="refresh.beforeExpiry must be a duration such as 30m or 1h30m (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) > duration('0s')",message="refresh.beforeExpiry must be a positive duration such as 30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) <= duration('24h')",message="refresh.beforeExpiry must be at most 24h; beforeExpiryPercent suits longer-lived tokens"
	BeforeExpiry *metav1.Duration `json:"beforeExpiry,omitempty"`

	// beforeExpiryPercent refreshes when this share of the token's lifetime remains, from 1
	// to 50: past half the lifetime the operator's own lower bound on refresh time wins.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	BeforeExpiryPercent *int32 `json:"beforeExpiryPercent,omitempty"`
}

// TidalSessionStatus is what the operator last observed and did.
type TidalSessionStatus struct {
	// phase summarises the session's state for people; conditions carry the detail.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// observedGeneration is the spec generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the session's state; see the ConditionType constants.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// accessTokenExpiresAt is when the access token in the output Secret expires.
	// +optional
	AccessTokenExpiresAt *metav1.Time `json:"accessTokenExpiresAt,omitempty"`

	// lastRefreshTime is when TIDAL's answer to the last successful refresh arrived.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`

	// clockSkewSeconds is how far TIDAL's clock (the Date header of its last token answer)
	// was ahead of the operator's (negative: behind), when that was a minute or more; 0
	// otherwise. Expiry is always computed by the operator's own clock.
	// +optional
	ClockSkewSeconds int64 `json:"clockSkewSeconds,omitempty"`

	// lastRefreshRequest is the value of the refresh-requested-at annotation the operator
	// last handled, by refreshing or by finding it already satisfied or invalid.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastRefreshRequest string `json:"lastRefreshRequest,omitempty"`

	// nextRefreshTime is when the operator will refresh next.
	// +optional
	NextRefreshTime *metav1.Time `json:"nextRefreshTime,omitempty"`

	// refreshCount counts successful refreshes since the session was created.
	// +optional
	RefreshCount int64 `json:"refreshCount,omitempty"`

	// consecutiveFailures counts failed refresh attempts since the last success.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`

	// refreshStartedAt is set just before the operator asks TIDAL for a token and cleared once
	// TIDAL's answer is recorded. Still set when the next attempt starts, it means the answer
	// to a request was lost (the operator stopped, or the connection broke after the request
	// was sent), and with it perhaps a refresh token TIDAL rotated.
	// +optional
	RefreshStartedAt *metav1.Time `json:"refreshStartedAt,omitempty"`

	// userID is the TIDAL user the session belongs to.
	// +optional
	UserID string `json:"userID,omitempty"`

	// countryCode is the TIDAL country of the session.
	// +optional
	CountryCode string `json:"countryCode,omitempty"`

	// clientID is the TIDAL client the session belongs to, as TIDAL's session endpoint
	// reports it. It is never copied from the credentials Secret, whose keys the spec chooses.
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// health is what the last check of the session against TIDAL found.
	// +optional
	Health *SessionHealth `json:"health,omitempty"`

	// credentialsVersion is the resourceVersion of the credentials Secret last used. After
	// TIDAL rejected a refresh token, the operator tries again once this changes.
	// +optional
	CredentialsVersion string `json:"credentialsVersion,omitempty"`

	// issuedTokenVersion is the resourceVersion the credentials Secret got when the operator
	// last stored a refresh token TIDAL issued to it (rotated in a refresh, or from a device
	// login). While the Secret keeps that version only the operator should hold its refresh
	// token, so TIDAL rejecting it is reported as RefreshTokenReused, a possible theft.
	// +optional
	IssuedTokenVersion string `json:"issuedTokenVersion,omitempty"`

	// outputSecretName is the output Secret the operator last wrote.
	// +optional
	OutputSecretName string `json:"outputSecretName,omitempty"`

	// deviceLogin is the device login the operator runs for the session, present from its
	// start while the session needs a new login (spec.reauth.deviceLogin) and removed once it
	// succeeds or the session no longer needs it.
	// +optional
	DeviceLogin *DeviceLoginStatus `json:"deviceLogin,omitempty"`

	// lastLoginRequest is the value of the login-requested-at annotation the operator last
	// handled, by starting a device login or by finding one running.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastLoginRequest string `json:"lastLoginRequest,omitempty"`

	// binding is what the operator knows about the consumers of the output Secret, present
	// while spec.binding is set.
	// +optional
	Binding *BindingStatus `json:"binding,omitempty"`
}

// DeviceLoginState is where a device login stands.
// +kubebuilder:validation:Enum=Pending;Expired;Denied;Failed
type DeviceLoginState string

const (
	// DeviceLoginPending: the code waits for a person to approve it; the operator polls TIDAL.
	DeviceLoginPending DeviceLoginState = "Pending"
	// DeviceLoginExpired: nobody approved the code in time. A new attempt needs a request
	// (LoginRequestAnnotation).
	DeviceLoginExpired DeviceLoginState = "Expired"
	// DeviceLoginDenied: the person who opened the link refused. A new attempt needs a
	// request (LoginRequestAnnotation).
	DeviceLoginDenied DeviceLoginState = "Denied"
	// DeviceLoginFailed: TIDAL refused to start or finish the login for a reason a retry
	// would not change (the client is rejected, the code unknown). A new attempt needs a
	// request (LoginRequestAnnotation).
	DeviceLoginFailed DeviceLoginState = "Failed"
)

// DeviceLoginStatus is what a person needs to approve a device login. It never holds the
// device code: whoever holds that code can finish the login and receive the refresh token,
// and status is readable by everyone who may read the TidalSession.
type DeviceLoginStatus struct {
	// state is where the login stands.
	// +required
	State DeviceLoginState `json:"state"`

	// verificationURI is the link to open, with a scheme; it includes the user code when TIDAL
	// offers such a link.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	VerificationURI string `json:"verificationURI,omitempty"`

	// userCode is the code to enter at verificationURI. It is useless without the device
	// code, which only the operator holds.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	UserCode string `json:"userCode,omitempty"`

	// startedAt is when TIDAL handed out the code.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// expiresAt is when the code stops working.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// message says in words what happened last, e.g. why the login stopped.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// HealthResult is the outcome of a session check against TIDAL.
// +kubebuilder:validation:Enum=Healthy;Unhealthy;Unknown
type HealthResult string

const (
	// HealthHealthy: TIDAL knows the session and accepted its token.
	HealthHealthy HealthResult = "Healthy"
	// HealthUnhealthy: TIDAL said the session or its grant is gone.
	HealthUnhealthy HealthResult = "Unhealthy"
	// HealthUnknown: the check failed for a reason that may pass (TIDAL unreachable, 5xx).
	HealthUnknown HealthResult = "Unknown"
)

// SessionHealth is what the last check of a session against TIDAL found. User id, country
// and client id are in the status itself.
type SessionHealth struct {
	// result of the last check.
	// +optional
	Result HealthResult `json:"result,omitempty"`

	// lastCheckTime is when the last check's answer arrived.
	// +optional
	LastCheckTime *metav1.Time `json:"lastCheckTime,omitempty"`

	// lastHealthyTime is when a check last found the session healthy.
	// +optional
	LastHealthyTime *metav1.Time `json:"lastHealthyTime,omitempty"`

	// sessionID is TIDAL's id of the session.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	SessionID string `json:"sessionID,omitempty"`

	// clientName is the name TIDAL gives the session's client.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ClientName string `json:"clientName,omitempty"`

	// lastIdentityChangeTime is when a check last found another user, country or client
	// behind the session than the check before; a Warning Event names the change.
	// +optional
	LastIdentityChangeTime *metav1.Time `json:"lastIdentityChangeTime,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters: the output Secret carries it as a label value"
// +kubebuilder:resource:shortName=ts;tidal,categories=tidal
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.status.userID`
// Expiry and next refresh are future times: kubectl prints a date column as an age, and a
// future one as "<invalid>", so they are shown as RFC 3339 strings instead.
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.accessTokenExpiresAt`
// +kubebuilder:printcolumn:name="Last Check",type=date,JSONPath=`.status.health.lastCheckTime`
// +kubebuilder:printcolumn:name="Next Refresh",type=string,JSONPath=`.status.nextRefreshTime`,priority=1
// +kubebuilder:printcolumn:name="Refreshes",type=integer,JSONPath=`.status.refreshCount`,priority=1
// +kubebuilder:printcolumn:name="Country",type=string,JSONPath=`.status.countryCode`,priority=1
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.outputSecret.name`,priority=1
// +kubebuilder:printcolumn:name="Bound",type=string,JSONPath=`.status.conditions[?(@.type=="Bound")].status`,priority=1
// +kubebuilder:printcolumn:name="Login",type=string,JSONPath=`.status.deviceLogin.state`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// TidalSession is one user's TIDAL OAuth session, kept fresh by the operator.
type TidalSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired session.
	// +required
	Spec TidalSessionSpec `json:"spec"`

	// status is the observed session.
	// +optional
	Status TidalSessionStatus `json:"status,omitempty"`
}

// TidalSessionList is a list of TidalSessions.
//
// +kubebuilder:object:root=true
type TidalSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TidalSession `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TidalSession{}, &TidalSessionList{})
}
