package sessionfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Canary values: no error message or printed Session may contain any of them, nor the
// marker they share.
const (
	canaryRefresh = "CANARY-REFRESH-7f3a9c.eyJhbGciOi"
	canaryAccess  = "CANARY-ACCESS-2b8e4d.eyJ1aWQiOj"
	canaryMarker  = "CANARY"
)

// canaryFragments are the parts of the canaries a careless error could quote.
var canaryFragments = []string{canaryMarker, "7f3a9c", "2b8e4d", "eyJhbGciOi", "eyJ1aWQiOj", "98765432109876"}

func assertNoCanary(t *testing.T, what, s string) {
	t.Helper()
	for _, c := range canaryFragments {
		if strings.Contains(s, c) {
			t.Errorf("%s contains canary fragment %q", what, c)
		}
	}
}

func TestParse(t *testing.T) {
	tidalapiFile, err := Tidalapi{
		TokenType: "Bearer", SessionID: "0b1d7c9e-1f2a-4c3b-8d4e-5f6a7b8c9d0e", AccessToken: canaryAccess,
		RefreshToken: canaryRefresh, ExpiryTime: time.Date(2026, 12, 4, 13, 5, 6, 0, time.UTC),
	}.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		in   string
		want Session
	}{{
		name: "tidalapi, as this package writes it",
		in:   string(tidalapiFile),
		want: Session{Format: FormatTidalapi, RefreshToken: canaryRefresh, AccessToken: canaryAccess,
			Expiry: time.Date(2026, 12, 4, 13, 5, 6, 0, time.UTC)},
	}, {
		name: "tidalapi without expiry_time, as older versions write it",
		in: `{"token_type": {"data": "Bearer"}, "session_id": {"data": "s"}, "access_token": {"data": "` + canaryAccess +
			`"}, "refresh_token": {"data": "` + canaryRefresh + `"}, "is_pkce": {"data": true}}`,
		want: Session{Format: FormatTidalapi, RefreshToken: canaryRefresh, AccessToken: canaryAccess},
	}, {
		name: "tidalapi with a Python str() expiry without microseconds",
		in:   `{"refresh_token": {"data": "` + canaryRefresh + `"}, "expiry_time": {"data": "2026-12-04 13:05:06"}}`,
		want: Session{Format: FormatTidalapi, RefreshToken: canaryRefresh, Expiry: time.Date(2026, 12, 4, 13, 5, 6, 0, time.UTC)},
	}, {
		name: "tidalapi with an aware isoformat expiry",
		in:   `{"refresh_token": {"data": "` + canaryRefresh + `"}, "expiry_time": {"data": "2026-12-04T14:05:06.500000+01:00"}}`,
		want: Session{Format: FormatTidalapi, RefreshToken: canaryRefresh,
			Expiry: time.Date(2026, 12, 4, 13, 5, 6, 500_000_000, time.UTC)},
	}, {
		name: "tidal-dl-ng token.json with a fractional Unix expiry",
		in: `{"token_type": "Bearer", "access_token": "` + canaryAccess + `", "refresh_token": "` + canaryRefresh +
			`", "expiry_time": 1796389506.25}`,
		want: Session{Format: FormatTidalDLNG, RefreshToken: canaryRefresh, AccessToken: canaryAccess,
			Expiry: time.Date(2026, 12, 4, 13, 5, 6, 250_000_000, time.UTC)},
	}, {
		name: "tidal-dl-ng token.json before its first login finished (expiry 0)",
		in:   `{"token_type": null, "access_token": null, "refresh_token": "` + canaryRefresh + `", "expiry_time": 0.0}`,
		want: Session{Format: FormatTidalDLNG, RefreshToken: canaryRefresh},
	}, {
		name: "flat MCP JSON with Unix seconds and a numeric user id",
		in: `{"access_token": "` + canaryAccess + `", "refresh_token": "` + canaryRefresh +
			`", "user_id": 4711, "expires_at": 1796389506, "country_code": "NO", "session_id": "s-1", "client_id": "exampleClientId1"}`,
		want: Session{Format: FormatFlat, RefreshToken: canaryRefresh, AccessToken: canaryAccess, UserID: "4711",
			ClientID: "exampleClientId1", Expiry: time.Date(2026, 12, 4, 13, 5, 6, 0, time.UTC)},
	}, {
		name: "flat MCP JSON with RFC 3339 and a string user id",
		in:   `{"refresh_token": "` + canaryRefresh + `", "user_id": "4711", "expires_at": "2026-12-04T13:05:06Z"}`,
		want: Session{Format: FormatFlat, RefreshToken: canaryRefresh, UserID: "4711",
			Expiry: time.Date(2026, 12, 4, 13, 5, 6, 0, time.UTC)},
	}, {
		name: "flat MCP JSON with JavaScript milliseconds",
		in:   `{"refresh_token": "` + canaryRefresh + `", "expires_at": 1796389506000}`,
		want: Session{Format: FormatFlat, RefreshToken: canaryRefresh, Expiry: time.Date(2026, 12, 4, 13, 5, 6, 0, time.UTC)},
	}, {
		name: "flat MCP JSON with a naive isoformat expiry, read as UTC",
		in:   `{"refresh_token": "` + canaryRefresh + `", "expires_at": "2026-12-04T13:05:06.000001"}`,
		want: Session{Format: FormatFlat, RefreshToken: canaryRefresh, Expiry: time.Date(2026, 12, 4, 13, 5, 6, 1000, time.UTC)},
	}, {
		name: "flat with a byte order mark and unknown keys",
		in:   "\xef\xbb\xbf" + `{"refresh_token": "` + canaryRefresh + `", "scope": "r_usr w_usr", "extra": {"x": [1, 2]}}`,
		want: Session{Format: FormatFlat, RefreshToken: canaryRefresh},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			// Compared field by field: a failure message names the field, not the tokens.
			if got.Format != tc.want.Format {
				t.Errorf("Format = %q, want %q", got.Format, tc.want.Format)
			}
			if got.RefreshToken != tc.want.RefreshToken {
				t.Error("RefreshToken differs")
			}
			if got.AccessToken != tc.want.AccessToken {
				t.Error("AccessToken differs")
			}
			if !got.Expiry.Equal(tc.want.Expiry) || got.Expiry.Location() != time.UTC {
				t.Errorf("Expiry = %v, want %v in UTC", got.Expiry, tc.want.Expiry)
			}
			if got.ClientID != tc.want.ClientID {
				t.Errorf("ClientID = %q, want %q", got.ClientID, tc.want.ClientID)
			}
			if got.UserID != tc.want.UserID {
				t.Errorf("UserID = %q, want %q", got.UserID, tc.want.UserID)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	ownOutput, err := Tidalapi{TokenType: "Bearer", AccessToken: canaryAccess}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const numberCanary = "98765432109876543210"
	tests := []struct {
		name   string
		in     string
		format Format
		field  string
		want   string
	}{
		{"empty", ``, "", "", "not valid JSON"},
		{"truncated", `{"refresh_token": "` + canaryRefresh, "", "", "not valid JSON"},
		{"canary as a bare word", `{"refresh_token": ` + canaryRefresh + `}`, "", "", "syntax error at byte 19"},
		{"canary outside any JSON", canaryRefresh, "", "", "not valid JSON"},
		{"canary after the object", `{"refresh_token": "x"} ` + canaryRefresh, "", "", "not valid JSON"},
		{"array", `["` + canaryRefresh + `"]`, "", "", "not a JSON object"},
		{"null", `null`, "", "", "not a JSON object"},
		{"string", `"` + canaryRefresh + `"`, "", "", "not a JSON object"},
		{"no token keys", `{"` + canaryRefresh + `": "` + canaryAccess + `"}`, "", "", "no refresh_token or access_token"},
		{"operator's own session.json", string(ownOutput), FormatTidalapi, "refresh_token", "is null"},
		{"tidalapi with one value not wrapped", `{"access_token": {"data": "` + canaryAccess +
			`"}, "refresh_token": "` + canaryRefresh + `"}`, FormatTidalapi, "refresh_token", "not wrapped"},
		{"tidalapi without data", `{"refresh_token": {"value": "` + canaryRefresh + `"}}`, FormatTidalapi, "refresh_token", `no "data" key`},
		{"tidalapi refresh token a number", `{"refresh_token": {"data": ` + numberCanary + `}}`,
			FormatTidalapi, "refresh_token", "is not a string"},
		{"tidalapi expiry garbage", `{"refresh_token": {"data": "r"}, "expiry_time": {"data": "` + canaryAccess + `"}}`,
			FormatTidalapi, "expiry_time", "is not Unix seconds, RFC 3339 or a Python datetime"},
		{"tidal-dl-ng expiry a bool", `{"refresh_token": "r", "expiry_time": true}`,
			FormatTidalDLNG, "expiry_time", "neither a number"},
		{"tidal-dl-ng expiry negative", `{"refresh_token": "r", "expiry_time": -` + numberCanary + `}`,
			FormatTidalDLNG, "expiry_time", "between 2000 and 2200"},
		{"tidal-dl-ng refresh token empty", `{"refresh_token": "", "access_token": "` + canaryAccess + `", "expiry_time": 1}`,
			FormatTidalDLNG, "refresh_token", "is empty"},
		{"flat refresh token missing", `{"access_token": "` + canaryAccess + `"}`, FormatFlat, "refresh_token", "is missing"},
		{"flat refresh token a number", `{"refresh_token": ` + numberCanary + `}`, FormatFlat, "refresh_token", "is not a string"},
		{"flat refresh token with a space", `{"refresh_token": "` + canaryRefresh + ` ` + canaryAccess + `"}`,
			FormatFlat, "refresh_token", "characters a token cannot have"},
		{"flat refresh token with a newline escape", `{"refresh_token": "` + canaryRefresh + `\n"}`,
			FormatFlat, "refresh_token", "characters a token cannot have"},
		{"flat refresh token too long", `{"refresh_token": "` + canaryRefresh + strings.Repeat("A", maxTokenLength) + `"}`,
			FormatFlat, "refresh_token", "longer than"},
		{"flat access token an object", `{"refresh_token": "r", "access_token": ["` + canaryAccess + `"]}`,
			FormatFlat, "access_token", "is not a string"},
		{"flat user id a word", `{"refresh_token": "r", "user_id": "` + canaryAccess + `"}`,
			FormatFlat, "user_id", "not a TIDAL user id"},
		{"flat user id a fraction", `{"refresh_token": "r", "user_id": 47.11}`,
			FormatFlat, "user_id", "not a TIDAL user id"},
		{"flat client id with a space", `{"refresh_token": "r", "client_id": "` + canaryAccess + ` x"}`,
			FormatFlat, "client_id", "not a client id"},
		{"flat expiry in the far future", `{"refresh_token": "r", "expires_at": ` + numberCanary + `}`,
			FormatFlat, "expires_at", "between 2000 and 2200"},
		{"flat expiry 1e999", `{"refresh_token": "r", "expires_at": 1e999}`,
			FormatFlat, "expires_at", "is not Unix seconds"},
		{"flat expiry before 2000", `{"refresh_token": "r", "expires_at": "1999-12-31T23:59:59Z"}`,
			FormatFlat, "expires_at", "between 2000 and 2200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *ParseError", err)
			}
			if pe.Format != tc.format || pe.Field != tc.field {
				t.Errorf("format, field = %q, %q; want %q, %q", pe.Format, pe.Field, tc.format, tc.field)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.field != "" && !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name the field %q", err, tc.field)
			}
			if tc.format != "" && !strings.Contains(err.Error(), string(tc.format)) {
				t.Errorf("error %q does not name the format %q", err, tc.format)
			}
			assertNoCanary(t, "error", err.Error())
			assertNoCanary(t, "error printed with %+v", fmt.Sprintf("%+v", err))
		})
	}
}

