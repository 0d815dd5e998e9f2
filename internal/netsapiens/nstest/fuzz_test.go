package nstest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
)

// FuzzServeHTTP sends arbitrary requests: the simulator must never panic, and every answer
// must be the API's error/success shape with code equal to the HTTP status.
func FuzzServeHTTP(f *testing.F) {
	f.Add("GET", "/domains/acme.example/users/1001", "")
	f.Add("PUT", "/domains/acme.example/users/1001", `{"dial-policy":"Deny All"}`)
	f.Add("POST", "/domains/acme.example/users/1001/devices", `{"device":"1001","synchronous":"yes"}`)
	f.Add("DELETE", "/domains/acme.example/phones", `{"device-provisioning-mac-address":"0004f2aabbcc"}`)
	s := nstest.New(nstest.Options{})
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://nstest.invalid/ns-api/v2"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Authorization", "Bearer "+s.APIKey())
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if strings.HasPrefix(rec.Body.String(), "[") {
			return // a list
		}
		var reply map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			t.Fatalf("%s %q: status %d, body is not JSON: %q", method, path, rec.Code, rec.Body.String())
		}
		if rec.Code >= 300 && reply["code"] != float64(rec.Code) {
			t.Fatalf("%s %q: status %d but body %v", method, path, rec.Code, reply)
		}
		s.ResetCalls()
		s.ResetViolations()
	})
}
