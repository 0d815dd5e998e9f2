package nstest_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/google/go-cmp/cmp"
)

func TestDemoSeed(t *testing.T) {
	a, b := nstest.DemoSeed(), nstest.DemoSeed()
	a.Users[0]["dial-policy"] = "changed"
	if b.Users[0]["dial-policy"] == "changed" {
		t.Fatal("DemoSeed returned shared state")
	}
	s := nstest.New(nstest.Options{})
	if got := s.APIKey(); len(got) != 60 || !strings.HasPrefix(got, "nsr_") {
		t.Errorf("APIKey() = %d chars %q…, want a 60-char nsr_ key", len(got), got[:4])
	}
	if _, err := nstest.LoadSeed(strings.NewReader(`{"domains":[{"domain":"a.example"}],"users":[{"user":"1"}]}`)); err == nil {
		t.Error("LoadSeed accepted a user without a known domain")
	}
}

// TestReadOperations checks each read operation's happy path on the demo seed.
func TestReadOperations(t *testing.T) {
	s, base := start(t, nstest.Options{})
	tests := []struct {
		name, path string
		check      func(t *testing.T, r reply)
	}{
		{"get user", "/domains/acme.example/users/1001", func(t *testing.T, r reply) {
			u := r.obj(t)
			if diff := cmp.Diff([]any{"1001", "Jane", "US and Canada"}, []any{u["user"], u["name-first-name"], u["dial-policy"]}); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		}},
		{"get own domain with ~", "/domains/~/users/1001", func(t *testing.T, r reply) {
			if got := r.obj(t)["domain"]; got != "acme.example" {
				t.Errorf("domain = %v", got)
			}
		}},
		{"list users paged", "/domains/acme.example/users?start=1&limit=2", func(t *testing.T, r reply) {
			var ids []any
			for _, u := range r.list(t) {
				ids = append(ids, u["user"])
			}
			if diff := cmp.Diff([]any{"1002", "1003"}, ids); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
		}},
		{"list devices", "/domains/acme.example/users/1001/devices", func(t *testing.T, r reply) {
			l := r.list(t)
			if len(l) != 2 || l[0]["device"] != "1001" || l[1]["device"] != "1001a" {
				t.Fatalf("devices = %v", l)
			}
			want := map[string]any{"device-provisioning-mac-address": "0004f2aabbcc", "device-provisioning-line": 1.0,
				"device-models-model": "Polycom VVX450", "device-sip-registration-uri": "sip:1001@acme.example",
				"device-sip-registration-state": "registered"}
			got := map[string]any{}
			for k := range want {
				got[k] = l[0][k]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("device 1001 (-want +got):\n%s", diff)
			}
		}},
		{"get device", "/domains/acme.example/users/1001/devices/1001a", func(t *testing.T, r reply) {
			if got := r.obj(t)["device-sip-registration-password"]; got != "DemoSoftPh0ne1aa" {
				t.Errorf("password = %v", got)
			}
		}},
		{"domain devices", "/domains/acme.example/devices", func(t *testing.T, r reply) {
			if n := len(r.list(t)); n != 4 {
				t.Errorf("%d devices, want 4", n)
			}
		}},
		{"phones", "/domains/acme.example/phones?limit=10", func(t *testing.T, r reply) {
			if n := len(r.list(t)); n != 2 {
				t.Errorf("%d phones, want 2", n)
			}
		}},
		{"phone by MAC", "/domains/acme.example/phones/0004f2aabbcc", func(t *testing.T, r reply) {
			if got := r.obj(t)["device-provisioning-sip-uri-1"]; got != "sip:1001@acme.example" {
				t.Errorf("line 1 = %v", got)
			}
		}},
		{"system policies", "/dialpolicy", func(t *testing.T, r reply) {
			if n := len(r.list(t)); n != 4 {
				t.Errorf("%d policies, want 4", n)
			}
		}},
		{"system policy", "/dialpolicy/Deny%20All", func(t *testing.T, r reply) {
			if got := r.obj(t)["dialpolicy"]; got != "Deny All" {
				t.Errorf("dialpolicy = %v", got)
			}
		}},
		{"system permissions", "/dialpolicy/Deny%20All/permission", func(t *testing.T, r reply) {
			l := r.list(t)
			if len(l) != 1 || l[0]["permission-mode"] != "deny" || l[0]["permission-match"] != "*" {
				t.Errorf("permissions = %v", l)
			}
		}},
		{"domain policy", "/domains/acme.example/dialpolicy/Acme%20Local", func(t *testing.T, r reply) {
			if got := r.obj(t)["domain"]; got != "acme.example" {
				t.Errorf("domain = %v", got)
			}
		}},
		{"domain permissions", "/domains/acme.example/dialpolicy/Acme%20Local/permission", func(t *testing.T, r reply) {
			if n := len(r.list(t)); n != 3 {
				t.Errorf("%d permissions, want 3", n)
			}
		}},
		{"own api key", "/apikeys/~", func(t *testing.T, r reply) {
			k := r.obj(t)
			if k["key-id"] != "nsr-demo0001" || k["key"] != nil {
				t.Errorf("api key = %v (the key itself must not be shown)", k)
			}
		}},
		{"version", "/version", func(t *testing.T, r reply) {
			if r.obj(t)["apiversion"] == nil {
				t.Error("no apiversion")
			}
		}},
		{"no active calls", "/domains/acme.example/users/1001/calls", func(t *testing.T, r reply) {
			if string(r.Body) != "[]\n" {
				t.Errorf("calls = %s, want []", r.Body)
			}
		}},
		{"cdrs in range", "/domains/acme.example/users/1001/cdrs?datetime-start=2025-06-02T00:00:00Z&datetime-end=2025-06-03T00:00:00Z", func(t *testing.T, r reply) {
			var ids []any
			for _, c := range r.list(t) {
				ids = append(ids, c["cdr_id"])
			}
			if diff := cmp.Diff([]any{"cdr-1001-2", "cdr-1001-3", "cdr-1001-4"}, ids); diff != "" {
				t.Errorf("cdrs (-want +got):\n%s", diff)
			}
		}},
		{"cdrs by type and limit", "/domains/acme.example/users/1001/cdrs?datetime-start=2025-01-01T00:00:00Z&datetime-end=2026-01-01T00:00:00Z&type=1&limit=1", func(t *testing.T, r reply) {
			l := r.list(t)
			if len(l) != 1 || l[0]["cdr_id"] != "cdr-1001-1" {
				t.Errorf("cdrs = %v", l)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCall(t, http.MethodGet, base+tc.path, s.APIKey(), nil)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			tc.check(t, r)
		})
	}
}

func TestErrorsAreRealistic(t *testing.T) {
	s, base := start(t, nstest.Options{})
	tests := []struct {
		name, method, path string
		body               any
		wantStatus         int
		wantMessage        string
	}{
		{"missing user", "GET", "/domains/acme.example/users/1009", nil, 404, "User 1009 does not exist in domain acme.example"},
		{"missing domain", "GET", "/domains/nope.example/users/1001", nil, 404, "Domain nope.example does not exist"},
		{"missing device", "GET", "/domains/acme.example/users/1001/devices/1001z", nil, 404, "Device 1001z not found"},
		{"device of another user", "GET", "/domains/acme.example/users/1002/devices/1001a", nil, 404, "Device 1001a not found"},
		{"domain-level lookup of a system policy", "GET", "/domains/acme.example/dialpolicy/Deny%20All", nil, 404, "Dial policy Deny All not found in domain acme.example"},
		{"missing system policy", "GET", "/dialpolicy/Nope", nil, 404, "Dial policy Nope not found"},
		{"duplicate device", "POST", "/domains/acme.example/users/1001/devices", map[string]any{"device": "1001a"}, 409, "Device already exists"},
		{"unknown dial policy", "PUT", "/domains/acme.example/users/1001", map[string]any{"dial-policy": "Deny Everything"}, 400, "Dial policy Deny Everything does not exist in domain acme.example or system-wide"},
		{"unknown call", "DELETE", "/domains/acme.example/users/1001/calls/nope", nil, 404, "Call nope not found"},
		{"duplicate phone", "POST", "/domains/globex.example/phones", map[string]any{"device-provisioning-mac-address": "0004f2aabbcc", "device-models-brand-and-model": "Polycom VVX450"}, 409, "MAC address 0004f2aabbcc already exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCall(t, tc.method, base+tc.path, s.APIKey(), tc.body)
			want := map[string]any{"code": float64(tc.wantStatus), "message": tc.wantMessage}
			if diff := cmp.Diff(want, r.obj(t)); diff != "" || r.Status != tc.wantStatus {
				t.Errorf("status %d, body (-want +got):\n%s", r.Status, diff)
			}
		})
	}
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("realistic errors are not spec violations: %v", v)
	}
}

