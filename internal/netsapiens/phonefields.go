package netsapiens

import (
	"encoding/json"
	"strconv"

	"github.com/rs/zerolog"
)

// PhoneLines is the number of line slots (SIP URIs) a phone (NDP MAC entry) has.
const PhoneLines = 8

// Phone is a MAC-provisioned phone (v45 schema NdpPhone). JSON encoding uses the v45
// kebab-case names; decoding also reads the legacy names (mac, model, server, transport,
// device1..8, lineN_enable, lineN_share, auth_user, auth_pass, overrides) that older
// servers return, into the same fields. Index i of the arrays is line i+1.
type Phone struct {
	MAC                  *string // device-provisioning-mac-address (12 hex digits)
	Domain               *string // domain
	Reseller             *string // reseller
	Model                *string // device-models-brand-and-model
	Server               *string // device-provisioning-registration-core-server
	Transport            *string // device-provisioning-sip-transport-protocol
	Notes                *string // notes
	ProvisioningUsername *string // device-provisioning-username
	ProvisioningPassword *Secret // device-provisioning-password
	Overrides            *string // device-models-overrides-blob

	LineURI     [PhoneLines]*string // device-provisioning-sip-uri-N, e.g. "sip:1001@acme.example"
	LineEnabled [PhoneLines]*string // device-provisioning-line-N-enabled ("yes"/"no")
	LineShared  [PhoneLines]*string // device-provisioning-sip-uri-N-shared-line-enabled
}

// phoneScalar names a Phone field by its v45 and legacy JSON names.
type phoneScalar struct {
	v45, legacy string
	str         func(p *Phone) **string
}

var phoneScalars = []phoneScalar{
	{"device-provisioning-mac-address", "mac", func(p *Phone) **string { return &p.MAC }},
	{"domain", "", func(p *Phone) **string { return &p.Domain }},
	{"reseller", "territory", func(p *Phone) **string { return &p.Reseller }},
	{"device-models-brand-and-model", "model", func(p *Phone) **string { return &p.Model }},
	{"device-provisioning-registration-core-server", "server", func(p *Phone) **string { return &p.Server }},
	{"device-provisioning-sip-transport-protocol", "transport", func(p *Phone) **string { return &p.Transport }},
	{"notes", "", func(p *Phone) **string { return &p.Notes }},
	{"device-provisioning-username", "auth_user", func(p *Phone) **string { return &p.ProvisioningUsername }},
	{"device-models-overrides-blob", "overrides", func(p *Phone) **string { return &p.Overrides }},
}

const (
	phonePasswordV45    = "device-provisioning-password"
	phonePasswordLegacy = "auth_pass"
)

func lineURIName(n int) string     { return "device-provisioning-sip-uri-" + strconv.Itoa(n) }
func lineEnabledName(n int) string { return "device-provisioning-line-" + strconv.Itoa(n) + "-enabled" }
func lineSharedName(n int) string {
	return "device-provisioning-sip-uri-" + strconv.Itoa(n) + "-shared-line-enabled"
}

// MarshalJSON writes the non-nil fields under their v45 names.
func (p Phone) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for _, f := range phoneScalars {
		if v := *f.str(&p); v != nil {
			m[f.v45] = *v
		}
	}
	if p.ProvisioningPassword != nil {
		m[phonePasswordV45] = *p.ProvisioningPassword
	}
	for i := 0; i < PhoneLines; i++ {
		if p.LineURI[i] != nil {
			m[lineURIName(i+1)] = *p.LineURI[i]
		}
		if p.LineEnabled[i] != nil {
			m[lineEnabledName(i+1)] = *p.LineEnabled[i]
		}
		if p.LineShared[i] != nil {
			m[lineSharedName(i+1)] = *p.LineShared[i]
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads v45 names and, where a v45 name is absent, the legacy one. Values that
// are not strings (a number, a boolean) are kept as their JSON text; null is absent.
func (p *Phone) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*p = Phone{}
	get := func(names ...string) *string {
		for _, n := range names {
			if n == "" {
				continue
			}
			if v, ok := raw[n]; ok {
				if s, ok := rawString(v); ok {
					return &s
				}
			}
		}
		return nil
	}
	for _, f := range phoneScalars {
		*f.str(p) = get(f.v45, f.legacy)
	}
	if s := get(phonePasswordV45, phonePasswordLegacy); s != nil {
		p.ProvisioningPassword = SecretPtr(*s)
	}
	for i := 0; i < PhoneLines; i++ {
		n := strconv.Itoa(i + 1)
		p.LineURI[i] = get(lineURIName(i+1), "device"+n)
		p.LineEnabled[i] = get(lineEnabledName(i+1), "line"+n+"_enable")
		p.LineShared[i] = get(lineSharedName(i+1), "line"+n+"_share")
	}
	if p.MAC != nil {
		if mac, err := NormalizeMAC(*p.MAC); err == nil {
			p.MAC = &mac
		}
	}
	return nil
}

// rawString returns a JSON value as a string: a string's content, or another scalar's text.
// null and objects/arrays are absent.
func rawString(v json.RawMessage) (string, bool) {
	if string(v) == "null" {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err == nil {
		return n.String(), true
	}
	var bl bool
	if err := json.Unmarshal(v, &bl); err == nil {
		return strconv.FormatBool(bl), true
	}
	return "", false
}

// Lines returns the phone's non-empty line slots: line number (1–8) → AOR.
func (p Phone) Lines() map[int]string {
	m := map[int]string{}
	for i, u := range p.LineURI {
		if u != nil && *u != "" {
			m[i+1] = *u
		}
	}
	return m
}

// HasAOR returns the line (1–8) whose slot holds aor, e.g. AOR("1001", "acme.example").
// The comparison ignores a "sip:" prefix on either side and the case of the domain part.
func (p Phone) HasAOR(aor string) (line int, ok bool) {
	want := canonicalAOR(aor)
	for i, u := range p.LineURI {
		if u != nil && *u != "" && canonicalAOR(*u) == want {
			return i + 1, true
		}
	}
	return 0, false
}

// canonicalAOR strips "sip:" and lower-cases the host, so that "sip:1001@Acme.Example" and
// "1001@acme.example" compare equal.
func canonicalAOR(s string) string {
	if len(s) >= 4 && (s[:4] == "sip:" || s[:4] == "SIP:") {
		s = s[4:]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			return s[:i+1] + toLowerASCII(s[i+1:])
		}
	}
	return s
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// MarshalZerologObject logs the phone's MAC, model and lines, never the provisioning password.
func (p Phone) MarshalZerologObject(e *zerolog.Event) {
	e.Str("mac", deref(p.MAC)).Str("model", deref(p.Model))
	d := zerolog.Dict()
	for n, aor := range p.Lines() {
		d.Str(strconv.Itoa(n), aor)
	}
	e.Dict("lines", d)
}