// TestDecoderErrorsQuoteInput shows why Parse passes on no error text of encoding/json or
// time.Parse: both quote the input, so a file with a token in the wrong place would print it.
func TestDecoderErrorsQuoteInput(t *testing.T) {
	const numberCanary = "98765432109876543210"
	var v struct {
		UserID  int64     `json:"user_id"`
		Expires time.Time `json:"expires_at"`
	}
	err := json.Unmarshal([]byte(`{"user_id": `+numberCanary+`}`), &v)
	if err == nil || !strings.Contains(err.Error(), numberCanary) {
		t.Errorf("encoding/json no longer quotes numbers (%v); Parse's guard stays right", err)
	}
	err = json.Unmarshal([]byte(`{"expires_at": "`+canaryAccess+`"}`), &v)
	if err == nil || !strings.Contains(err.Error(), canaryAccess) {
		t.Errorf("time.Time no longer quotes its input (%v); Parse's guard stays right", err)
	}

	for _, in := range []string{
		`{"refresh_token": "r", "user_id": ` + numberCanary + `}`,
		`{"refresh_token": "r", "expires_at": "` + canaryAccess + `"}`,
	} {
		_, err := Parse([]byte(in))
		if err == nil {
			t.Fatal("Parse accepted it")
		}
		assertNoCanary(t, "Parse's error", err.Error())
	}
}