func TestPartialPutKeepsOmittedFields(t *testing.T) {
	s, base := start(t, nstest.Options{})
	before, _ := s.User("acme.example", "1001")
	r := mustCall(t, "PUT", base+"/domains/acme.example/users/1001", s.APIKey(), map[string]any{"dial-policy": "Deny All"})
	if diff := cmp.Diff(map[string]any{"code": 202.0, "message": "Accepted"}, r.obj(t)); diff != "" || r.Status != 202 {
		t.Fatalf("status %d (-want +got):\n%s", r.Status, diff)
	}
	after, _ := s.User("acme.example", "1001")
	before["dial-policy"] = "Deny All"
	if diff := cmp.Diff(before, after, ignoreKey("last-modified-datetime")); diff != "" {
		t.Errorf("user after partial PUT (-want +got):\n%s", diff)
	}
	got := mustCall(t, "GET", base+"/domains/acme.example/users/1001", s.APIKey(), nil).obj(t)
	if got["dial-policy"] != "Deny All" || got["name-first-name"] != "Jane" {
		t.Errorf("GET after PUT = %v", got)
	}
}

func ignoreKey(k string) cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		mi, ok := p.Last().(cmp.MapIndex)
		return ok && mi.Key().String() == k
	}, cmp.Ignore())
}

