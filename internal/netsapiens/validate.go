package netsapiens

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Path segments are validated before they are escaped into a URL, so that no input can
// address another resource ("..", "/", "?"), the key's own account ("~") or every domain ("*").

// isNameChar reports whether c is in the spec's name charset [A-Za-z0-9._-].
func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// validateName checks s against 1–max characters of [A-Za-z0-9._-], not "." or "..".
func validateName(what, s string, max int) error {
	if s == "" {
		return invalidf("%s is empty", what)
	}
	if len(s) > max {
		return invalidf("%s is longer than %d characters", what, max)
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return invalidf("%s %q has a character outside [A-Za-z0-9._-]", what, s)
		}
	}
	if s == "." || s == ".." {
		return invalidf("%s %q is not a name", what, s)
	}
	return nil
}

// ValidateUser checks a user (extension) path segment: 1–16 of [A-Za-z0-9._-], not "." or "..".
// Returns a KindInvalid *Error.
func ValidateUser(s string) error { return validateName("user", s, 16) }

// ValidateDomain checks a domain path segment: 1–64 of [A-Za-z0-9._-], not "." or "..".
// Returns a KindInvalid *Error.
func ValidateDomain(s string) error { return validateName("domain", s, 64) }

// ValidateDevice checks a device id path segment (e.g. "1001a"): 1–32 of [A-Za-z0-9._-],
// not "." or "..". Returns a KindInvalid *Error.
func ValidateDevice(s string) error { return validateName("device", s, 32) }

// NormalizeMAC accepts a MAC address as 12 hex digits, optionally separated by ':' or '-'
// (as 6 pairs), and returns the 12 lower-case hex digits. Returns a KindInvalid *Error.
func NormalizeMAC(s string) (string, error) {
	raw := s
	if len(s) == 17 {
		sep := s[2]
		if sep != ':' && sep != '-' {
			return "", invalidf("MAC address %q is not 12 hex digits", raw)
		}
		var b strings.Builder
		for i := 0; i < 17; i++ {
			if i%3 == 2 {
				if s[i] != sep {
					return "", invalidf("MAC address %q is not 12 hex digits", raw)
				}
				continue
			}
			b.WriteByte(s[i])
		}
		s = b.String()
	}
	if len(s) != 12 {
		return "", invalidf("MAC address %q is not 12 hex digits", raw)
	}
	for i := 0; i < 12; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", invalidf("MAC address %q is not 12 hex digits", raw)
		}
	}
	return strings.ToLower(s), nil
}

// validateFree checks a free-text segment: valid UTF-8, 1–max characters, printable, none of
// / \ ? # % (which would change the URL's meaning or hide an escape), not "." or "..".
func validateFree(what, s string, max int, spaces bool) error {
	if s == "" {
		return invalidf("%s is empty", what)
	}
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8", what)
	}
	if utf8.RuneCountInString(s) > max {
		return invalidf("%s is longer than %d characters", what, max)
	}
	if s == "." || s == ".." {
		return invalidf("%s %q is not a name", what, s)
	}
	for _, r := range s {
		switch {
		case r == ' ' && spaces:
		case r == ' ' || !unicode.IsPrint(r) || unicode.IsSpace(r):
			return invalidf("%s has a space or control character", what)
		case strings.ContainsRune(`/\?#%`, r):
			return invalidf("%s %q contains %q", what, s, r)
		}
	}
	if spaces && strings.TrimSpace(s) != s {
		return invalidf("%s %q starts or ends with a space", what, s)
	}
	return nil
}

// ValidatePolicyName checks a dial policy name: 1–100 printable characters, spaces allowed
// (not leading or trailing), none of / \ ? # %, not "." or "..". Returns a KindInvalid *Error.
func ValidatePolicyName(s string) error { return validateFree("dial policy", s, 100, true) }

// ValidateCallID checks an active call id: 1–256 printable characters without spaces or
// any of / \ ? # %. Returns a KindInvalid *Error.
func ValidateCallID(s string) error { return validateFree("call id", s, 256, false) }

// AOR returns the SIP address of record of a device, "sip:<device>@<domain>", the value a
// phone's line slots hold.
func AOR(device, domain string) string { return "sip:" + device + "@" + domain }
