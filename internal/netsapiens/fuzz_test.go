package netsapiens_test

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/compromised-responder/bot/internal/netsapiens"
)

// FuzzValidatePathSegments checks that no validator panics and that every accepted value is
// safe as a path segment: no '/', '?', '#', '%' or control character, and it survives
// url.PathEscape + PathUnescape unchanged (for names, PathEscape leaves it as is).
func FuzzValidatePathSegments(f *testing.F) {
	for _, s := range []string{"1001", "acme.example", "1001a", "Deny All", "US and Canada", "..", "a/b", "0004f2aabbcc",
		"00:04:f2:aa:bb:cc", "abc@198.51.100.23", "~", "*", "%2e%2e", "a\x00b", "ä", " lead"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(name, v string, strict bool) {
			if v == "" {
				t.Errorf("%s accepted an empty value", name)
			}
			if strings.ContainsAny(v, "/?#%\\") {
				t.Errorf("%s accepted %q", name, v)
			}
			for _, r := range v {
				if unicode.IsControl(r) {
					t.Errorf("%s accepted a control character in %q", name, v)
				}
			}
			if v == "." || v == ".." {
				t.Errorf("%s accepted %q", name, v)
			}
			esc := url.PathEscape(v)
			back, err := url.PathUnescape(esc)
			if err != nil || back != v {
				t.Errorf("%s: %q does not round-trip PathEscape (%q → %q, %v)", name, v, esc, back, err)
			}
			if strict && esc != v {
				t.Errorf("%s: %q changes under PathEscape: %q", name, v, esc)
			}
		}
		if netsapiens.ValidateUser(s) == nil {
			check("ValidateUser", s, true)
			if len(s) > 16 {
				t.Errorf("ValidateUser accepted %d characters", len(s))
			}
		}
		if netsapiens.ValidateDomain(s) == nil {
			check("ValidateDomain", s, true)
			if len(s) > 64 {
				t.Errorf("ValidateDomain accepted %d characters", len(s))
			}
		}
		if netsapiens.ValidateDevice(s) == nil {
			check("ValidateDevice", s, true)
		}
		if netsapiens.ValidatePolicyName(s) == nil {
			check("ValidatePolicyName", s, false)
		}
		if netsapiens.ValidateCallID(s) == nil {
			check("ValidateCallID", s, false)
			if strings.ContainsRune(s, ' ') {
				t.Errorf("ValidateCallID accepted a space in %q", s)
			}
		}
		if mac, err := netsapiens.NormalizeMAC(s); err == nil {
			check("NormalizeMAC", mac, true)
			if len(mac) != 12 || strings.ToLower(mac) != mac {
				t.Errorf("NormalizeMAC(%q) = %q", s, mac)
			}
		}
	})
}
