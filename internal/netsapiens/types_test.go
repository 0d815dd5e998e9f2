package netsapiens_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
)

func TestSecretsNeverPrinted(t *testing.T) {
	dev := netsapiens.Device{
		Device:               netsapiens.Ptr("1001a"),
		SIPPassword:          netsapiens.SecretPtr("SipSECRET1"),
		ProvisioningPassword: netsapiens.SecretPtr("ProvSECRET2"),
	}
	user := netsapiens.User{User: "1001", VoicemailPIN: "PinSECRET3"}
	cfg := netsapiens.Config{BaseURL: "https://pbx.example.com", APIKey: "KeySECRET4",
		OAuth: &netsapiens.OAuthConfig{ClientID: "id", ClientSecret: "CsSECRET5", Password: "PwSECRET6"}}
	phone := netsapiens.Phone{MAC: netsapiens.Ptr("0004f2aabbcc"), ProvisioningPassword: netsapiens.SecretPtr("PhSECRET7")}
	update := netsapiens.UserUpdate{VoicemailPIN: netsapiens.SecretPtr("PinSECRET8")}
	values := []any{dev, &dev, user, &user, cfg, *cfg.OAuth, cfg.OAuth, phone, update, user.VoicemailPIN, *dev.SIPPassword,
		[]netsapiens.Device{dev}, map[string]netsapiens.User{"u": user},
		struct {
			U  *netsapiens.User
			D  *netsapiens.Device
			P  *netsapiens.Phone
			UU *netsapiens.UserUpdate
			C  *netsapiens.Config
			O  *netsapiens.OAuthConfig
		}{&user, &dev, &phone, &update, &cfg, cfg.OAuth}}
	for i, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, "SECRET") {
				t.Errorf("value %d with %s prints a secret: %s", i, verb, out)
			}
		}
	}
	if s := fmt.Sprint(user.VoicemailPIN); s != "[redacted]" {
		t.Errorf("Sprint(Secret) = %q", s)
	}

	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Object("device", dev).Object("user", user).Object("phone", phone).
		Stringer("pin", user.VoicemailPIN).Object("pin2", user.VoicemailPIN).Msg("x")
	if strings.Contains(buf.String(), "SECRET") {
		t.Errorf("zerolog output leaks a secret: %s", buf.String())
	}

	// A Config is never sent: its JSON has no secret either.
	if b, err := json.Marshal(cfg); err != nil || strings.Contains(string(b), "SECRET") {
		t.Errorf("Marshal(Config) = %s, %v", b, err)
	}

	// JSON carries the value: it must reach the API.
	b, err := json.Marshal(netsapiens.UserUpdate{VoicemailPIN: netsapiens.SecretPtr("4321")})
	if err != nil || string(b) != `{"voicemail-login-pin":"4321"}` {
		t.Errorf("Marshal(UserUpdate) = %s, %v", b, err)
	}
	var u netsapiens.User
	if err := json.Unmarshal([]byte(`{"voicemail-login-pin":1234}`), &u); err != nil || u.VoicemailPIN.Reveal() != "1234" {
		t.Errorf("a numeric PIN decoded to %q, %v", u.VoicemailPIN.Reveal(), err)
	}
}

func TestDeviceWritable(t *testing.T) {
	full := `{"device":"1001","user":"1001","domain":"acme.example","device-sip-registration-uri":"sip:1001@acme.example",
	"device-sip-registration-state":"registered","device-sip-registration-password":"pw","caller-id-number-emergency":"[*]",
	"device-force-notify-new-voicemails-enabled":"no","device-level-call-recording-enabled":"yes","device-push-enabled":"yes",
	"device-sip-registration-contact":"c","device-sip-registration-core-server":"core1","device-sip-registration-datetime":null,
	"device-sip-registration-expires-datetime":"x","device-sip-registration-expiry-seconds":3600,
	"device-sip-registration-ignore-for-presence-calculation":"no","device-sip-registration-ignore-report-enabled":"no",
	"device-sip-registration-ip-address":"198.51.100.23:5060","device-sip-registration-user-agent":"UA","device-sip-no-to-tag-in-cancel":"no",
	"device-srtp-enabled":"no","auto-answer-enabled":"no","device-sip-allowed-user-agent":"Polycom","device-sip-nat-traversal-enabled":"automatic",
	"device-sip-latency-seconds-current":0.02,"device-sip-latency-seconds-average":0.03,"emergency-address-id":"e1",
	"error-reading-from-endpoint-module":"no","login-username":"1001@acme.example","name-full-name":"Jane Doe",
	"device-models-model":"Polycom VVX450","device-provisioning-mac-address":"0004f2aabbcc","device-provisioning-registration-core-server":"ndp",
	"device-provisioning-sip-transport-protocol":"tls","device-provisioning-username":"pu","device-provisioning-password":"pp",
	"device-provisioning-line":1,"device-provisioning-overrides":"o","recording-configuration":"yes"}`
	var d netsapiens.Device
	if err := json.Unmarshal([]byte(full), &d); err != nil {
		t.Fatal(err)
	}
	// Every field of the read is kept (nothing silently dropped but the null).
	var in, back map[string]any
	_ = json.Unmarshal([]byte(full), &in)
	b, _ := json.Marshal(d)
	_ = json.Unmarshal(b, &back)
	delete(in, "device-sip-registration-datetime")
	if diff := cmp.Diff(in, back); diff != "" {
		t.Errorf("Device round trip (-in +out):\n%s", diff)
	}

	w := d.Writable()
	b, _ = json.Marshal(w)
	var wm map[string]any
	_ = json.Unmarshal(b, &wm)
	var keys []string
	for k := range wm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := slices.Clone(netsapiens.WritableDeviceFields)
	slices.Sort(want)
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("Writable() fields (-WritableDeviceFields +got):\n%s", diff)
	}
	*w.SRTP = "yes" // a copy: the original is untouched
	if *d.SRTP != "no" {
		t.Error("Writable shares pointers with the original")
	}
}