func TestReadSizeLimit(t *testing.T) {
	body := `{"refresh_token": "` + canaryRefresh + `"}`
	atLimit := strings.Repeat(" ", MaxFileSize-len(body)) + body
	if _, err := Read(strings.NewReader(atLimit)); err != nil {
		t.Fatalf("a file of exactly %d bytes: %v", MaxFileSize, err)
	}
	_, err := Read(strings.NewReader(" " + atLimit))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a file one byte over the limit: %v", err)
	}
	_, err = Parse([]byte(" " + atLimit))
	if err == nil {
		t.Fatal("Parse accepted a file over the limit")
	}
}

// TestReadStopsAtLimit checks that Read does not consume an endless stream.
func TestReadStopsAtLimit(t *testing.T) {
	r := &countingReader{}
	if _, err := Read(r); err == nil {
		t.Fatal("Read accepted an endless stream")
	}
	if r.n > 2*MaxFileSize {
		t.Errorf("Read consumed %d bytes of an endless stream", r.n)
	}
}

type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	r.n += len(p)
	return len(p), nil
}

func TestSessionPrintsNoTokens(t *testing.T) {
	s, err := Parse([]byte(`{"refresh_token": "` + canaryRefresh + `", "access_token": "` + canaryAccess +
		`", "user_id": 4711, "expires_at": 1796389506}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, arg := range []any{s, &s} {
			out := fmt.Sprintf(verb, arg)
			assertNoCanary(t, verb, out)
			if !strings.Contains(out, "4711") || !strings.Contains(out, "2026-12-04T13:05:06Z") {
				t.Errorf("%s of a Session says too little: %s", verb, out)
			}
		}
	}
}

// FuzzParse feeds Parse arbitrary bytes in which "@R@" and "@A@" stand for the canary
// tokens, so that the fuzzer moves them into keys, values, numbers and broken JSON alike.
// Seeds live in testdata/fuzz/FuzzParse; plain go test runs only those.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.ReplaceAll(data, []byte("@R@"), []byte(canaryRefresh))
		data = bytes.ReplaceAll(data, []byte("@A@"), []byte(canaryAccess))
		s, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *ParseError", err)
			}
			assertNoCanary(t, "error", err.Error())
			return
		}
		switch s.Format {
		case FormatTidalapi, FormatTidalDLNG, FormatFlat:
		default:
			t.Fatalf("unknown format %q", s.Format)
		}
		if s.RefreshToken == "" || len(s.RefreshToken) > maxTokenLength || !printableNoSpace(s.RefreshToken) {
			t.Fatal("accepted an unusable refresh token")
		}
		if s.AccessToken != "" && !printableNoSpace(s.AccessToken) {
			t.Fatal("accepted an unusable access token")
		}
		if s.UserID != "" && !allDigits(s.UserID) {
			t.Fatal("accepted a user id that is not digits")
		}
		if s.ClientID != "" && !isIdentifier(s.ClientID) {
			t.Fatal("accepted a malformed client id")
		}
		if !s.Expiry.IsZero() && (s.Expiry.Before(minExpiry) || s.Expiry.After(maxExpiry) || s.Expiry.Location() != time.UTC) {
			t.Fatal("accepted an implausible expiry")
		}
		// A client id is no secret and is printed; the fuzzer may move a canary into it.
		for _, c := range []string{canaryRefresh, canaryAccess} {
			printed := s.String() + s.GoString()
			if strings.Contains(printed, c) && !strings.Contains(s.ClientID, c) {
				t.Fatal("String or GoString prints a token")
			}
		}
	})
}