// TestSpecViolations sends requests the real API would not accept as documented.
func TestSpecViolations(t *testing.T) {
	s, base := start(t, nstest.Options{})
	user := base + "/domains/acme.example/users/1001"
	tests := []struct {
		name, method, url string
		body              any
		wantStatus        int
		wantProblem       string
	}{
		{"read-only field", "PUT", user, map[string]any{"account-status": "reset"}, 400, `read-only field "account-status"`},
		{"unknown field", "PUT", user, map[string]any{"dial_policy": "Deny All"}, 400, `unknown field "dial_policy"`},
		{"mistyped field", "PUT", user, map[string]any{"voicemail-login-pin": 1234}, 400, `field "voicemail-login-pin" must be string`},
		{"enum violation", "PUT", user, map[string]any{"user-scope": "Boss"}, 400, `"Boss" is not one of the allowed values`},
		{"out of range", "PUT", user, map[string]any{"ring-no-answer-timeout-seconds": 99999}, 400, "must be at most 3600"},
		{"device read-only state", "POST", user + "/devices", map[string]any{"device": "1001b", "device-sip-registration-state": "registered"}, 400, "read-only field"},
		{"device enum", "PUT", user + "/devices/1001a", map[string]any{"device-srtp-enabled": "always"}, 400, "not one of the allowed values"},
		{"device create without id", "POST", user + "/devices", map[string]any{"device-sip-allowed-user-agent": "x"}, 400, `missing required field "device"`},
		{"MAC without model", "POST", user + "/devices", map[string]any{"device": "1001b", "device-provisioning-mac-address": "0004f2000001"}, 400, "without device-models-model"},
		{"legacy phone names", "PUT", base + "/domains/acme.example/phones", map[string]any{"mac": "0004f2aabbcc", "device1": "sip:1001@acme.example"}, 400, `unknown field "mac"`},
		{"bad MAC", "DELETE", base + "/domains/acme.example/phones", map[string]any{"device-provisioning-mac-address": "00:04:f2:aa:bb:cc"}, 400, "longer than 12"},
		{"user too long", "GET", base + "/domains/acme.example/users/12345678901234567", nil, 400, "path parameter user"},
		{"bad domain", "GET", base + "/domains/acme%21example/users/1001", nil, 400, "path parameter domain"},
		{"cdrs without range", "GET", user + "/cdrs", nil, 400, `missing required query parameter "datetime-start"`},
		{"cdrs bad date", "GET", user + "/cdrs?datetime-start=yesterday&datetime-end=2025-01-01T00:00:00Z", nil, 400, "RFC 3339"},
		{"unknown query parameter", "GET", base + "/domains/acme.example/users?page=2", nil, 400, `undocumented query parameter "page"`},
		{"limit not a number", "GET", base + "/domains/acme.example/users?limit=ten", nil, 400, "must be an integer"},
		{"body on a GET", "GET", user, map[string]any{"x": 1}, 400, "takes no request body"},
		{"not JSON", "PUT", user, "dial-policy=Deny", 400, "not valid JSON"},
		{"undocumented path", "GET", base + "/domains/acme.example/subscribers/1001", nil, 404, "undocumented path"},
		{"undocumented method", "PATCH", user, map[string]any{}, 404, "documents no PATCH"},
		{"outside the base path", "GET", strings.TrimSuffix(base, "/ns-api/v2") + "/ns-api/v1/users", nil, 404, "outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCall(t, tc.method, tc.url, s.APIKey(), tc.body)
			if r.Status != tc.wantStatus || r.obj(t)["code"] != float64(tc.wantStatus) {
				t.Errorf("status %d, body %s; want %d", r.Status, r.Body, tc.wantStatus)
			}
			expectViolations(t, s, tc.wantProblem)
		})
	}
	if got, _ := s.User("acme.example", "1001"); got["dial-policy"] != "US and Canada" {
		t.Errorf("a refused request changed the user: dial-policy = %v", got["dial-policy"])
	}
}

