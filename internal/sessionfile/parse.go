package sessionfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Format names a session file layout that Parse recognises.
type Format string

const (
	// FormatTidalapi is tidalapi's save_session_to_file: every value wrapped in {"data": ...}.
	FormatTidalapi Format = "tidalapi"
	// FormatTidalDLNG is tidal-dl-ng's token.json: flat token_type, access_token,
	// refresh_token and expiry_time (Unix seconds).
	FormatTidalDLNG Format = "tidal-dl-ng"
	// FormatFlat is the flat JSON several MCP servers keep: access_token, refresh_token,
	// expires_at, user_id, country_code, session_id, sometimes client_id.
	FormatFlat Format = "flat"
)

// Limits on what Parse accepts. A session file is a few hundred bytes; anything far larger
// is not one, and reading it whole would let a stray path (a log, a disk image) use memory.
const (
	// MaxFileSize is the largest input Parse and Read accept.
	MaxFileSize = 64 << 10
	// maxTokenLength bounds a token: TIDAL's JWTs are around 1 KiB.
	maxTokenLength = 16 << 10
	maxIDLength    = 128
)

// Session is what a session file says about a TIDAL login. Its String and GoString mask the
// tokens, so printing a Session by mistake leaks nothing.
type Session struct {
	// Format is the layout the file was recognised as.
	Format Format
	// RefreshToken is never empty: a file without one cannot be adopted.
	RefreshToken string
	// AccessToken is empty when the file holds none.
	AccessToken string
	// Expiry is the access token's expiry, in UTC; zero when the file does not say.
	Expiry time.Time
	// ClientID is the TIDAL client the tokens were issued to, when the file names it.
	ClientID string
	// UserID is the TIDAL user id (digits), when the file names it.
	UserID string
}

// String describes s without its tokens.
func (s Session) String() string {
	expiry := "unknown"
	if !s.Expiry.IsZero() {
		expiry = s.Expiry.Format(time.RFC3339)
	}
	return fmt.Sprintf("%s session file (refresh token set, access token set: %t, expiry %s, client %q, user %q)",
		s.Format, s.AccessToken != "", expiry, s.ClientID, s.UserID)
}

// GoString keeps %#v from printing the tokens.
func (s Session) GoString() string { return "sessionfile.Session{" + s.String() + "}" }

// ParseError says what is wrong with a session file. It names the format and the field,
// never a value read from the file.
type ParseError struct {
	// Format is the layout the file was recognised as; empty when it was not recognised.
	Format Format
	// Field is the JSON key at fault; empty when the problem is the file as a whole.
	Field string
	// Problem is a fixed description.
	Problem string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("failed to read session file")
	if e.Format != "" {
		b.WriteString(" as " + string(e.Format))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Read parses a session file from r, reading at most MaxFileSize bytes.
func Read(r io.Reader) (Session, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		// The reader's error concerns the file, not its content.
		return Session{}, fmt.Errorf("failed to read session file: %w", err)
	}
	return Parse(data)
}

// Parse recognises data as one of the formats TIDAL consumers write (tidalapi's session
// file, tidal-dl-ng's token file, the flat JSON of MCP servers) and returns its session.
// Errors are *ParseError and carry no byte of data.
func Parse(data []byte) (Session, error) {
	if len(data) > MaxFileSize {
		return Session{}, &ParseError{Problem: fmt.Sprintf("larger than %d bytes: not a session file", MaxFileSize)}
	}
	// Editors on some systems start a UTF-8 file with a byte order mark.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))

	var top map[string]json.RawMessage
	// The decoder's own error text quotes the offending input, so only its offset is kept.
	if err := json.Unmarshal(data, &top); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return Session{}, &ParseError{Problem: fmt.Sprintf("not valid JSON (syntax error at byte %d)", syntax.Offset)}
		}
		return Session{}, &ParseError{Problem: "not a JSON object"}
	}
	if top == nil {
		return Session{}, &ParseError{Problem: "not a JSON object"}
	}

	switch detect(top) {
	case FormatTidalapi:
		return parseTidalapi(top)
	case FormatTidalDLNG:
		return parseFlat(FormatTidalDLNG, top)
	case FormatFlat:
		return parseFlat(FormatFlat, top)
	default:
		return Session{}, &ParseError{Problem: "no refresh_token or access_token: not a tidalapi session file, " +
			"tidal-dl-ng token file or flat session JSON"}
	}
}