func TestPhoneJSON(t *testing.T) {
	want := netsapiens.Phone{
		MAC:       netsapiens.Ptr("0004f2aabbcc"),
		Domain:    netsapiens.Ptr("acme.example"),
		Model:     netsapiens.Ptr("Polycom VVX450"),
		Server:    netsapiens.Ptr("ndp.pbx.example"),
		Transport: netsapiens.Ptr("tls"),
		Notes:     netsapiens.Ptr(""),
	}
	want.LineURI[0] = netsapiens.Ptr("sip:1001@acme.example")
	want.LineURI[2] = netsapiens.Ptr("sip:1001a@acme.example")
	want.LineEnabled[0] = netsapiens.Ptr("yes")
	tests := []struct{ name, body string }{
		{"v45", `{"device-provisioning-mac-address":"0004F2AABBCC","domain":"acme.example","device-models-brand-and-model":"Polycom VVX450",
			"device-provisioning-registration-core-server":"ndp.pbx.example","device-provisioning-sip-transport-protocol":"tls","notes":"",
			"device-provisioning-sip-uri-1":"sip:1001@acme.example","device-provisioning-sip-uri-3":"sip:1001a@acme.example",
			"device-provisioning-line-1-enabled":"yes","device-provisioning-sip-uri-4":null,"created-datetime":"2024"}`},
		{"legacy", `{"mac":"00:04:f2:aa:bb:cc","domain":"acme.example","model":"Polycom VVX450","server":"ndp.pbx.example",
			"transport":"tls","notes":"","device1":"sip:1001@acme.example","device3":"sip:1001a@acme.example","line1_enable":"yes"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got netsapiens.Phone
			if err := json.Unmarshal([]byte(tc.body), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decoded phone (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[int]string{1: "sip:1001@acme.example", 3: "sip:1001a@acme.example"}, got.Lines()); diff != "" {
				t.Errorf("Lines (-want +got):\n%s", diff)
			}
			if line, ok := got.HasAOR(netsapiens.AOR("1001a", "ACME.example")); !ok || line != 3 {
				t.Errorf("HasAOR(1001a) = %d, %v", line, ok)
			}
			if _, ok := got.HasAOR("sip:1002@acme.example"); ok {
				t.Error("HasAOR(1002) = true")
			}
		})
	}
	b, _ := json.Marshal(want)
	wantJSON := `{"device-models-brand-and-model":"Polycom VVX450","device-provisioning-line-1-enabled":"yes",` +
		`"device-provisioning-mac-address":"0004f2aabbcc","device-provisioning-registration-core-server":"ndp.pbx.example",` +
		`"device-provisioning-sip-transport-protocol":"tls","device-provisioning-sip-uri-1":"sip:1001@acme.example",` +
		`"device-provisioning-sip-uri-3":"sip:1001a@acme.example","domain":"acme.example","notes":""}`
	if string(b) != wantJSON {
		t.Errorf("Marshal(Phone) =\n%s\nwant\n%s", b, wantJSON)
	}
}

func TestNormalizeMAC(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0004f2aabbcc", "0004f2aabbcc"},
		{"0004F2AABBCC", "0004f2aabbcc"},
		{"00:04:f2:aa:bb:cc", "0004f2aabbcc"},
		{"00-04-F2-AA-BB-CC", "0004f2aabbcc"},
		{"00:04-f2:aa:bb:cc", ""},
		{"0004.f2aa.bbcc", ""},
		{"0004f2aabbc", ""},
		{"0004f2aabbccd", ""},
		{"0004f2aabbcg", ""},
		{"", ""},
		{"00:04:f2:aa:bb:c/", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := netsapiens.NormalizeMAC(tc.in)
			if (err != nil) != (tc.want == "") || got != tc.want {
				t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
