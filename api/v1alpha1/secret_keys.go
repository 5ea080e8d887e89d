package v1alpha1

// Labels and keys of the output Secret. They are part of the API: MCP servers read the
// keys, and the operator selects the Secrets it manages by the label.
const (
	// ManagedByLabel marks the Secrets the operator writes. The operator's cache holds only
	// Secrets with this label set to ManagedByValue.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel on Secrets the operator writes.
	ManagedByValue = "tidal-session-operator"
	// SessionLabel names the TidalSession an output Secret belongs to.
	SessionLabel = "sessions.tidal-mcp.dev/session"

	// KeyAccessToken holds the current access token.
	KeyAccessToken = "access_token"
	// KeyTokenType holds the token type, "Bearer".
	KeyTokenType = "token_type"
	// KeyExpiresAt holds the access token's expiry in RFC 3339, UTC.
	KeyExpiresAt = "expires_at"
	// KeyUserID holds the TIDAL user id.
	KeyUserID = "user_id"
	// KeyCountryCode holds the session's TIDAL country code.
	KeyCountryCode = "country_code"
	// KeySessionID holds TIDAL's session id, when known.
	KeySessionID = "session_id"
	// KeyTokenStatus is TokenStatusValid when the operator wrote the token, and
	// TokenStatusExpired once the operator found it expired while refreshes kept failing, or
	// TokenStatusQuarantined while the session is quarantined: consumers never mistake an
	// expired or withheld token for a good one.
	KeyTokenStatus = "token_status"
	// TokenStatusValid and TokenStatusExpired are the values of KeyTokenStatus.
	TokenStatusValid   = "valid"
	TokenStatusExpired = "expired"
	// TokenStatusQuarantined is KeyTokenStatus while the session is quarantined (binding mode
	// Enforce): the keys stay, but access_token and session.json are empty until a person
	// approves the consumers.
	TokenStatusQuarantined = "quarantined"
	// KeySessionFile holds the session in the file format tidalapi's
	// load_session_from_file reads, so tidalapi-based MCP servers load it as they are.
	KeySessionFile = "session.json"
)