func TestUnimplementedButDocumented(t *testing.T) {
	s, base := start(t, nstest.Options{})
	r := mustCall(t, "GET", base+"/domains/acme.example/users/1001/devices/count", s.APIKey(), nil)
	if r.Status != http.StatusNotImplemented {
		t.Errorf("status %d, want 501: %s", r.Status, r.Body)
	}
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("a documented operation is not a violation: %v", v)
	}
}

var passwordRE = regexp.MustCompile(`^[A-Za-z0-9]{16}$`)

func TestCreateDevice(t *testing.T) {
	s, base := start(t, nstest.Options{})
	devices := base + "/domains/acme.example/users/1001/devices"

	r := mustCall(t, "POST", devices, s.APIKey(), map[string]any{"device": "1001b", "synchronous": "yes", "device-models-model": "Bria"})
	if r.Status != http.StatusOK {
		t.Fatalf("synchronous create: status %d: %s", r.Status, r.Body)
	}
	created := r.obj(t)
	pw, _ := created["device-sip-registration-password"].(string)
	if !passwordRE.MatchString(pw) {
		t.Errorf("generated password %d chars, want 16 letters and digits", len(pw))
	}
	got := mustCall(t, "GET", devices+"/1001b", s.APIKey(), nil).obj(t)
	if diff := cmp.Diff(got, created); diff != "" {
		t.Errorf("synchronous reply differs from GET (-get +reply):\n%s", diff)
	}
	if created["device-sip-registration-state"] != "unregistered" || created["device-srtp-enabled"] != "no" {
		t.Errorf("new device state/defaults wrong: %v", created)
	}

	r = mustCall(t, "POST", devices, s.APIKey(), map[string]any{"device": "1001c", "device-sip-registration-password": "GivenPassword123"})
	if diff := cmp.Diff(map[string]any{"code": 202.0, "message": "Accepted"}, r.obj(t)); diff != "" || r.Status != 202 {
		t.Errorf("async create: status %d (-want +got):\n%s", r.Status, diff)
	}
	if d := s.Devices("acme.example", "1001"); len(d) != 4 || d[3]["device-sip-registration-password"] != "GivenPassword123" {
		t.Errorf("devices after create = %v", d)
	}
}

