package netsapiens

import (
	"encoding/json"
	"fmt"

	"github.com/rs/zerolog"
)

// redacted is what every printing path shows instead of a secret's value.
const redacted = "[redacted]"

// Secret holds a credential (a SIP or provisioning password, a voicemail PIN, an API key,
// an OAuth client secret or token). Every way of printing it (fmt verbs, String, GoString,
// zerolog) shows "[redacted]"; only JSON encoding carries the value, because the PBX must
// receive it, and Reveal returns it where the caller means to hand it on.
type Secret string

// Reveal returns the secret's value. Call it only where the value must leave the process
// (the request body, an ephemeral message to the requester).
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer without showing the value.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer without showing the value.
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that every verb (%v %+v %#v %s %q %x …) is redacted.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalZerologObject implements zerolog.LogObjectMarshaler without showing the value.
func (s Secret) MarshalZerologObject(e *zerolog.Event) { e.Str("secret", redacted) }

// MarshalText is used by loggers and encoders that prefer text (zerolog's Any on some
// paths, encoding/xml); JSON uses MarshalJSON and so still carries the value to the API.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON carries the real value: the request body is the one place it must appear.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(string(s)) }

// UnmarshalJSON reads a JSON string or number (some PBX builds return a PIN as a number)
// or null (empty).
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret: %w", errNoValue)
	}
	switch t := v.(type) {
	case nil:
		*s = ""
	case string:
		*s = Secret(t)
	case float64:
		*s = Secret(string(b))
	default:
		return fmt.Errorf("secret: want a string, got %T", v)
	}
	return nil
}

// errNoValue replaces a json error text, which could quote the raw bytes of a secret.
var errNoValue = fmt.Errorf("invalid JSON value")

// SecretPtr returns a pointer to a Secret, for the optional fields of Device, Phone and UserUpdate.
func SecretPtr(s string) *Secret { v := Secret(s); return &v }

// Ptr returns a pointer to v, for the optional fields of the request types.
func Ptr[T any](v T) *T { return &v }
