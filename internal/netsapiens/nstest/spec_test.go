package nstest

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEveryHandlerHasAnOperation(t *testing.T) {
	sp, err := theSpec()
	if err != nil {
		t.Fatal(err)
	}
	implemented := map[string]bool{}
	for _, r := range sp.routes {
		for m, op := range r.ops {
			if op.implemented {
				implemented[m+" "+r.template] = true
			}
		}
	}
	for k := range handlers {
		if !implemented[k] {
			t.Errorf("handler %s has no operation in the spec subset", k)
		}
		delete(implemented, k)
	}
	for k := range implemented {
		t.Errorf("spec subset operation %s has no handler", k)
	}
}

func TestValidate(t *testing.T) {
	sp, err := theSpec()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, query, body string
		want                            []string // nil = valid
	}{
		{"device create as the runbook sends it", "POST", "/domains/acme.example/users/1001/devices", "",
			`{"device":"1001","synchronous":"yes","device-models-model":"Polycom VVX450","device-provisioning-mac-address":"0004f2aabbcc","device-provisioning-line":1,"emergency-address-id":null}`, nil},
		{"partial user update", "PUT", "/domains/acme.example/users/1001", "", `{"dial-policy":"Deny All"}`, nil},
		{"email list", "PUT", "/domains/acme.example/users/1001", "", `{"email-address":"a@x.example;b@x.example"}`, nil},
		{"pin", "PUT", "/domains/~/users/~", "", `{"voicemail-login-pin":"0042"}`, nil},
		{"password grant", "POST", "/tokens", "", `{"grant_type":"password","client_id":"c","client_secret":"s","username":"u","password":"p"}`, nil},
		{"refresh grant", "POST", "/tokens", "", `{"grant_type":"refresh_token","client_id":"c","client_secret":"s","refresh_token":"r"}`, nil},
		{"policy name with a space", "GET", "/domains/acme.example/dialpolicy/Deny All", "", "", nil},
		{"revoke", "DELETE", "/jwt/1001@acme.example", "", "", nil},
		{"phone relink", "PUT", "/domains/acme.example/phones", "", `{"device-provisioning-mac-address":"0004f2aabbcc","device-provisioning-sip-uri-1":"sip:1001@acme.example"}`, nil},
		{"phone delete", "DELETE", "/domains/acme.example/phones", "", `{"device-provisioning-mac-address":"0004f2aabbcc"}`, nil},
		{"users page", "GET", "/domains/acme.example/users", "start=0&limit=1000", "", nil},
		{"cdrs", "GET", "/domains/acme.example/users/1001/cdrs", "datetime-start=2025-01-01T00:00:00Z&datetime-end=2025-02-01T00:00:00-05:00&type=1", "", nil},

		{"grant type outside enum", "POST", "/tokens", "", `{"grant_type":"client_credentials","client_id":"c","client_secret":"s","username":"u","password":"p"}`,
			[]string{`field "grant_type": "client_credentials" is not one of the allowed values`}},
		{"limit too big", "GET", "/domains/acme.example/users", "limit=1001", "", []string{`query parameter limit must be at most 1000`}},
		{"domain with a slash", "GET", "/domains/a%2Fb/users", "", "", []string{`path parameter domain does not match ^[A-Za-z0-9._-]*|~|\*+`}},
		{"integer as string", "POST", "/domains/acme.example/users/1001/devices", "", `{"device":"1001","device-provisioning-line":"1"}`,
			[]string{`field "device-provisioning-line" must be integer, not string`}},
		{"fractional integer", "POST", "/domains/acme.example/users/1001/devices", "", `{"device":"1001","device-sip-registration-expiry-seconds":1.5}`,
			[]string{`field "device-sip-registration-expiry-seconds" must be integer, not number`}},
		{"array body", "PUT", "/domains/acme.example/users/1001", "", `[]`, []string{"request body must be a JSON object"}},
		{"phone create without model", "POST", "/domains/acme.example/phones", "", `{"device-provisioning-mac-address":"0004f2aabbcc"}`,
			[]string{`missing required field "device-models-brand-and-model"`}},
		{"email without subject", "POST", "/domains/acme.example/users/1001/email", "", `{"template":"t"}`, []string{`missing required field "subject"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var segs []string
			for _, s := range strings.Split(strings.Trim(tc.path, "/"), "/") {
				u, _ := url.PathUnescape(s)
				segs = append(segs, u)
			}
			op, params, _ := sp.match(tc.method, segs)
			if op == nil || !op.implemented {
				t.Fatalf("no implemented operation for %s %s", tc.method, tc.path)
			}
			q, _ := url.ParseQuery(tc.query)
			got := sp.validate(op, specRequest{method: tc.method, params: params, query: q, body: []byte(tc.body), contentType: "application/json"})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedactBody(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"json", `{"device":"1001","device-sip-registration-password":"x","nested":[{"password":"y"}]}`,
			`{"device":"1001","device-sip-registration-password":"[redacted]","nested":[{"password":"[redacted]"}]}`},
		{"form", `grant_type=password&password=hunter2`, `grant_type=password&password=%5Bredacted%5D`},
		{"bare secret", `hunter2`, `[non-JSON body, 7 bytes]`},
		{"empty", ``, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, string(redactBody([]byte(tc.in)))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRandomString(t *testing.T) {
	seen := map[rune]bool{}
	for range 200 {
		s := randomString(passwordLength)
		if len(s) != passwordLength {
			t.Fatalf("len %d", len(s))
		}
		for _, r := range s {
			if !strings.ContainsRune(tokenAlphabet, r) {
				t.Fatalf("character %q outside letters and digits", r)
			}
			seen[r] = true
		}
	}
	if len(seen) < 60 {
		t.Errorf("only %d distinct characters in 3200 draws", len(seen))
	}
}