// detect picks the format from the keys and the shape of their values. tidalapi wraps every
// value in an object; tidal-dl-ng alone calls the expiry expiry_time at top level.
func detect(top map[string]json.RawMessage) Format {
	for _, key := range []string{"access_token", "refresh_token", "token_type", "expiry_time", "session_id", "is_pkce"} {
		if v, ok := top[key]; ok && kindOf(v) == '{' {
			return FormatTidalapi
		}
	}
	_, hasRefresh := top["refresh_token"]
	_, hasAccess := top["access_token"]
	if !hasRefresh && !hasAccess {
		return ""
	}
	if _, ok := top["expiry_time"]; ok {
		if _, alsoFlat := top["expires_at"]; !alsoFlat {
			return FormatTidalDLNG
		}
	}
	return FormatFlat
}

func parseTidalapi(top map[string]json.RawMessage) (Session, error) {
	f := FormatTidalapi
	values := make(map[string]json.RawMessage, len(top))
	for _, key := range []string{"access_token", "refresh_token", "expiry_time", "token_type"} {
		raw, ok := top[key]
		if !ok {
			continue
		}
		if kindOf(raw) != '{' {
			return Session{}, &ParseError{Format: f, Field: key,
				Problem: `is not wrapped as {"data": ...} like the other fields`}
		}
		var w map[string]json.RawMessage
		if err := json.Unmarshal(raw, &w); err != nil {
			return Session{}, &ParseError{Format: f, Field: key, Problem: "is not a JSON object"}
		}
		data, ok := w["data"]
		if !ok {
			return Session{}, &ParseError{Format: f, Field: key, Problem: `has no "data" key`}
		}
		values[key] = data
	}

	s := Session{Format: f}
	var err error
	if s.RefreshToken, err = token(f, "refresh_token", values["refresh_token"], true); err != nil {
		return Session{}, err
	}
	if s.AccessToken, err = token(f, "access_token", values["access_token"], false); err != nil {
		return Session{}, err
	}
	if s.Expiry, err = expiry(f, "expiry_time", values["expiry_time"]); err != nil {
		return Session{}, err
	}
	return s, nil
}

// parseFlat reads the two flat layouts; they differ in the name of the expiry key.
func parseFlat(f Format, top map[string]json.RawMessage) (Session, error) {
	s := Session{Format: f}
	var err error
	if s.RefreshToken, err = token(f, "refresh_token", top["refresh_token"], true); err != nil {
		return Session{}, err
	}
	if s.AccessToken, err = token(f, "access_token", top["access_token"], false); err != nil {
		return Session{}, err
	}
	expiryKey := "expires_at"
	if f == FormatTidalDLNG {
		expiryKey = "expiry_time"
	}
	if s.Expiry, err = expiry(f, expiryKey, top[expiryKey]); err != nil {
		return Session{}, err
	}
	if s.ClientID, err = clientID(f, top["client_id"]); err != nil {
		return Session{}, err
	}
	if s.UserID, err = userID(f, top["user_id"]); err != nil {
		return Session{}, err
	}
	return s, nil
}

// kindOf returns the first byte of a JSON value ('{', '[', '"', 'n', 't', 'f', or a digit
// or '-' for numbers), or 0 when the value is absent.
func kindOf(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
		return '0'
	}
	return raw[0]
}

// stringValue decodes a JSON string; absent and null give ok=false.
func stringValue(f Format, key string, raw json.RawMessage) (string, bool, error) {
	switch kindOf(raw) {
	case 0, 'n':
		return "", false, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, &ParseError{Format: f, Field: key, Problem: "is not a valid JSON string"}
		}
		return s, true, nil
	default:
		return "", false, &ParseError{Format: f, Field: key, Problem: "is not a string"}
	}
}

// token reads a token: printable ASCII without spaces, as OAuth tokens are.
func token(f Format, key string, raw json.RawMessage, required bool) (string, error) {
	v, ok, err := stringValue(f, key, raw)
	if err != nil {
		return "", err
	}
	if !ok || v == "" {
		if required {
			problem := "is missing"
			if kindOf(raw) == 'n' {
				problem = "is null"
			}
			if ok {
				problem = "is empty"
			}
			// The operator's own session.json has no refresh token; say so, since it is the
			// file a person is most likely to try.
			return "", &ParseError{Format: f, Field: key, Problem: problem +
				": a session without a refresh token cannot be kept alive (the operator's own session.json never holds one)"}
		}
		return "", nil
	}
	if len(v) > maxTokenLength {
		return "", &ParseError{Format: f, Field: key, Problem: fmt.Sprintf("is longer than %d bytes", maxTokenLength)}
	}
	if !printableNoSpace(v) {
		return "", &ParseError{Format: f, Field: key,
			Problem: "has characters a token cannot have (spaces, control or non-ASCII characters)"}
	}
	return v, nil
}

func printableNoSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// clientID reads a TIDAL client id: letters, digits, '-', '_' and '.'.
func clientID(f Format, raw json.RawMessage) (string, error) {
	v, ok, err := stringValue(f, "client_id", raw)
	if err != nil || !ok || v == "" {
		return "", err
	}
	if len(v) > maxIDLength || !isIdentifier(v) {
		return "", &ParseError{Format: f, Field: "client_id", Problem: fmt.Sprintf(
			"is not a client id (at most %d letters, digits, '-', '_' or '.')", maxIDLength)}
	}
	return v, nil
}

func isIdentifier(s string) bool {
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// userID reads TIDAL's numeric user id, written as a number or as a string of digits.
func userID(f Format, raw json.RawMessage) (string, error) {
	const problem = "is not a TIDAL user id (a positive whole number)"
	var v string
	switch kindOf(raw) {
	case 0, 'n':
		return "", nil
	case '0':
		v = string(bytes.TrimSpace(raw))
	case '"':
		s, _, err := stringValue(f, "user_id", raw)
		if err != nil {
			return "", err
		}
		if s == "" {
			return "", nil
		}
		v = s
	default:
		return "", &ParseError{Format: f, Field: "user_id", Problem: problem}
	}
	// 19 digits: TIDAL user ids are 64-bit integers.
	if len(v) > 19 || !allDigits(v) || v[0] == '0' {
		return "", &ParseError{Format: f, Field: "user_id", Problem: problem}
	}
	return v, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Bounds of a plausible expiry: anything outside is a unit mix-up, not a time.
var (
	minExpiry = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxExpiry = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// millisThreshold separates Unix seconds from Unix milliseconds: as seconds it is the year
// 5138, as milliseconds 2001. JavaScript clients store Date.now(), in milliseconds.
const millisThreshold = 1e11

// expiryLayouts are the textual times seen in session files: RFC 3339, and Python's str()
// and isoformat() of a naive datetime, which tidalapi means as UTC.
var expiryLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

// expiry reads an expiry written as Unix seconds or milliseconds (number or string of
// digits) or as a time string. Absent, null and 0 mean unknown.
func expiry(f Format, key string, raw json.RawMessage) (time.Time, error) {
	outOfRange := &ParseError{Format: f, Field: key, Problem: "is not a time between 2000 and 2200"}
	var text string
	switch kindOf(raw) {
	case 0, 'n':
		return time.Time{}, nil
	case '0':
		text = string(bytes.TrimSpace(raw))
	case '"':
		s, _, err := stringValue(f, key, raw)
		if err != nil {
			return time.Time{}, err
		}
		text = strings.TrimSpace(s)
		if text == "" {
			return time.Time{}, nil
		}
	default:
		return time.Time{}, &ParseError{Format: f, Field: key, Problem: "is neither a number nor a time string"}
	}

	if n, err := strconv.ParseFloat(text, 64); err == nil {
		if n == 0 {
			return time.Time{}, nil
		}
		if math.IsNaN(n) || math.IsInf(n, 0) || n < 0 {
			return time.Time{}, outOfRange
		}
		if n >= millisThreshold {
			n /= 1000
		}
		if n > float64(maxExpiry.Unix()) {
			return time.Time{}, outOfRange
		}
		sec, frac := math.Modf(n)
		t := time.Unix(int64(sec), int64(frac*1e9)).UTC()
		if t.Before(minExpiry) {
			return time.Time{}, outOfRange
		}
		return t, nil
	}
	for _, layout := range expiryLayouts {
		t, err := time.Parse(layout, text)
		if err != nil {
			continue
		}
		t = t.UTC()
		if t.Before(minExpiry) || t.After(maxExpiry) {
			return time.Time{}, outOfRange
		}
		return t, nil
	}
	return time.Time{}, &ParseError{Format: f, Field: key, Problem: "is not Unix seconds, RFC 3339 or a Python datetime"}
}