// TestRecreateDeviceUnlinksPhone walks the runbook's re-create step: delete clears the
// phone line, a create with MAC+model does not re-link it, PUT /phones does.
func TestRecreateDeviceUnlinksPhone(t *testing.T) {
	s, base := start(t, nstest.Options{})
	dev := base + "/domains/acme.example/users/1001/devices"
	line1 := func() any { return s.Phones("acme.example")[0]["device-provisioning-sip-uri-1"] }

	if r := mustCall(t, "DELETE", dev+"/1001", s.APIKey(), nil); r.Status != 202 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if got := line1(); got != "" {
		t.Errorf("after delete, phone line 1 = %v, want empty", got)
	}
	r := mustCall(t, "POST", dev, s.APIKey(), map[string]any{
		"device": "1001", "synchronous": "yes", "device-models-model": "Polycom VVX450",
		"device-provisioning-mac-address": "0004f2aabbcc", "device-provisioning-line": 1,
	})
	if r.Status != 200 {
		t.Fatalf("re-create: %d %s", r.Status, r.Body)
	}
	re := r.obj(t)
	if re["device-sip-registration-password"] == "DemoSip1001Pw0rd" || re["device-sip-registration-state"] != "unregistered" {
		t.Errorf("re-created device kept its old password or registration: %v", re)
	}
	if got := line1(); got != "" || re["device-provisioning-mac-address"] != nil {
		t.Errorf("create re-linked the phone (line 1 = %v, device MAC = %v); the simulator must not", got, re["device-provisioning-mac-address"])
	}
	r = mustCall(t, "PUT", base+"/domains/acme.example/phones", s.APIKey(), map[string]any{
		"device-provisioning-mac-address": "0004f2aabbcc", "device-provisioning-sip-uri-1": "sip:1001@acme.example",
	})
	if r.Status != 202 {
		t.Fatalf("re-link: %d %s", r.Status, r.Body)
	}
	got := mustCall(t, "GET", dev+"/1001", s.APIKey(), nil).obj(t)
	if got["device-provisioning-mac-address"] != "0004f2aabbcc" || got["device-provisioning-line"] != 1.0 {
		t.Errorf("after re-link, device = %v", got)
	}
}

func TestCreateDeviceWithNewMACCreatesPhone(t *testing.T) {
	s, base := start(t, nstest.Options{})
	r := mustCall(t, "POST", base+"/domains/acme.example/users/1002/devices", s.APIKey(), map[string]any{
		"device": "1002b", "device-models-model": "Yealink T54W", "device-provisioning-mac-address": "805EC0FFFFFF", "device-provisioning-line": 2,
	})
	if r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	d := s.Devices("acme.example", "1002")
	if len(d) != 2 || d[1]["device-provisioning-mac-address"] != "805ec0ffffff" || d[1]["device-provisioning-line"] != 2.0 {
		t.Errorf("devices = %v", d)
	}
}

func TestPhonesLifecycle(t *testing.T) {
	s, base := start(t, nstest.Options{})
	phones := base + "/domains/globex.example/phones"
	mac := map[string]any{"device-provisioning-mac-address": "0004f2999999"}
	steps := []struct {
		method     string
		body       map[string]any
		wantStatus int
		wantCount  int
	}{
		{"POST", map[string]any{"device-provisioning-mac-address": "0004f2999999", "device-models-brand-and-model": "Polycom VVX150", "device-provisioning-sip-uri-1": "sip:2002@globex.example"}, 202, 2},
		{"PUT", map[string]any{"device-provisioning-mac-address": "0004f2999999", "notes": "desk 4"}, 202, 2},
		{"DELETE", mac, 202, 1},
		{"DELETE", mac, 404, 1},
	}
	for i, st := range steps {
		r := mustCall(t, st.method, phones, s.APIKey(), st.body)
		if r.Status != st.wantStatus || len(s.Phones("globex.example")) != st.wantCount {
			t.Errorf("step %d %s: status %d, %d phones; want %d, %d", i, st.method, r.Status, len(s.Phones("globex.example")), st.wantStatus, st.wantCount)
		}
		if i == 1 {
			p := mustCall(t, "GET", phones+"/0004f2999999", s.APIKey(), nil).obj(t)
			if p["notes"] != "desk 4" || p["device-provisioning-sip-uri-1"] != "sip:2002@globex.example" {
				t.Errorf("after PUT, phone = %v", p)
			}
		}
	}
}

func TestUserSideEffects(t *testing.T) {
	s, base := start(t, nstest.Options{})
	u := base + "/domains/acme.example/users/1001"

	s.AddActiveCall("acme.example", "1001", "call-1", "011442079460000")
	s.AddActiveCall("acme.example", "1001", "call-2", "0112348031234567")
	if l := mustCall(t, "GET", u+"/calls", s.APIKey(), nil).list(t); len(l) != 2 || l[0]["call-orig-call-id"] != "call-1" {
		t.Fatalf("calls = %v", l)
	}
	if r := mustCall(t, "DELETE", u+"/calls/call-1", s.APIKey(), nil); r.Status != 200 {
		t.Errorf("end call: %d %s", r.Status, r.Body)
	}
	if l := s.ActiveCalls("acme.example", "1001"); len(l) != 1 || l[0]["call-orig-call-id"] != "call-2" {
		t.Errorf("calls after DELETE = %v", l)
	}

	if r := mustCall(t, "DELETE", base+"/jwt/1001@acme.example", s.APIKey(), nil); r.Status != 202 {
		t.Errorf("revoke: %d %s", r.Status, r.Body)
	}
	if diff := cmp.Diff([]string{"1001@acme.example"}, s.RevokedJWTs()); diff != "" {
		t.Errorf("revoked (-want +got):\n%s", diff)
	}

	if r := mustCall(t, "POST", u+"/email", s.APIKey(), map[string]any{"template": "password_reset.php", "subject": "Reset"}); r.Status != 200 {
		t.Errorf("email: %d %s", r.Status, r.Body)
	}
	e := s.Emails()
	if len(e) != 1 || e[0].To != "jane.doe@acme.example" || e[0].Template != "password_reset.php" || e[0].Subject != "Reset" {
		t.Errorf("emails = %+v", e)
	}

	s.SetUserField("acme.example", "1001", "dial-policy", "International")
	if got := mustCall(t, "GET", u, s.APIKey(), nil).obj(t)["dial-policy"]; got != "International" {
		t.Errorf("dial-policy after SetUserField = %v", got)
	}
}

func TestCallLog(t *testing.T) {
	s, base := start(t, nstest.Options{})
	u := base + "/domains/acme.example/users/1001"
	mustCall(t, "GET", u, s.APIKey(), nil, "X-NetSapiens-Log", "INC-7K2QXM")
	mustCall(t, "PUT", u, s.APIKey(), map[string]any{"voicemail-login-pin": "135790"})
	mustCall(t, "PUT", u, s.APIKey(), map[string]any{"dial-policy": "Nope"})
	mustCall(t, "POST", u+"/devices", s.APIKey(), map[string]any{"device": "1001q", "device-sip-registration-password": "SuperSecretPw123", "device-provisioning-password": "ProvSecret"})
	mustCall(t, "POST", base+"/tokens", "", map[string]any{"grant_type": "password", "client_id": "demo-client",
		"client_secret": "demo-client-secret-NOT-REAL", "username": "ops@acme.example", "password": "demo-password-NOT-REAL"})
	mustCall(t, "GET", base+"/version?access_token=leak-me", "", nil)
	s.ResetViolations() // the query parameter above is undocumented

	calls := s.Calls()
	var got []string
	for _, c := range calls {
		got = append(got, c.Method+" "+c.Path+" "+c.Auth+" "+c.LogTag)
	}
	want := []string{
		"GET /domains/acme.example/users/1001 apikey INC-7K2QXM",
		"PUT /domains/acme.example/users/1001 apikey ",
		"PUT /domains/acme.example/users/1001 apikey ",
		"POST /domains/acme.example/users/1001/devices apikey ",
		"POST /tokens none ",
		"GET /version none ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("call log (-want +got):\n%s", diff)
	}
	for _, secret := range []string{"135790", "SuperSecretPw123", "ProvSecret", "demo-client-secret-NOT-REAL", "demo-password-NOT-REAL", "leak-me"} {
		for _, c := range calls {
			if strings.Contains(string(c.Body), secret) || strings.Contains(c.Query.Encode(), secret) {
				t.Errorf("call log of %s %s shows a secret", c.Method, c.Path)
			}
		}
	}
	if !strings.Contains(string(calls[1].Body), `"voicemail-login-pin":"[redacted]"`) {
		t.Errorf("redacted body = %s", calls[1].Body)
	}
	var writes []string
	for _, c := range s.Writes() {
		writes = append(writes, c.Method+" "+c.Path)
	}
	if diff := cmp.Diff([]string{"PUT /domains/acme.example/users/1001", "POST /domains/acme.example/users/1001/devices"}, writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	s.ResetCalls()
	if n := len(s.Calls()); n != 0 {
		t.Errorf("%d calls after ResetCalls", n)
	}
}
